"""The numpy reference for every array stage. GPU twins (cupy_ops, kernels/*.cu) must match these.

Conventions: heights (GH, GW) float32 with row 0 = image top; vertex k = row * GW + col;
positions in the XY plane with image up = +Y, Z toward the viewer; glTF UVs (v grows downward).
"""
from __future__ import annotations

import numpy as np
from PIL import Image as PILImage


def grid_shape(image_size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    """(H, W) of the photo, longest-side vertex limit -> (GH, GW) of the mesh grid (each >= 2)."""
    h, w = image_size
    if not max_size or max(h, w) <= max_size:
        return h, w
    s = max_size / max(h, w)
    return max(2, min(max_size, round(h * s))), max(2, min(max_size, round(w * s)))


def resize(values: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 -> (OH, OW) float32: area-weighted (antialiased) down, bilinear up.

    Sample centres map to sample centres, so a resized map stays registered with the photo.
    """
    a = np.ascontiguousarray(values, dtype=np.float32)
    if a.shape == tuple(out_shape):
        return a.copy()
    oh, ow = out_shape
    down = oh <= a.shape[0] and ow <= a.shape[1]
    method = PILImage.Resampling.BOX if down else PILImage.Resampling.BILINEAR
    # Pillow's float ('F') resampling is exact float arithmetic in C and far faster than a numpy matrix resize.
    out = PILImage.fromarray(a, mode="F").resize((ow, oh), method)
    return np.asarray(out, dtype=np.float32).copy()


def resize_rgb(pixels: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """(H, W, C) uint8 -> (OH, OW, C) uint8, box filter down, bilinear up."""
    if pixels.shape[:2] == tuple(out_shape):
        return pixels
    oh, ow = out_shape
    down = oh <= pixels.shape[0] and ow <= pixels.shape[1]
    method = PILImage.Resampling.BOX if down else PILImage.Resampling.BILINEAR
    return np.asarray(PILImage.fromarray(pixels).resize((ow, oh), method))


def box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) float32 -> (H, W) float32 mean over a (2r+1)^2 window, edges clamped. O(1) per pixel."""
    return _box_blur(values, radius, np)


def _box_blur(values, radius: int, xp):
    """box_blur over the array module xp (numpy here; CuPy in the GPU twin: the same prefix sums)."""
    a = xp.asarray(values, dtype=xp.float32)
    if radius <= 0:
        return a.copy()
    out = a.astype(xp.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        r = min(radius, n - 1)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r + 1, r)
        c = xp.cumsum(xp.pad(out, pad, mode="edge"), axis=axis)
        hi = xp.take(c, xp.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
        lo = xp.take(c, xp.arange(0, n), axis=axis)
        out = (hi - lo) / (2 * r + 1)
    return out.astype(xp.float32)


def gaussian_blur(values: np.ndarray, sigma_px: float) -> np.ndarray:
    """(H, W) float32 -> (H, W) float32, approximate Gaussian by three box passes (Wells 1986)."""
    if sigma_px <= 0:
        return np.asarray(values, dtype=np.float32).copy()
    # three boxes of width w have variance 3 * (w^2 - 1) / 12 = sigma^2
    r = max(1, int(round((np.sqrt(4.0 * sigma_px**2 + 1.0) - 1.0) / 2.0)))
    out = values
    for _ in range(3):
        out = box_blur(out, r)
    return out


def fill_no_data(values: np.ndarray) -> np.ndarray:
    """Non-finite samples (NaN, +-inf: no data) take the lowest finite value (0 when none is finite); float32."""
    d = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(d)
    if finite.all():
        return d
    return np.where(finite, d, d.min(initial=np.inf, where=finite) if finite.any() else 0.0).astype(np.float32)


def normalization(lo, hi) -> tuple[np.float32, np.float32, np.float32]:
    """The range [lo, hi] of a map -> float32 (lo', span, scale): height = (depth * scale - lo') / span.

    scale is 1 (lo' = lo, span = hi - lo) unless hi - lo overflows float32 (a map spanning more than the float32
    maximum, e.g. -3e38 .. 3e38): then 0.5, and lo', span are those of the halved map (halving is exact), so the
    heights stay finite. The kernels decide the same way (range_params_f32)."""
    lo, hi = np.float32(lo), np.float32(hi)
    with np.errstate(over="ignore", invalid="ignore"):
        span = np.float32(hi - lo)
    if np.isinf(span):
        lo = np.float32(lo * np.float32(0.5))
        return lo, np.float32(hi * np.float32(0.5) - lo), np.float32(0.5)
    return lo, span, np.float32(1)


def condition_heights(
    depth: np.ndarray,
    *,
    clip_lo_pct: float = 0.0,
    clip_hi_pct: float = 100.0,
    invert: bool = False,
    smooth_px: float = 0.0,
    gamma: float = 1.0,
    contrast: float = 1.0,
) -> np.ndarray:
    """(GH, GW) float32 depth, larger = nearer (NaN = no data) -> (GH, GW) float32 heights in [0, 1].

    Order: percentile clamp and normalise, invert, smooth, gamma, contrast about 0.5.
    Non-finite samples (NaN, +-inf: no data) become the lowest height. A constant map becomes all zeros (a flat
    plate).
    """
    d = fill_no_data(depth)
    if clip_lo_pct > 0.0 or clip_hi_pct < 100.0:
        lo, hi = np.percentile(d, [clip_lo_pct, clip_hi_pct])
    else:
        lo, hi = d.min(), d.max()
    lo, span, scale = normalization(lo, hi)
    if not span > 0:
        h = np.zeros_like(d)
    else:
        if scale != 1:
            d = d * scale
        h = np.clip((d - lo) / span, np.float32(0), np.float32(1))
    if invert:
        h = np.float32(1) - h
    if smooth_px > 0:
        h = gaussian_blur(h, smooth_px)
    if gamma != 1.0:
        h = np.power(h, np.float32(gamma), dtype=np.float32)
    if contrast != 1.0:
        h = np.clip(np.float32(0.5) + (h - np.float32(0.5)) * np.float32(contrast), np.float32(0), np.float32(1))
    return np.ascontiguousarray(h, dtype=np.float32)


def column_bounds(table: np.ndarray) -> tuple[list[float], list[float]]:
    """(N, C) float32 -> per-column min and max of the finite values, as Python floats (glTF accessor bounds).
    A column with no finite value gives (float32 max, -float32 max), as the kernel twin does; N = 0 gives zeros."""
    t = np.asarray(table, dtype=np.float32)
    if t.shape[0] == 0:
        return [0.0] * t.shape[1], [0.0] * t.shape[1]
    lo, hi = [], []
    for k in range(t.shape[1]):
        # per column: numpy's strided axis-0 reduction over (N, 3) is ~20x slower than three column ones
        col = t[:, k]
        a, b = col.min(), col.max()
        if not (np.isfinite(a) and np.isfinite(b)):  # rare: recount over the finite values only
            col = col[np.isfinite(col)]
            big = np.finfo(np.float32).max
            a, b = (col.min(), col.max()) if col.size else (big, -big)
        lo.append(float(a))
        hi.append(float(b))
    return lo, hi


def grid_spacing(grid_size: tuple[int, int], image_size: tuple[int, int], width: float) -> tuple[float, float]:
    """-> (dx, dy): distance between neighbouring vertices in model units, so the mesh spans `width`
    across and keeps the photo's aspect ratio."""
    gh, gw = grid_size
    h, w = image_size
    dx = width / (gw - 1)
    # A grid cell covers (w / gw) x (h / gh) pixels; keep that pixel aspect in model units.
    dy = dx * (h / gh) / (w / gw)
    return float(dx), float(dy)


def grid_positions(heights: np.ndarray, *, dx: float, dy: float, relief: float) -> np.ndarray:
    """(GH, GW) float32 heights in [0, 1] -> (GH*GW, 3) float32 positions, centred in XY, Z in [0, relief].

    x = (col - (GW-1)/2) * dx, y = ((GH-1)/2 - row) * dy, z = height * relief.
    """
    gh, gw = heights.shape
    positions = np.empty((gh, gw, 3), dtype=np.float32)
    positions[..., 0] = ((np.arange(gw, dtype=np.float32) - np.float32((gw - 1) * 0.5)) * np.float32(dx))[None, :]
    positions[..., 1] = ((np.float32((gh - 1) * 0.5) - np.arange(gh, dtype=np.float32)) * np.float32(dy))[:, None]
    positions[..., 2] = heights * np.float32(relief)
    return positions.reshape(gh * gw, 3)


def grid_normals(heights: np.ndarray, *, dx: float, dy: float, relief: float) -> np.ndarray:
    """(GH, GW) float32 heights -> (GH*GW, 3) float32 unit vertex normals, +Z toward the viewer.

    Central differences inside, one-sided at the borders; n = normalize(-dz/dx, -dz/dy, 1) with
    y up (row index grows downward). Operation order is fixed: kernels/normals.cu mirrors it.
    """
    z = np.asarray(heights, dtype=np.float32) * np.float32(relief)
    gh, gw = z.shape
    gx = np.empty_like(z)
    gy = np.empty_like(z)
    # d/dcol
    gx[:, 1:-1] = (z[:, 2:] - z[:, :-2]) / np.float32(2.0 * dx)
    gx[:, 0] = (z[:, 1] - z[:, 0]) / np.float32(dx)
    gx[:, -1] = (z[:, -1] - z[:, -2]) / np.float32(dx)
    # d/dy with y up = -d/drow
    gy[1:-1, :] = (z[:-2, :] - z[2:, :]) / np.float32(2.0 * dy)
    gy[0, :] = (z[0, :] - z[1, :]) / np.float32(dy)
    gy[-1, :] = (z[-2, :] - z[-1, :]) / np.float32(dy)
    inv_len = np.float32(1.0) / np.sqrt(gx * gx + gy * gy + np.float32(1.0))
    normals = np.empty((gh, gw, 3), dtype=np.float32)
    normals[..., 0] = -gx * inv_len
    normals[..., 1] = -gy * inv_len
    normals[..., 2] = inv_len
    return normals.reshape(gh * gw, 3)


def grid_uvs(grid_size: tuple[int, int]) -> np.ndarray:
    """(GH, GW) -> (GH*GW, 2) float32 glTF UVs at sample centres: u = (col + 0.5) / GW, v = (row + 0.5) / GH."""
    gh, gw = grid_size
    uvs = np.empty((gh, gw, 2), dtype=np.float32)
    uvs[..., 0] = ((np.arange(gw, dtype=np.float32) + np.float32(0.5)) / np.float32(gw))[None, :]
    uvs[..., 1] = ((np.arange(gh, dtype=np.float32) + np.float32(0.5)) / np.float32(gh))[:, None]
    return uvs.reshape(gh * gw, 2)


def index_dtype(vertex_count: int) -> np.dtype:
    """uint16 while every index (and the primitive-restart value 65535) stays clear, else uint32."""
    return np.dtype(np.uint16) if vertex_count <= 65535 else np.dtype(np.uint32)


def grid_indices(grid_size: tuple[int, int], dtype=None) -> np.ndarray:
    """(GH, GW) -> (6*(GH-1)*(GW-1),) triangle indices, two per cell, counter-clockwise seen from +Z.

    Cell with corners a=(r,c), b=(r,c+1), c=(r+1,c), d=(r+1,c+1): triangles (a, c, d) and (a, d, b).
    """
    gh, gw = grid_size
    dtype = np.dtype(dtype) if dtype is not None else index_dtype(gh * gw)
    a = (np.arange(gh - 1, dtype=np.uint32)[:, None] * np.uint32(gw) + np.arange(gw - 1, dtype=np.uint32)[None, :])
    a = a.astype(dtype, copy=False)
    out = np.empty((gh - 1, gw - 1, 6), dtype=dtype)
    gw_ = dtype.type(gw)
    one = dtype.type(1)
    out[..., 0] = a
    out[..., 1] = a + gw_
    out[..., 2] = a + gw_ + one
    out[..., 3] = a
    out[..., 4] = a + gw_ + one
    out[..., 5] = a + one
    return out.reshape(-1)


def cut_cells(valid: np.ndarray) -> np.ndarray:
    """(GH, GW) bool sample mask -> (GH-1, GW-1) bool: keep a cell unless all four corners are invalid."""
    v = np.asarray(valid, dtype=bool)
    return v[:-1, :-1] | v[:-1, 1:] | v[1:, :-1] | v[1:, 1:]


def compact_grid(keep_cells: np.ndarray, grid_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(GH-1, GW-1) bool cells -> (vertex_ids (K,) uint32 of kept vertices, indices (6*C,) into them).

    count -> scan -> emit: vertices referenced by a kept cell are renumbered in grid order.
    """
    gh, gw = grid_size
    keep = np.asarray(keep_cells, dtype=bool)
    used = np.zeros((gh, gw), dtype=bool)
    used[:-1, :-1] |= keep
    used[:-1, 1:] |= keep
    used[1:, :-1] |= keep
    used[1:, 1:] |= keep
    flat_used = used.reshape(-1)
    vertex_ids = np.flatnonzero(flat_used).astype(np.uint32)
    remap = np.cumsum(flat_used, dtype=np.int64) - 1
    dtype = index_dtype(vertex_ids.size)
    full = grid_indices(grid_size, np.uint32).reshape(gh - 1, gw - 1, 6)[keep]
    indices = remap[full.reshape(-1)].astype(dtype)
    return vertex_ids, indices


def luminance(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) uint8 sRGB -> (H, W) float32 relative luminance in [0, 1] (Rec. 709 on linear light)."""
    lut = np.arange(256, dtype=np.float64) / 255.0
    lut = np.where(lut <= 0.04045, lut / 12.92, ((lut + 0.055) / 1.055) ** 2.4).astype(np.float32)
    rgb = pixels[..., :3]
    return (
        np.float32(0.2126) * lut[rgb[..., 0]] + np.float32(0.7152) * lut[rgb[..., 1]] + np.float32(0.0722) * lut[rgb[..., 2]]
    )


def quantization_transform(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float32 positions -> (centre (3,) float64, half_extent (3,) float64, each > 0).

    KHR_mesh_quantization: stored q = round((p - centre) / half_extent * 32767) as normalized SHORT,
    and the node gets translation = centre, scale = half_extent, so p ~= centre + half_extent * q / 32767.
    """
    return quantization_from_bounds(*column_bounds(positions))


def quantization_from_bounds(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis min and max of the positions -> (centre, half_extent) float64 (quantization_transform)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    centre = (lo + hi) * 0.5
    half = np.maximum((hi - lo) * 0.5, 1e-12)
    return centre, half


def quantize_positions(positions: np.ndarray, centre: np.ndarray, half_extent: np.ndarray) -> np.ndarray:
    """(N, 3) float32 -> (N, 4) int16: normalized SHORT x, y, z and a zero pad (stride 8 bytes)."""
    inv = (np.float32(32767.0) / half_extent.astype(np.float32)).astype(np.float32)
    q = np.rint((positions - centre.astype(np.float32)) * inv)
    out = np.zeros((positions.shape[0], 4), dtype=np.int16)
    out[:, :3] = np.clip(q, -32767, 32767).astype(np.int16)
    return out


def quantize_normals(normals: np.ndarray, half_extent: np.ndarray) -> np.ndarray:
    """(N, 3) float32 unit normals -> (N, 4) int8: normalize(S * n) as normalized BYTE, zero pad.

    The node scale S = half_extent is non-uniform; renderers transform normals by inverse-transpose(S),
    so storing normalize(S * n) gives back the original direction after the node transform.
    """
    m = normals * half_extent.astype(np.float32)
    m = m / np.sqrt((m * m).sum(axis=1, keepdims=True, dtype=np.float32))
    out = np.zeros((normals.shape[0], 4), dtype=np.int8)
    out[:, :3] = np.clip(np.rint(m * np.float32(127.0)), -127, 127).astype(np.int8)
    return out


def quantize_uvs(uvs: np.ndarray) -> np.ndarray:
    """(N, 2) float32 UVs in [0, 1] -> (N, 2) uint16 normalized (u * 65535)."""
    return np.clip(np.rint(uvs * np.float32(65535.0)), 0, 65535).astype(np.uint16)


def sample_rgb(pixels: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 photo, (N, 2) glTF UVs (v down) -> (N, 3) uint8 colour of the pixel under each UV."""
    h, w = pixels.shape[:2]
    cols = np.clip((uvs[:, 0] * np.float32(w)).astype(np.int64), 0, w - 1)
    rows = np.clip((uvs[:, 1] * np.float32(h)).astype(np.int64), 0, h - 1)
    return np.ascontiguousarray(pixels[rows, cols, :3])
