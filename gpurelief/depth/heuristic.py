"""Model-free monocular depth: photo cues fused into relative inverse depth, larger = nearer.

Cues, each a classic monocular depth cue and each normalised per image to [0, 1] by robust percentiles:
  position     lower in the frame is nearer (ground-plane prior: over flat ground, inverse depth is linear in
               the image row), and an upright object is as near as where it stands: the row ramp is carried
               upward through colour-coherent regions (an edge-stopped scan, bottom to top)
  brightness   brighter is nearer (light falls off, shadows and far surfaces are darker)
  contrast     higher local contrast is nearer: local standard deviation over local mean of linear luminance,
               so a dim region and a bright one with the same relative detail score alike
  focus        in focus is nearer: gradient at a fine scale over gradient at a coarse scale (a sharp edge
               loses much of its gradient when blurred further, a defocused one little), pooled with edge-energy
               weights, so the amount of texture does not count, only its sharpness
  haze         whiter, less saturated is farther (colour-attenuation prior, Zhu et al. 2015)
  dark_channel a bright minimum colour channel over a neighbourhood is farther (dark-channel prior, He et al.
               2009: haze-free surfaces have a dark channel near 0, airlight lifts it with distance)
The appearance cues are centred per image row before they are added, so they move regions nearer or
farther than the ground beside them without bending the ground plane's row profile.
Brightness, contrast, focus and the dark channel are reliable in some photos and noise or reversed in others
(a shaded foreground, a busy far wall, a photo focused far, no haze at all). Each is therefore weighted per
image by its agreement with
the ground prior: the correlation, within rows, between the cue and the position cue (objects standing in
front of the ground are nearer than the ground beside them), clipped at 0. A cue that disagrees in this photo
drops out; it never flips. The colour-attenuation haze cue is not gated (it is the aerial-perspective prior).
The weighted sum is refined by a guided filter (He et al. 2013) with the photo's lightness as the guide,
so the map follows the photo's edges: objects come out as coherent shapes with clean silhouettes.

Scale-free: windows are fractions of the image size, so the result does not depend on resolution.
Cues are computed at a working resolution of at most WORK_SIZE px, the guided filter runs at the output size.
Deterministic; array operations that CuPy provides as well (slicing, cumsum, elementwise maths, percentile,
one vector step per row for the scan), except the resampling, which goes through numpy_ops.resize /
resize_rgb (Pillow). Not yet run under CuPy.
"""
from __future__ import annotations

import numpy as np

from ..backend import numpy_ops as ops
from ..types import DepthMap, Image

WORK_SIZE = 512
# Cue weights, chosen on bench/depth_eval's training seeds (1000-1095) by a grid search, scored on separate
# test seeds (0-95); see README "Depth estimation". Only the scale matters relative to GUIDE_EPS.
WEIGHTS = {"position": 0.8, "brightness": 0.4, "contrast": 0.4, "focus": 0.4, "haze": 0.2, "dark_channel": 0.1}
# Cues whose weight is multiplied, per image, by their clipped within-row agreement with the position cue.
AGREEMENT_GATED = ("brightness", "contrast", "focus", "dark_channel")
# Edge-stopping scale of the upward scan, in multiples of the image's median row-to-row colour change.
SCAN_EDGE_SCALE = 5.0
GUIDE_EPS = 1e-3  # guided-filter regulariser (lightness units squared): edges weaker than ~0.03 are smoothed


def _unit(a: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W) float32 in [0, 1] by the 2nd and 98th percentiles (robust to highlights)."""
    lo, hi = np.percentile(a, [2.0, 98.0])
    if not hi > lo:
        return np.zeros(a.shape, dtype=np.float32)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _gradient(light: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W) |gradient| by central differences (half the step over two pixels); borders zero."""
    grad = np.zeros_like(light)
    dx = light[1:-1, 2:] - light[1:-1, :-2]
    dy = light[2:, 1:-1] - light[:-2, 1:-1]
    grad[1:-1, 1:-1] = np.float32(0.5) * np.sqrt(dx * dx + dy * dy)
    return grad


def _binomial(a: np.ndarray, passes: int) -> np.ndarray:
    """(H, W) -> (H, W) blurred by `passes` separable [1, 2, 1] / 4 passes (Gaussian sigma sqrt(passes / 2) px)."""
    q = np.float32(0.25)
    for _ in range(passes):
        p = np.pad(a, 1, mode="edge")
        a = q * (p[:-2, 1:-1] + p[2:, 1:-1]) + np.float32(0.5) * p[1:-1, 1:-1]
        p = np.pad(a, 1, mode="edge")
        a = q * (p[1:-1, :-2] + p[1:-1, 2:]) + np.float32(0.5) * p[1:-1, 1:-1]
    return a


def _pool(a: np.ndarray, sigma_px: float) -> np.ndarray:
    """(H, W) -> (H, W) Gaussian average over sigma_px, computed at 1/4 resolution (the result is smooth anyway)."""
    h, w = a.shape
    f = 4 if min(h, w) >= 32 and sigma_px >= 4 else 1
    if f == 1:
        return ops.gaussian_blur(a, sigma_px)
    small = ops.resize(a, (max(2, h // f), max(2, w // f)))
    return ops.resize(ops.gaussian_blur(small, sigma_px / f), (h, w))


def _min_filter(a: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) -> (H, W) minimum over a diamond of `radius` px (repeated 5-point minimum, edges clamped)."""
    for _ in range(radius):
        p = np.pad(a, 1, mode="edge")
        a = np.minimum(np.minimum(np.minimum(p[1:-1, 1:-1], p[:-2, 1:-1]), np.minimum(p[2:, 1:-1], p[1:-1, :-2])), p[1:-1, 2:])
    return a


def row_agreement(cue: np.ndarray, position: np.ndarray) -> float:
    """Two (H, W) maps -> their correlation within rows (each centred per row), clipped to [0, 1]."""
    c = cue - cue.mean(axis=1, keepdims=True)
    p = position - position.mean(axis=1, keepdims=True)
    den = float(np.sqrt((c * c).sum() * (p * p).sum()))
    return max(0.0, float((c * p).sum()) / den) if den > 1e-12 else 0.0


def guided_filter_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Guide (H, W), source (H, W) float32 -> window-averaged (a, b), each (H, W): output = a * guide + b.

    Grey-guide guided filter (He et al.); radius in pixels, eps in guide units squared (larger = smoother).
    a and b vary slowly, so they can be computed at low resolution and upsampled (fast guided filter).
    """
    mean_i = ops.box_blur(guide, radius)
    mean_p = ops.box_blur(src, radius)
    cov_ip = ops.box_blur(guide * src, radius) - mean_i * mean_p
    var_i = ops.box_blur(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    return ops.box_blur(a, radius), ops.box_blur(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Guide (H, W), source (H, W) float32 -> (H, W) float32: src smoothed within the edges of guide."""
    a, b = guided_filter_coefficients(guide, src, radius, eps)
    return (a * guide + b).astype(np.float32)


def ground_contact_ramp(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 colours -> (h, w) float32 in [0, 1]: the row ramp (0 top, 1 bottom) carried upward.

    d[r] = max(ramp[r], a[r] d[r+1] + (1 - a[r]) ramp[r]) with a = exp(-(dc / s)^2), dc the colour change
    across the boundary between rows r and r+1, measured from row r-1 to row r+2 (so an edge softened by
    defocus, spread over a few rows, still stops the scan). Inside a coherent region the value of its lowest
    row (its ground contact) persists; at an edge it falls back to the ramp. One vector step per row: O(h w).
    """
    h, w = rgb.shape[:2]
    smooth = np.stack([ops.box_blur(rgb[..., c], 1) for c in range(3)], axis=-1)
    above = np.concatenate([smooth[:1], smooth[:-2]])  # row r-1 for r = 0 .. h-2 (row 0 repeats at the top)
    below = np.concatenate([smooth[2:], smooth[-1:]])  # row r+2 (the last row repeats at the bottom)
    step = np.abs(above - below).sum(axis=-1)
    scale = np.float32(SCAN_EDGE_SCALE) * np.float32(np.median(step)) + np.float32(1e-4)
    keep = np.exp(-np.square(step / scale)).astype(np.float32)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)
    out = np.empty((h, w), dtype=np.float32)
    out[-1] = ramp[-1]
    for r in range(h - 2, -1, -1):
        out[r] = np.maximum(ramp[r], keep[r] * out[r + 1] + (np.float32(1) - keep[r]) * ramp[r])
    return out


def depth_cues(
    pixels: np.ndarray, work_shape: tuple[int, int], names: tuple[str, ...] = tuple(WEIGHTS)
) -> dict[str, np.ndarray]:
    """Photo (H, W, 3|4) uint8 -> {cue: (h, w) float32 in [0, 1], larger = nearer} at work_shape, for `names`."""
    h, w = work_shape
    size = float(max(h, w))
    small = pixels[..., :3] if pixels.shape[:2] == (h, w) else ops.resize_rgb(np.ascontiguousarray(pixels[..., :3]), (h, w))
    rgb = small.astype(np.float32) / np.float32(255)
    linear = ops.luminance(small)
    light = np.cbrt(linear).astype(np.float32)  # perceptual lightness: a bright sky does not dominate
    sigma = 0.03 * size
    cues: dict[str, np.ndarray] = {}
    if "position" in names:
        cues["position"] = ground_contact_ramp(rgb)
    if "brightness" in names:
        cues["brightness"] = _unit(_pool(light, sigma))
    if "contrast" in names:
        r_local = max(1, int(round(0.01 * size)))
        mean = ops.box_blur(linear, r_local)
        var = ops.box_blur(linear * linear, r_local) - mean * mean
        relative = np.sqrt(np.maximum(var, 0.0)) / (mean + np.float32(0.02))
        cues["contrast"] = _unit(_pool(relative, sigma))
    if "focus" in names:
        # a step edge blurred by s has peak gradient ~ 1 / s: the ratio of gradients after extra blurs of 1.4 px and
        # 2.4 px (4 and 12 binomial passes) is large for a sharp edge and near 1 for a defocused one; edge energy
        # weights the pooling
        fine = _gradient(_binomial(light, 4))
        coarse = _gradient(_binomial(light, 12))
        ratio = fine / (coarse + np.float32(1e-4))
        energy = fine * fine
        pooled = _pool(ratio * energy, sigma) / (_pool(energy, sigma) + np.float32(1e-8))
        cues["focus"] = _unit(pooled)
    if "haze" in names:
        v = rgb.max(axis=2)
        sat = (v - rgb.min(axis=2)) / (v + np.float32(1e-3))
        cues["haze"] = np.float32(1) - _unit(_pool(np.float32(0.96) * v - np.float32(0.78) * sat, sigma))
    if "dark_channel" in names:
        dark = _min_filter(rgb.min(axis=2), max(1, int(round(0.015 * size))))
        cues["dark_channel"] = np.float32(1) - _unit(_pool(dark, sigma))
    return cues


def _work_shape(shape: tuple[int, int]) -> tuple[int, int]:
    h, w = shape
    s = min(1.0, WORK_SIZE / max(h, w))
    return max(2, round(h * s)), max(2, round(w * s))


def estimate_depth(
    image: Image | np.ndarray, *, out_shape: tuple[int, int] | None = None, weights: dict[str, float] | None = None
) -> DepthMap:
    """Image (H, W, 3|4) uint8 -> DepthMap out_shape (default (H, W)) float32, about [0, 1], larger = nearer.

    weights: cue name -> weight (default WEIGHTS); the map is their weighted sum, guided-filtered, with the
    AGREEMENT_GATED cues' weights scaled per image by their agreement with the position cue.
    """
    pixels = image.pixels if isinstance(image, Image) else np.asarray(image)
    out_shape = tuple(out_shape) if out_shape is not None else pixels.shape[:2]
    weights = WEIGHTS if weights is None else weights
    unknown = set(weights) - set(WEIGHTS)
    if unknown:
        raise ValueError(f"unknown depth cue(s) {sorted(unknown)}; expected some of {list(WEIGHTS)}")
    work = _work_shape(pixels.shape[:2])
    used = tuple(n for n, wt in weights.items() if wt != 0)
    gated = any(n in AGREEMENT_GATED for n in used)
    cues = depth_cues(pixels, work, used + (("position",) if gated and "position" not in used else ()))
    fused = np.zeros(work, dtype=np.float32)
    for name in used:
        cue = cues[name]
        weight = float(weights[name])
        if name != "position":
            # the appearance cues only reorder depth within an image row (what stands out from the ground at the
            # same height); the row profile stays the ground plane's, which is linear in inverse depth
            cue = cue - cue.mean(axis=1, keepdims=True)
        if name in AGREEMENT_GATED:
            weight *= row_agreement(cue, cues["position"])
        fused += np.float32(weight) * cue

    # edge-aware refinement at the output size: fast guided filter (coefficients at working size)
    guide_pixels = pixels if pixels.shape[:2] == out_shape else ops.resize_rgb(np.ascontiguousarray(pixels[..., :3]), out_shape)
    guide = np.cbrt(ops.luminance(guide_pixels)).astype(np.float32)
    guide_work = guide if out_shape == work else ops.resize(guide, work)
    a, b = guided_filter_coefficients(guide_work, fused, max(1, int(round(0.02 * max(work)))), GUIDE_EPS)
    if out_shape != work:
        a, b = ops.resize(a, out_shape), ops.resize(b, out_shape)
    depth = a * guide + b
    return DepthMap(values=np.ascontiguousarray(depth, dtype=np.float32), source="heuristic")
