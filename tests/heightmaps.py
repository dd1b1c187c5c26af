"""Height maps made by code for the meshing tests and benchmarks: fractal terrain and photo-like step edges."""
from __future__ import annotations

import numpy as np


def fractal(h: int, w: int, seed: int = 0, beta: float = 4.0) -> np.ndarray:
    """(h, w) float32 in [0, 1]: spectral 1/f^beta noise (beta 4 = terrain-like), deterministic per seed."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (beta / 2)
    spec[0, 0] = 0.0
    z = np.fft.irfft2(spec, s=(h, w))
    return ((z - z.min()) / (z.max() - z.min())).astype(np.float32)


def step_edges(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w) float32 in [0, 1]: a photo-like scene of flat regions with sharp steps at arbitrary angles
    (building with windows, disc, ring, rotated triangle, thin strokes, half-plane), a gradient, 1% texture,
    blurred by about one pixel."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    yn, xn = y / (h - 1), x / (w - 1)
    z = 0.2 + 0.15 * yn                                                  # ground gradient
    z = np.where(xn * 0.37 + yn * 0.93 > 0.95, 0.05, z)                  # tilted half-plane
    bld = (xn > 0.1) & (xn < 0.4) & (yn > 0.2) & (yn < 0.8)
    z = np.where(bld, 0.6, z)
    win = bld & (np.sin(xn * 90) > 0.6) & (np.sin(yn * 70) > 0.5)
    z = np.where(win, 0.45, z)
    r = np.hypot(xn - 0.7, yn - 0.35)
    z = np.where(r < 0.15, 0.7 + 0.25 * np.sqrt(np.clip(1 - (r / 0.15) ** 2, 0, 1)), z)   # dome
    z = np.where((r > 0.2) & (r < 0.23), 0.9, z)                         # ring
    tri = (yn > 0.6) & (yn < 0.95) & (np.abs(xn - 0.72) < (yn - 0.6) * 0.6)
    z = np.where(tri, 0.35, z)
    for k in range(5):                                                   # thin strokes at angles
        a = 0.3 + 0.25 * k
        d = np.abs((xn - 0.5) * np.sin(a) - (yn - 0.5) * np.cos(a) - 0.05 * k) * max(h, w)
        z = np.where((d < 2 + k) & (xn > 0.45), 1.0 - 0.1 * k, z)
    z = z + 0.01 * rng.random((h, w))
    # ~1 px blur (3 passes of a 3-tap box) keeps steps sharp but not aliased
    for _ in range(3):
        z = (np.roll(z, 1, 0) + z + np.roll(z, -1, 0)) / 3
        z = (np.roll(z, 1, 1) + z + np.roll(z, -1, 1)) / 3
    z = (z - z.min()) / (z.max() - z.min())
    return z.astype(np.float32)


def heights_like(shape, seed=0) -> np.ndarray:
    """(GH, GW) float32 in [0, 1]: smooth relief plus noise (exercises cancellation in the differences);
    the input of the kernel parity tests (host shim, fake CuPy, GPU)."""
    rng = np.random.default_rng(seed)
    gh, gw = shape
    y, x = np.mgrid[0:gh, 0:gw].astype(np.float32)
    h = 0.5 + 0.3 * np.sin(x / 7.0) * np.cos(y / 5.0) + 0.05 * rng.standard_normal(shape)
    return np.clip(h, 0, 1).astype(np.float32)
