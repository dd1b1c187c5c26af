"""The "quick" quality pass: half-edge collapses on RTIN's own mesh with every ring read from the grid.

In RTIN's mesh every edge at a vertex runs along one of the 8 axis / diagonal directions, and the neighbour on
each is the nearest RTIN vertex along it at a power-of-two distance up to the vertex's level distance h (the
largest power of two dividing both x and y): on every direction for a "square" vertex (x/h and y/h odd), on the
axes for an "edge" vertex (one of them even), h/2 on its diagonals; a direction with none has no edge. After
collapses, a ring is that ring with every collapsed vertex replaced by the vertex it went into (a half-edge
collapse v -> u changes only triangles around v: v becomes u, those holding both die).

So no mesh structure is built (no compaction, no vertex -> triangle lists, which are most of the fixed cost of
"fast" on dense meshes). Levels go from fine to coarse, and at each level the edge vertices, then the square
ones: no two vertices of one class are neighbours, so each class runs in parallel and the result does not depend
on the thread count or the triangle order. The decision for a vertex is the sweep's (simplify._choose: scored by
the error at v, the best positive candidate rasterised, the exact bound over every covered sample). A vertex
something collapsed into keeps its place (its ring is no longer the grid's): that, and leaving the grid border
as RTIN made it, are why "quick" keeps 1-14% more triangles than "fast" on the benchmark maps. The output is
RTIN's triangles with each corner mapped through the collapses, the degenerate ones dropped.
"""
from __future__ import annotations

import numpy as np

from .rtin_kernels import _njit_inline, _njit_par, _prange
from .simplify import (FINE_DX, FINE_DY, TIE_MARGIN, _abs_max, _block_starts, _choose, _clearly_kept,
                       _mark_used, vertex_id_dtype)
from .workspace import workspace


@_njit_inline
def _tight_kept(heights, x, y, hv, limit):
    """True if no collapse of v whose new ring lies in v's 3 x 3 neighbourhood leaves v within limit: the new
    triangle holding v is then one of the triangles of those 8 samples around the centre: those of an RTIN square
    vertex (_clearly_kept: an opposite pair with v on it; an axis sample and the two corners across), and a
    corner with the two axis samples across (weights 1/3 each)."""
    if not _clearly_kept(heights, x, y, hv, limit, True):
        return False
    n, s = np.float64(heights[y - 1, x]), np.float64(heights[y + 1, x])
    w, e = np.float64(heights[y, x - 1]), np.float64(heights[y, x + 1])
    third = 1.0 / 3.0
    for corner, a, b in ((heights[y - 1, x + 1], w, s), (heights[y - 1, x - 1], e, s),
                         (heights[y + 1, x - 1], n, e), (heights[y + 1, x + 1], n, w)):
        if abs(hv - third * (np.float64(corner) + a + b)) <= limit:
            return False
    return True


@_njit_par
def _level_pass(heights, used, target, frozen, h, square, bound, margin, dirs_x, dirs_y):
    """One class of one level: every used interior vertex (x, y) whose level distance is h, x/h and y/h both odd
    (square) or exactly one of them odd (edge), not something's target: its ring from the grid (module doc),
    mapped through `target`; _choose's collapse sets target[v] and freezes the vertex it went into."""
    gh, gw = heights.shape
    lims = np.empty(8, dtype=np.int64)
    for k in range(8):
        lims[k] = h if (square or dirs_x[k] == 0 or dirs_y[k] == 0) else h // 2
    limit = bound + margin
    for r in _prange((gh - 2) // h):
        y = (r + 1) * h
        odd_row = ((y // h) & 1) == 1
        if square and not odd_row:
            continue
        x0 = 2 * h if (odd_row and not square) else h
        ints = np.empty((7, 8), dtype=np.int64)  # one allocation per row for the ring's scratch
        tid, tx, ty, ids, rx, ry, inside = ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6]
        floats = np.empty((2, 8), dtype=np.float64)
        rz, score = floats[0], floats[1]
        for x in range(x0, gw - 1, 2 * h):
            v = y * gw + x
            if not used[v] or frozen[v]:
                continue
            hv = np.float64(heights[y, x])
            # the finest vertices: most stay, decided from the 3 x 3 samples while the ring is RTIN's (edge: before
            # any collapse, the 4 axis neighbours; square: while no axis neighbour went). That test covers every
            # collapse of such a ring, so _tight_kept below would only repeat it.
            screened = h == 1 and (not square or (target[v - 1] < 0 and target[v + 1] < 0 and target[v - gw] < 0
                                                  and target[v + gw] < 0))
            if screened and _clearly_kept(heights, x, y, hv, limit, square):
                continue
            d = 0
            for k in range(8):
                w = -1
                xx = 0
                yy = 0
                dist = 1
                while dist <= lims[k]:
                    xx = x + dirs_x[k] * dist
                    yy = y + dirs_y[k] * dist
                    if xx < 0 or yy < 0 or xx >= gw or yy >= gh:
                        break
                    if used[yy * gw + xx]:
                        w = yy * gw + xx
                        break
                    dist *= 2
                if w < 0:
                    continue
                t = np.int64(target[w])
                if t >= 0:
                    w = t
                    yy = t // gw
                    xx = t - yy * gw
                if d > 0 and tid[d - 1] == w:  # two neighbours went into the same vertex
                    continue
                tid[d] = w
                tx[d] = xx
                ty[d] = yy
                d += 1
            if d > 1 and tid[d - 1] == tid[0]:
                d -= 1
            if d < 3:
                continue
            s = 0  # the ring starts at its smallest vertex id, as the sweep's do (ties break alike)
            for i in range(1, d):
                if tid[i] < tid[s]:
                    s = i
            lo_z = np.inf
            hi_z = -np.inf
            tight = True
            j = s
            for i in range(d):
                ids[i] = tid[j]
                rx[i] = tx[j] - x
                ry[i] = ty[j] - y
                z = np.float64(heights[ty[j], tx[j]])
                rz[i] = z
                lo_z = min(lo_z, z)
                hi_z = max(hi_z, z)
                if abs(rx[i]) > 1 or abs(ry[i]) > 1:
                    tight = False
                j = j + 1 if j + 1 < d else 0
            if hv > hi_z + bound or hv < lo_z - bound:
                continue  # the new surface at v interpolates ring heights
            if tight and not screened and _tight_kept(heights, x, y, hv, limit):
                continue
            chosen = _choose(heights, rx, ry, rz, d, x, y, hv, bound, margin, tight, 1, score, inside)
            if chosen < 0:
                continue
            target[v] = ids[chosen]
            frozen[ids[chosen]] = True  # every writer stores True; no vertex of this class reads it


@_njit_par
def _mapped_alive(tris, target, alive):
    for t in _prange(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        if target[a] >= 0:
            a = target[a]
        if target[b] >= 0:
            b = target[b]
        if target[c] >= 0:
            c = target[c]
        alive[t] = a != b and b != c and a != c


@_njit_par
def _mapped_into(tris, target, alive, size, first, out):
    m = tris.shape[0]
    for b in _prange(first.size - 1):
        i = first[b]
        for t in range(b * size, min(m, (b + 1) * size)):
            if alive[t]:
                for q in range(3):
                    c = tris[t, q]
                    tc = target[c]
                    out[i, q] = tc if tc >= 0 else c
                i += 1


def quick_collapse(heights: np.ndarray, triangles: np.ndarray, bound: float) -> np.ndarray:
    """(GH, GW) heights, RTIN's mesh of this grid ((M, 3) vertex ids row*GW+col, any order, error <= bound) ->
    its triangles after the "quick" pass (simplify.vertex_id_dtype ids): still error <= bound at every sample,
    the same outline, no cracks. Only RTIN's own mesh: the rings come from the grid (module doc)."""
    heights = np.ascontiguousarray(heights, dtype=np.float32)
    dtype = vertex_id_dtype(heights.size)
    if triangles.shape[0] == 0:
        return np.asarray(triangles, dtype=dtype).reshape(0, 3)
    if triangles.dtype not in (np.int32, np.int64):
        triangles = triangles.astype(np.int64)
    triangles = np.ascontiguousarray(triangles)  # int32 from adaptive_triangles: half the bytes to read
    bound = float(bound)
    ws = workspace()
    target = _collapse_levels(heights, _mark_used(triangles, heights.size, ws), bound, ws)
    alive = ws.get("quick.alive", triangles.shape[0], np.bool_)
    _mapped_alive(triangles, target, alive)
    size, first = _block_starts(alive)
    out = np.empty((int(first[-1]), 3), dtype=dtype)  # the caller's: fresh, from numpy (see simplify._compact)
    _mapped_into(triangles, target, alive, size, first, out)
    return out


def _collapse_levels(heights, used, bound, ws):
    """The levels fine to coarse, edge class then square class (_level_pass) -> target: grid vertex -> the
    vertex it collapsed into, -1 where it stays (workspace scratch)."""
    gh, gw = heights.shape
    margin = TIE_MARGIN * _abs_max(heights)
    target = ws.get("quick.target", heights.size, vertex_id_dtype(heights.size), fill=-1)
    frozen = ws.get("quick.frozen", heights.size, np.bool_, fill=False)
    h = 1
    while h < max(gh, gw):
        for square in (False, True):
            _level_pass(heights, used, target, frozen, h, square, float(bound), margin, FINE_DX, FINE_DY)
        h *= 2
    return target

