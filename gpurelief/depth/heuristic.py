"""Model-free monocular depth: photo cues fused into relative depth, larger = nearer.

Cues (all scale-free: window sizes are fractions of the image size, so results do not depend on
resolution): brighter and locally contrasted regions are nearer, lower in the frame is nearer
(ground-plane prior). Deterministic, numpy array operations only.
"""
from __future__ import annotations

import numpy as np

from ..backend import numpy_ops as ops
from ..types import DepthMap, Image


def _unit(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, [1.0, 99.0])
    if not hi > lo:
        return np.zeros_like(a, dtype=np.float32)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def estimate_depth(image: Image | np.ndarray) -> DepthMap:
    """Image (H, W, 3|4) uint8 -> DepthMap (H, W) float32 in [0, 1], larger = nearer."""
    pixels = image.pixels if isinstance(image, Image) else np.asarray(image)
    lum = ops.luminance(pixels)
    h, w = lum.shape
    size = float(max(h, w))
    # perceptual lightness: compresses highlights so one bright sky does not dominate
    light = np.cbrt(lum).astype(np.float32)
    bright = ops.gaussian_blur(light, 0.02 * size)
    mean = ops.box_blur(light, max(1, int(0.01 * size)))
    var = ops.box_blur(light * light, max(1, int(0.01 * size))) - mean * mean
    contrast = ops.gaussian_blur(np.sqrt(np.maximum(var, 0.0)), 0.02 * size)
    ramp = np.broadcast_to(np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None], (h, w))
    depth = np.float32(0.45) * _unit(bright) + np.float32(0.25) * _unit(contrast) + np.float32(0.30) * ramp
    return DepthMap(values=np.ascontiguousarray(depth, dtype=np.float32), source="heuristic")
