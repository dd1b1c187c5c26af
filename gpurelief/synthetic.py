"""Synthetic photo-like images for tests, benchmarks and `gpurelief bench` (no files needed)."""
from __future__ import annotations

import numpy as np


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """-> (h, w, 3) uint8: sky gradient, a bright disc in front, sensor noise; deterministic per seed."""
    rng = np.random.default_rng(seed)
    yn = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None]
    xn = (np.arange(w, dtype=np.float32) / max(w - 1, 1))[None, :]
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 90 + 60 * yn
    img[..., 1] = 120 + 50 * yn
    img[..., 2] = 200 - 80 * yn
    disc = (xn - 0.5) ** 2 + (yn - 0.55) ** 2 < 0.04
    img[disc] = [230, 200, 120]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(6)
    return np.clip(img, 0, 255).astype(np.uint8)
