"""Optional quality pass after RTIN: greedy half-edge collapses that keep the exact error bound.

An interior vertex v is merged into a neighbour u when every triangle of v's fan that survives (v replaced
by u) keeps a strictly positive orientation and an exact max error <= bound over every grid sample it
covers. Positive orientation of the whole new fan means it tiles v's star polygon exactly (no overlap,
no gap, no new T-junction), and the border is never touched (border vertices never move), so the mesh stays
a crack-free cover of the grid. Each pass locks the one-ring of every collapse, so adjacency built at the
start of a pass stays valid for the vertices still free; passes repeat while they remove enough vertices.
"""
from __future__ import annotations

import numpy as np

from .rtin_kernels import _njit, plane_through


@_njit
def _fan_triangle_error(heights, ax, ay, bx, by, cx, cy, limit):
    """Max |height - plane| over the samples of an arbitrary counter-clockwise (in (col, -row)) triangle with
    integer vertices; stops early above `limit`."""
    za, gx, gy = plane_through(heights, ax, ay, bx, by, cx, cy)
    # orientation in (col, row) is negative (counter-clockwise with y = -row): inside <=> all edge functions <= 0
    err = 0.0
    for y in range(min(ay, by, cy), max(ay, by, cy) + 1):
        for x in range(min(ax, bx, cx), max(ax, bx, cx) + 1):
            e0 = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
            e1 = (cx - bx) * (y - by) - (cy - by) * (x - bx)
            e2 = (ax - cx) * (y - cy) - (ay - cy) * (x - cx)
            if e0 > 0 or e1 > 0 or e2 > 0:
                continue
            d = abs(np.float64(heights[y, x]) - (za + gx * (x - ax) + gy * (y - ay)))
            if d > err:
                err = d
                if err > limit:
                    return err
    return err


@_njit
def _orientation(ax, ay, bx, by, cx, cy):
    # > 0 for counter-clockwise seen from +Z (model y = -row)
    return -((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))


@_njit
def _collapse_pass(heights, tris, alive, grid_cols, bound):
    gh, gw = heights.shape
    nv = gh * gw
    # vertex -> alive triangles (CSR), built once per pass
    count = np.zeros(nv + 1, dtype=np.int64)
    for t in range(tris.shape[0]):
        if alive[t]:
            for k in range(3):
                count[tris[t, k] + 1] += 1
    start = np.cumsum(count)
    fill = start.copy()
    fan = np.empty(start[nv], dtype=np.int64)
    for t in range(tris.shape[0]):
        if alive[t]:
            for k in range(3):
                v = tris[t, k]
                fan[fill[v]] = t
                fill[v] += 1
    locked = np.zeros(nv, dtype=np.bool_)
    removed = 0
    for v in range(nv):
        n_fan = start[v + 1] - start[v]
        if n_fan == 0 or locked[v]:
            continue
        vr = v // grid_cols
        vc = v % grid_cols
        if vr == 0 or vc == 0 or vr == gh - 1 or vc == gw - 1:
            continue
        done = False
        for i in range(start[v], start[v + 1]):
            if done:
                break
            t0 = fan[i]
            for k0 in range(3):
                u = tris[t0, k0]
                if u == v or locked[u]:
                    continue
                ok = True
                for j in range(start[v], start[v + 1]):
                    t = fan[j]
                    has_u = tris[t, 0] == u or tris[t, 1] == u or tris[t, 2] == u
                    if has_u:
                        continue
                    w0 = u if tris[t, 0] == v else tris[t, 0]
                    w1 = u if tris[t, 1] == v else tris[t, 1]
                    w2 = u if tris[t, 2] == v else tris[t, 2]
                    ax, ay = w0 % grid_cols, w0 // grid_cols
                    bx, by = w1 % grid_cols, w1 // grid_cols
                    cx, cy = w2 % grid_cols, w2 // grid_cols
                    if _orientation(ax, ay, bx, by, cx, cy) <= 0:
                        ok = False
                        break
                    if _fan_triangle_error(heights, ax, ay, bx, by, cx, cy, bound) > bound:
                        ok = False
                        break
                if not ok:
                    continue
                for j in range(start[v], start[v + 1]):
                    t = fan[j]
                    if tris[t, 0] == u or tris[t, 1] == u or tris[t, 2] == u:
                        alive[t] = False
                    else:
                        for k in range(3):
                            if tris[t, k] == v:
                                tris[t, k] = u
                        for k in range(3):
                            locked[tris[t, k]] = True
                locked[v] = True
                locked[u] = True
                removed += 1
                done = True
                break
    return removed


def collapse_vertices(heights: np.ndarray, triangles: np.ndarray, bound: float, *, max_passes: int = 6,
                      min_gain: float = 0.01) -> np.ndarray:
    """(GH, GW) float32 heights, (M, 3) int64 triangles (vertex ids row*GW+col, counter-clockwise, error <= bound)
    -> (M', 3) int64 triangles, M' <= M, still error <= bound at every sample, same border, no cracks."""
    heights = np.ascontiguousarray(heights, dtype=np.float32)
    tris = np.ascontiguousarray(triangles, dtype=np.int64).copy()
    alive = np.ones(tris.shape[0], dtype=np.bool_)
    n_vertices = np.unique(tris).size
    for _ in range(max_passes):
        removed = _collapse_pass(heights, tris, alive, heights.shape[1], float(bound))
        if removed <= min_gain * n_vertices:
            break
    return tris[alive]


@_njit
def _generic_errors(heights, triangles, grid_cols, out):
    for t in range(triangles.shape[0]):
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        out[t] = _fan_triangle_error(heights, a % grid_cols, a // grid_cols, b % grid_cols, b // grid_cols,
                                     c % grid_cols, c // grid_cols, np.inf)


def mesh_max_error(heights: np.ndarray, triangles: np.ndarray) -> float:
    """Exact max error of any counter-clockwise triangulation of grid samples (rtin_kernels.mesh_max_error
    assumes RTIN's right-isosceles shapes)."""
    if triangles.shape[0] == 0:
        return 0.0
    out = np.empty(triangles.shape[0], dtype=np.float64)
    _generic_errors(np.ascontiguousarray(heights, dtype=np.float32), triangles, heights.shape[1], out)
    return float(out.max())
