"""Vertex attributes of an adaptive mesh at its used grid samples, in one parallel pass (numba).

positions, normals and UVs at samples (rows, cols) equal numpy_ops.grid_positions / grid_normals / grid_uvs at
those samples bit for bit: the same float32 operations on the same operands (every constant is a float32
argument, so nothing is promoted to float64; no fast-math, so no fused multiply-adds); tested against those
full-grid twins in tests/test_adaptive.py. It replaced numpy gathers at the used samples, which made about twenty
passes over K-sized temporaries (int64 neighbour ids), 1 s of a 12 MP photo's adaptive mesh.
"""
from __future__ import annotations

import numpy as np

from .rtin_kernels import _njit_par, _prange


@_njit_par
def _attributes_at(heights, rows, cols, x0, dx, y0, dy, relief, dens, gw_f, gh_f, half, one, positions, normals, uvs):
    gh, gw = heights.shape
    for k in _prange(rows.size):
        y = rows[k]
        x = cols[k]
        xr = min(x + 1, gw - 1)
        xl = max(x - 1, 0)
        yu = max(y - 1, 0)
        yd = min(y + 1, gh - 1)
        gx = (heights[y, xr] * relief - heights[y, xl] * relief) / dens[0, (xr - xl) // 2]
        gy = (heights[yu, x] * relief - heights[yd, x] * relief) / dens[1, (yd - yu) // 2]
        inv_len = one / np.sqrt(gx * gx + gy * gy + one)
        normals[k, 0] = -gx * inv_len
        normals[k, 1] = -gy * inv_len
        normals[k, 2] = inv_len
        fx = np.float32(x)
        fy = np.float32(y)
        positions[k, 0] = (fx - x0) * dx
        positions[k, 1] = (y0 - fy) * dy
        positions[k, 2] = heights[y, x] * relief
        uvs[k, 0] = (fx + half) / gw_f
        uvs[k, 1] = (fy + half) / gh_f


def attributes_at(heights: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, dx: float, dy: float, relief: float):
    """(GH, GW) heights, (K,) int rows and cols of the used samples -> (positions (K, 3), normals (K, 3),
    uvs (K, 2)) float32, as the grid mesher gives them at those samples (one-sided differences at the border)."""
    h = np.ascontiguousarray(heights, dtype=np.float32)
    gh, gw = h.shape
    f32 = np.float32
    # one-sided at a border, central inside: dens[axis, (far - near) // 2]
    dens = np.array([[dx, 2.0 * dx], [dy, 2.0 * dy]], dtype=np.float32)
    k = rows.size
    positions = np.empty((k, 3), dtype=np.float32)  # allocated here, not inside numba (see simplify._compact)
    normals = np.empty((k, 3), dtype=np.float32)
    uvs = np.empty((k, 2), dtype=np.float32)
    _attributes_at(h, rows, cols, f32((gw - 1) * 0.5), f32(dx), f32((gh - 1) * 0.5), f32(dy), f32(relief), dens,
                   f32(gw), f32(gh), f32(0.5), f32(1.0), positions, normals, uvs)
    return positions, normals, uvs
