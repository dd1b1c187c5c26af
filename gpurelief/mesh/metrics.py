"""Mesh quality measured against the heightfield it approximates: any triangulation, every sample.

Independent of how a mesh was made (RTIN, Delaunay, Martini): each triangle is rasterised over its bounding
box with barycentric coordinates, so the adaptive mesher's own error bookkeeping is checked, not reused.
"""
from __future__ import annotations

import numpy as np

from ..errors import require


def _kernel():
    numba = require("numba", "fast", purpose="measuring mesh error")

    @numba.njit(cache=True, nogil=True)
    def rasterise(heights, xs, ys, zs, triangles, covered):
        err = 0.0
        sq = 0.0
        h, w = heights.shape
        for t in range(triangles.shape[0]):
            a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
            ax, ay, az = xs[a], ys[a], zs[a]
            bx, by, bz = xs[b], ys[b], zs[b]
            cx, cy, cz = xs[c], ys[c], zs[c]
            det = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if det == 0.0:
                continue
            x0 = max(0, int(np.floor(min(ax, bx, cx))))
            x1 = min(w - 1, int(np.ceil(max(ax, bx, cx))))
            y0 = max(0, int(np.floor(min(ay, by, cy))))
            y1 = min(h - 1, int(np.ceil(max(ay, by, cy))))
            eps = 1e-9 * abs(det)
            for y in range(y0, y1 + 1):
                for x in range(x0, x1 + 1):
                    l1 = ((bx - x) * (cy - y) - (by - y) * (cx - x)) / det
                    l2 = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / det
                    l3 = 1.0 - l1 - l2
                    lim = -eps / abs(det)
                    if l1 < lim or l2 < lim or l3 < lim:
                        continue
                    d = abs(heights[y, x] - (l1 * az + l2 * bz + l3 * cz))
                    if not covered[y, x]:
                        covered[y, x] = True
                        sq += d * d
                    if d > err:
                        err = d
        return err, sq

    return rasterise


_RASTERISE = None


def vertical_error(heights: np.ndarray, cols: np.ndarray, rows: np.ndarray, z: np.ndarray, triangles: np.ndarray) -> dict:
    """(H, W) heights; vertices at (cols, rows) in sample units with heights z; (M, 3) triangles ->
    {"max": max |height - mesh| over every covered sample, "rms": RMS over the covered samples,
    "uncovered": samples no triangle covers}. Heights and z in the same units."""
    global _RASTERISE
    if _RASTERISE is None:
        _RASTERISE = _kernel()
    heights = np.ascontiguousarray(heights, dtype=np.float64)
    covered = np.zeros(heights.shape, dtype=np.bool_)
    err, sq = _RASTERISE(
        heights,
        np.ascontiguousarray(cols, dtype=np.float64),
        np.ascontiguousarray(rows, dtype=np.float64),
        np.ascontiguousarray(z, dtype=np.float64),
        np.ascontiguousarray(triangles, dtype=np.int64).reshape(-1, 3),
        covered,
    )
    n_cov = int(covered.sum())
    return {"max": float(err), "rms": float(np.sqrt(sq / max(n_cov, 1))), "uncovered": int(covered.size - n_cov)}
