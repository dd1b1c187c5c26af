"""--depth-tiles: a neural model on overlapping tiles of a large photo, blended without seams.

A depth model sees ~518 px; a 24 MP photo has ~10x more detail per side. The model runs once on the whole
photo (the global pass: right layout, little detail) and on an N x N grid of overlapping crops (detail, but
each crop's relative depth has its own unknown scale and shift). Each tile is mapped onto the global pass by a
least-squares scale and shift over its area, then tiles are feathered together with weights that fall to
zero across the overlaps, so neighbouring tiles meet continuously.
"""
from __future__ import annotations

import numpy as np

OVERLAP = 0.25  # fraction of a tile shared with each neighbour


def tile_spans(size: int, tiles: int, overlap: float = OVERLAP) -> list[tuple[int, int]]:
    """Image side in px, tiles per side -> [(start, stop), ...] covering [0, size) with the given overlap."""
    if tiles <= 1:
        return [(0, size)]
    tile = int(np.ceil(size / (tiles - (tiles - 1) * overlap)))
    tile = min(size, tile)
    step = (size - tile) / (tiles - 1)
    return [(int(round(i * step)), int(round(i * step)) + tile) for i in range(tiles)]


def _ramp(length: int, fade_lo: int, fade_hi: int) -> np.ndarray:
    """(length,) float32 weights: rising over fade_lo px, flat, falling over fade_hi px (0 px = no fade)."""
    w = np.ones(length, np.float32)
    pos = np.arange(length, dtype=np.float32)
    if fade_lo > 0:
        w = np.minimum(w, (pos + 0.5) / fade_lo)
    if fade_hi > 0:
        w = np.minimum(w, (length - pos - 0.5) / fade_hi)
    return np.clip(w, 1e-3, 1.0)


def align_affine(src: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Least-squares (scale, shift) with scale * src + shift ~ ref; scale forced > 0 (a tile never flips)."""
    s = src.astype(np.float64).ravel()
    r = ref.astype(np.float64).ravel()
    sc = s - s.mean()
    var = float(sc @ sc)
    scale = float(sc @ (r - r.mean())) / var if var > 0 else 0.0
    if not scale > 0:
        scale = 0.0  # no usable relation: the tile contributes the global pass's mean only
    return scale, float(r.mean() - scale * s.mean())


def tiled_depth(model, pixels: np.ndarray, tiles: int, *, align: bool = True) -> np.ndarray:
    """Photo (H, W, 3|4) uint8, DepthModel, N -> (H, W) float32, larger = nearer: global pass + N x N tiles."""
    h, w = pixels.shape[:2]
    ys, xs = tile_spans(h, tiles), tile_spans(w, tiles)
    crops = [(y0, y1, x0, x1) for y0, y1 in ys for x0, x1 in xs]
    results = model.predict([pixels] + [pixels[y0:y1, x0:x1] for y0, y1, x0, x1 in crops])
    global_pass = results[0]
    oy = ys[0][1] - ys[1][0] if len(ys) > 1 else 0  # overlap in px
    ox = xs[0][1] - xs[1][0] if len(xs) > 1 else 0
    acc = np.zeros((h, w), np.float64)
    wsum = np.zeros((h, w), np.float64)
    for (y0, y1, x0, x1), tile in zip(crops, results[1:]):
        if align:
            scale, shift = align_affine(tile, global_pass[y0:y1, x0:x1])
            tile = tile * np.float32(scale) + np.float32(shift)
        # fade only where a neighbour overlaps; the photo's own borders keep full weight
        fy = _ramp(y1 - y0, oy if y0 > 0 else 0, oy if y1 < h else 0)
        fx = _ramp(x1 - x0, ox if x0 > 0 else 0, ox if x1 < w else 0)
        weight = fy[:, None] * fx[None, :]
        acc[y0:y1, x0:x1] += weight * tile
        wsum[y0:y1, x0:x1] += weight
    return (acc / wsum).astype(np.float32)
