"""Scale-and-shift-invariant depth metrics (MiDaS protocol).

The prediction is relative inverse depth (larger = nearer) of unknown scale and shift. Fit
s >= 0, t by least squares so that s * pred + t matches the true disparity 1 / z on valid pixels, turn the
aligned disparity back into depth (clamped to the scene's true depth range), then score:
AbsRel = mean |z - z*| / z*; delta1 = fraction with max(z / z*, z* / z) < 1.25; Spearman = rank
correlation of pred and 1 / z* (invariant to any monotonic map).
"""
from __future__ import annotations

import numpy as np


def align_disparity(pred: np.ndarray, depth_m: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W) prediction (larger = nearer), true z-depth, mask -> (N,) aligned depth on valid pixels."""
    p = pred[valid].astype(np.float64)
    z = depth_m[valid].astype(np.float64)
    disp = 1.0 / z
    a = np.stack([p, np.ones_like(p)], 1)
    (s, t), *_ = np.linalg.lstsq(a, disp, rcond=None)
    if s < 0:  # near and far swapped: no credit for a reversed map (the best non-negative fit is constant)
        s, t = 0.0, disp.mean()
    aligned = s * p + t
    aligned = np.clip(aligned, 1.0 / z.max(), 1.0 / z.min())
    return 1.0 / aligned


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    r = np.empty(x.size, np.float64)
    r[order] = np.arange(x.size)
    # average ties so a constant map scores 0, not a spurious value
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=r)
    return (sums / counts)[inv]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def score(pred: np.ndarray, depth_m: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """-> {'absrel', 'delta1', 'spearman'} for one image."""
    z = depth_m[valid].astype(np.float64)
    est = align_disparity(pred, depth_m, valid)
    ratio = np.maximum(est / z, z / est)
    return {
        "absrel": float(np.mean(np.abs(est - z) / z)),
        "delta1": float(np.mean(ratio < 1.25)),
        "spearman": spearman(pred[valid].astype(np.float64), 1.0 / z),
    }
