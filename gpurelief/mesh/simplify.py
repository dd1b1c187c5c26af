"""Optional quality pass after RTIN: greedy half-edge collapses that keep the exact error bound.

An interior vertex v is merged into a neighbour u when every triangle of v's fan that survives (v replaced
by u) keeps a strictly positive orientation and an exact max error <= bound over every grid sample it
covers. Positive orientation of the whole new fan means it tiles v's star polygon exactly (no overlap,
no gap, no new T-junction), so the mesh stays a crack-free cover of the grid. A vertex on the grid border
(not a corner) merges only along its border line, into a border neighbour (_sweep_border, first in each
sweep): the outline stays the grid's rectangle. RTIN splits every triangle that straddles the real border of
a grid that is not (2^k+1)^2, down to the finest level along it; those merges take most of that back (a flat
451 x 300 map: 2,009 RTIN triangles, 2 after "full"; 1-8% fewer triangles on rough maps of such sizes).

Engine (one "sweep"): vertex -> triangle lists (CSR) are built once per sweep over the vertices the mesh uses.
A collapse v -> u keeps every other vertex's list exact (triangles only lose v or die, and dead ones are
skipped), except u's, which misses v's old triangles: u is "stale" and waits for the next sweep as a
removal candidate (it can still be a target). A candidate u first passes a cheap test, the error at v itself
under u's new fan (integer orientation tests and one interpolation), and only then is its new fan
rasterised (row spans, early exit above the bound). A vertex is retried only when its one-ring changed.
On RTIN's own mesh (rtin=True) the finest vertices go first, in two independent classes decided from the grid
alone (_fine_collapses: their rings are known), and the sweep then tries only the others and those whose ring
changed. Finest first is also the better greedy order: 0.76-1.08x pydelatin's triangles on the benchmark maps
where the row-major sweep of every vertex gave 0.77-1.17x.

Parallel: rows are cut into stripes that all run in parallel: a vertex whose one-ring lies inside its stripe's
rows reads and writes only triangles whose corners all lie there and flags of those corners, which no vertex of
another stripe touches (its own one-ring lies in other rows). The vertices whose one-ring straddles two stripes
follow in stripes shifted by half a stripe, also in parallel, and the few left (one-rings taller than half a
stripe) in one serial sweep.

Effort: every candidate of a vertex is scored by the error at v (one point location in the new fan each) and
the best ones are rasterised first. "fast" = one sweep, only the best positive candidate is rasterised (on the
benchmark maps, with rtin=True: RTIN's 1.0-2.1x pydelatin's triangle count becomes 0.76-1.08x). "full" = sweeps
that rasterise candidates best first until one passes, repeated until nothing more collapses (0.56-0.86x,
1.2-2.5x the time of "fast").
"""
from __future__ import annotations

import numpy as np

from .rtin_kernels import (_njit, _njit_inline, _njit_par, _prange, plane_through, span_max_deviation,
                           vertex_id_dtype)
from .workspace import workspace

try:
    from numba import get_num_threads as _num_threads
except ImportError:  # pragma: no cover - no numba: plain Python, one thread
    def _num_threads():
        return 1
try:
    from numba import set_parallel_chunksize as _set_chunksize
except ImportError:  # pragma: no cover - numba < 0.57 or no numba: static chunks
    def _set_chunksize(n):
        return 0

EFFORTS = ("quick", "fast", "full")
FULL_MIN_GAIN = 0.001  # "full" stops after a sweep that removes fewer than this fraction of the vertices
# rows per stripe of the parallel sweep: tall enough that most one-rings fit inside one (those that do not wait
# for a serial sweep), small enough to give many stripes to share out (see _stripe_rows)
STRIPE_ROWS = 64
MIN_STRIPES = 8
TIE_MARGIN = 2.0 ** -40  # relative to the largest |height|: far above the rounding of either way to interpolate


@_njit_inline
def _clip(lo, hi, a, b, inv_a):
    """[lo, hi] intersected with the integers x where a * x + b <= 0 (integers a, b, |a| < 2^20; inv_a = 1 / a).

    floor(-b / a) by a float multiply: the true quotient is an integer or at least 1/|a| away from one and the
    float product is within 1e-9 of it, so adding 0.5/|a| before flooring gives the exact integer floor."""
    if a > 0:
        hi = min(hi, np.int64(np.floor(-b * inv_a + 0.5 * inv_a)))
    elif a < 0:
        lo = max(lo, -np.int64(np.floor(b * inv_a - 0.5 * inv_a)))
    elif b > 0:
        hi = lo - 1
    return lo, hi


@_njit_inline
def _fan_triangle_error(heights, ax, ay, bx, by, cx, cy, limit):
    """Max |height - plane| over the samples of an arbitrary counter-clockwise (in (col, -row)) triangle with
    integer vertices, one row span at a time; stops early above `limit`."""
    za, gx, gy = plane_through(heights, ax, ay, bx, by, cx, cy)
    # orientation in (col, row) is negative (counter-clockwise with y = -row): inside <=> every edge function
    # e(x) = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) <= 0, which is a * x + b on one row
    a0, a1, a2 = ay - by, by - cy, cy - ay
    # three reciprocals from one division (products < 2^42 are exact; a few ulps do not matter to _clip)
    f0 = np.float64(a0 if a0 != 0 else 1)
    f1 = np.float64(a1 if a1 != 0 else 1)
    f2 = np.float64(a2 if a2 != 0 else 1)
    inv = 1.0 / (f0 * f1 * f2)
    i0 = f1 * f2 * inv
    i1 = f0 * f2 * inv
    i2 = f0 * f1 * inv
    err = 0.0
    xmin = min(ax, bx, cx)
    xmax = max(ax, bx, cx)
    for y in range(min(ay, by, cy), max(ay, by, cy) + 1):
        lo, hi = _clip(xmin, xmax, a0, (bx - ax) * (y - ay) - a0 * ax, i0)
        lo, hi = _clip(lo, hi, a1, (cx - bx) * (y - by) - a1 * bx, i1)
        lo, hi = _clip(lo, hi, a2, (ax - cx) * (y - cy) - a2 * cx, i2)
        if lo > hi:
            continue
        err = span_max_deviation(heights[y], lo, hi, za + gx * (lo - ax) + gy * (y - ay), gx, err)
        if err > limit:
            return err
    return err


@_njit_inline
def _orientation(ax, ay, bx, by, cx, cy):
    # > 0 for counter-clockwise seen from +Z (model y = -row)
    return -((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))


COMPACT_BLOCKS = 256  # blocks of a mask counted (then numbered or gathered) in parallel


@_njit_inline
def _byte_sum(w):
    """Sum of the 8 bytes of a uint64 whose bytes are each 0 or 1 (8 flags of a bool array at once)."""
    w = (w & np.uint64(0x00FF00FF00FF00FF)) + ((w >> np.uint64(8)) & np.uint64(0x00FF00FF00FF00FF))
    w = (w & np.uint64(0x0000FFFF0000FFFF)) + ((w >> np.uint64(16)) & np.uint64(0x0000FFFF0000FFFF))
    return np.int64((w & np.uint64(0xFFFFFFFF)) + (w >> np.uint64(32)))


@_njit_par
def _block_counts(mask, words):
    n = mask.size
    size = ((n + COMPACT_BLOCKS - 1) // COMPACT_BLOCKS + 7) // 8 * 8  # whole words per block
    first = np.zeros(COMPACT_BLOCKS + 1, dtype=np.int64)
    for b in _prange(COMPACT_BLOCKS):
        lo = b * size
        hi = min(n, lo + size)
        c = 0
        whole = min(hi // 8, words.size)
        for i in range(lo // 8, whole):
            c += _byte_sum(words[i])
        for i in range(max(lo, whole * 8), hi):
            c += mask[i]
        first[b + 1] = c
    for b in range(COMPACT_BLOCKS):
        first[b + 1] += first[b]
    return size, first


def _words(mask):
    """The whole 8-flag words of a contiguous bool array, as uint64 (a view)."""
    return mask[: mask.size // 8 * 8].view(np.uint64)


def _block_starts(mask):
    """Mask (n,) bool cut into COMPACT_BLOCKS blocks of `size` (a multiple of 8) -> (size, first): first[b] = how
    many True before block b (first[-1] = all of them). Counted 8 flags at a time (_byte_sum): 2.8 -> 0.5 ms for
    the 4.2M flags of a 2049^2 grid."""
    return _block_counts(mask, _words(mask))


@_njit_par
def _mark_used_into(tris, used):
    for t in _prange(tris.shape[0]):
        for k in range(3):
            used[tris[t, k]] = True  # every writer stores True: the races agree


def _alloc(ws, name, shape, dtype, fill=None):
    """A scratch array from workspace `ws` (mesh/workspace.py), or a fresh one when ws is None."""
    if ws is not None:
        return ws.get(name, shape, dtype, fill=fill)
    if fill is None:
        return np.empty(shape, dtype=dtype)
    return np.full(shape, fill, dtype=dtype)


def _mark_used(tris, nv, ws=None):
    """-> (nv,) bool: the grid samples some triangle uses."""
    used = _alloc(ws, "used", nv, np.bool_, False)
    _mark_used_into(tris, used)
    return used


@_njit_par
def _compact_into(tris, grid_cols, used, words, target, size, first, cid, vid, vrow, vcol, ctri, alive, bad):
    nv = used.size
    for b in _prange(COMPACT_BLOCKS):
        c = first[b]
        v = b * size
        hi = min(nv, v + size)
        while v < hi:
            if (v & 7) == 0 and (v >> 3) < words.size and words[v >> 3] == 0:  # 8 unused samples (coarse meshes)
                v += 8
                continue
            if used[v]:
                cid[v] = c
                vid[c] = v
                vrow[c] = v // grid_cols
                vcol[c] = v % grid_cols
                c += 1
            v += 1
    mapped = target.size > 0
    for t in _prange(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        live = True
        if mapped:
            ta, tb, tc = target[a], target[b], target[c]
            if ta >= 0:
                live = ta != b and ta != c
                a = ta
            elif tb >= 0:
                live = tb != a and tb != c
                b = tb
            elif tc >= 0:
                live = tc != a and tc != b
                c = tc
            if live and not (used[a] and used[b] and used[c]):  # two collapsed vertices: not RTIN's mesh
                bad[t] = True
                live = False
        alive[t] = live
        if live:
            ctri[t, 0], ctri[t, 1], ctri[t, 2] = cid[a], cid[b], cid[c]
        else:
            ctri[t, 0] = ctri[t, 1] = ctri[t, 2] = 0


def _compact(tris, grid_cols, used, target, ws=None):
    """Grid vertex ids -> (used vertex ids ascending (N,) int64, their rows and columns (N,) int32, triangles
    as indices into them (M, 3) int32, alive (M,) bool, bad: triangles that held two collapsed vertices).
    Parallel: count per block, number per block, remap.

    target (size 0: none): grid vertex v -> the vertex it collapses into (-1: stays); then `used` must already
    exclude the collapsed ones, each triangle holds at most one of them, and a triangle that holds both v and
    target[v] dies (_fine_collapses).
    Arrays come from the workspace `ws` (or numpy), never from inside the compiled code: numba's allocator
    neither reuses large blocks nor asks for huge pages, and first touches of fresh 4 KiB pages cost about
    0.4 ms per MB (a 43 MB output took 18 ms in numba, 4 ms from numpy)."""
    m = tris.shape[0]
    size, first = _block_starts(used)
    n = int(first[COMPACT_BLOCKS])
    cid = _alloc(ws, "cid", used.size, np.int32)
    vid = _alloc(ws, "vid", n, np.int64)
    vrow = _alloc(ws, "vrow", n, np.int32)
    vcol = _alloc(ws, "vcol", n, np.int32)
    ctri = _alloc(ws, "ctri", (m, 3), np.int32)
    alive = _alloc(ws, "alive", m, np.bool_)
    bad = _alloc(ws, "bad", m if target.size > 0 else 0, np.bool_, False)
    _compact_into(tris, grid_cols, used, _words(used), target, size, first, cid, vid, vrow, vcol, ctri, alive, bad)
    return vid, vrow, vcol, ctri, alive, bad


@_njit_par
def _alive_into(vid, ctri, alive, size, first, out):
    m = ctri.shape[0]
    for b in _prange(COMPACT_BLOCKS):
        i = first[b]
        for t in range(b * size, min(m, (b + 1) * size)):
            if alive[t]:
                for k in range(3):
                    out[i, k] = vid[ctri[t, k]]
                i += 1


def _alive_triangles(vid, ctri, alive, dtype=np.int64):
    """-> (M', 3) grid vertex ids of the alive triangles, in order (blocks counted, then written, in
    parallel; the output allocated by numpy, see _compact)."""
    size, first = _block_starts(alive)
    out = np.empty((int(first[COMPACT_BLOCKS]), 3), dtype=dtype)
    _alive_into(vid, ctri, alive, size, first, out)
    return out


def number_vertices(triangles: np.ndarray, grid_size: tuple[int, int]):
    """(M, 3) grid vertex ids -> (rows, cols of the used samples in grid order (N,) int32, the triangles as
    indices into them (M, 3) int32), in parallel; fresh arrays (the caller keeps them)."""
    gh, gw = grid_size
    triangles = np.ascontiguousarray(triangles)
    _, rows, cols, local, _, _ = _compact(triangles, gw, _mark_used(triangles, gh * gw),
                                          np.empty(0, dtype=triangles.dtype))
    return rows, cols, local


FAN_CHUNKS = 4  # at most this many threads count and fill the fan lists (one private count array each)
FAN_COUNT_BYTES = 1 << 28


@_njit_par
def _fan_walk(ctri, alive, slot, fan):
    """Each chunk k's alive triangles t in order, each corner c: slot[k, c] += 1, after storing t at
    fan[slot[k, c]] when fan is given (size > 0; slot then holds where each chunk writes in each list)."""
    chunks = slot.shape[0]
    m = ctri.shape[0]
    size = (m + chunks - 1) // chunks
    fill = fan.size > 0
    for k in _prange(chunks):
        for t in range(k * size, min(m, (k + 1) * size)):
            if alive[t]:
                for q in range(3):
                    c = ctri[t, q]
                    if fill:
                        fan[slot[k, c]] = t
                    slot[k, c] += 1


@_njit
def _fan_starts(slot, start):
    """Per-chunk counts (slot) -> where each chunk starts writing in each list (in slot) and the list starts
    (in start) -> (total, largest degree)."""
    chunks, n = slot.shape
    total = 0
    maxdeg = 0
    for c in range(n):
        start[c] = total
        for k in range(chunks):
            here = slot[k, c]
            slot[k, c] = total
            total += here
        maxdeg = max(maxdeg, total - start[c])
    start[n] = total
    return total, maxdeg


def _fans(ctri, alive, n, chunks, ws=None):
    """-> (start (n+1,), fan: alive triangles of vertex c at fan[start[c]:start[c+1]] in ascending order,
    largest degree). The triangles are cut into `chunks` ranges that count and fill in parallel, each into
    its own slots of every list (so the order is the same for any number of chunks). Arrays from numpy (see
    _compact)."""
    slot = _alloc(ws, "slot", (chunks, n), np.int32, 0)
    start = _alloc(ws, "start", n + 1, np.int32)
    _fan_walk(ctri, alive, slot, np.empty(0, dtype=np.int32))
    total, maxdeg = _fan_starts(slot, start)
    fan = _alloc(ws, "fan", int(total), np.int32)
    _fan_walk(ctri, alive, slot, fan)
    return start, fan, int(maxdeg)


@_njit_inline
def _score_all(rx, ry, rz, d, hv, score, inside):
    """For every ring vertex j (ring offsets rx, ry from v, heights rz): score[j] = |hv - new surface at v| for
    the collapse of v into j, inside[j] = i of the new triangle (j, i, i+1) holding v; inf and -1 when none
    holds it (then some new triangle is not positive). v lies in (j, i, i+1) iff it is left of j -> i and of
    i+1 -> j (it is left of i -> i+1: the old fan), and the surface there is interpolated with the integer
    sub-areas. The direction from v away from j turns with j, so i only moves forward: O(d) for all j.
    Positivity of the whole new fan is _positive's (checked only for a candidate about to be rasterised): a
    ranking and a cheap reject; the exact test is _new_fan_within."""
    i = 1
    for j in range(d):
        xj = rx[j]
        yj = ry[j]
        if i == j or i + 1 == j or (j == 0 and i == d - 1):  # behind j (only after a failed search): restart
            i = j + 1 if j + 1 < d else 0
        score[j] = np.inf
        inside[j] = -1
        for _ in range(d):
            i1 = i + 1 if i + 1 < d else 0
            if i1 == j:
                break
            o_i1 = rx[i] * yj - ry[i] * xj  # _orientation(j, i, v)
            o_i = xj * ry[i1] - yj * rx[i1]  # _orientation(i1, j, v)
            if o_i1 >= 0 and o_i >= 0:
                w_j = -(rx[i] * ry[i1] - ry[i] * rx[i1])  # _orientation(v, i, i1) > 0
                z = (w_j * rz[j] + o_i * rz[i] + o_i1 * rz[i1]) / (w_j + o_i + o_i1)
                score[j] = abs(hv - z)
                inside[j] = i
                break
            i = i1


@_njit_inline
def _positive(rx, ry, d, j):
    """True if every new triangle (j, i, i+1) of the collapse into ring vertex j is counter-clockwise (so the
    new fan tiles v's star polygon exactly)."""
    for step in range(1, d - 1):
        i = j + step - d if j + step >= d else j + step
        i1 = i + 1 if i + 1 < d else 0
        if _orientation(rx[j], ry[j], rx[i], ry[i], rx[i1], ry[i1]) <= 0:
            return False
    return True


@_njit_inline
def _new_fan_within(heights, rx, ry, d, j, first, vx, vy, bound):
    """True if every new triangle (j, i, i+1) has max error <= bound; the one holding v is measured first."""
    ax, ay = rx[j] + vx, ry[j] + vy
    for step in range(0, d - 1):
        if step == 0:
            i = first
        else:
            i = j + step - d if j + step >= d else j + step
            if i == first:
                continue
        i1 = i + 1 if i + 1 < d else 0
        if _fan_triangle_error(heights, ax, ay, rx[i] + vx, ry[i] + vy, rx[i1] + vx, ry[i1] + vy, bound) > bound:
            return False
    return True


@_njit_inline
def _choose(heights, rx, ry, rz, d, vx, vy, hv, bound, margin, tight, max_trials, score, inside):
    """The collapse of v (at vx, vy, height hv; ring offsets rx, ry, heights rz, counter-clockwise) -> index of
    the ring vertex it merges into, or -1. Candidates are scored by the error at v and tried best first; one
    whose new fan is not positive does not count as a trial. tight: every ring offset within 1 (see below)."""
    if tight:  # a ring edge between two samples 2 apart passes over a third: that one must be measured
        for i in range(d):
            i1 = i + 1 if i + 1 < d else 0
            if (rx[i1] - rx[i]) % 2 == 0 and (ry[i1] - ry[i]) % 2 == 0:
                tight = False
                break
    _score_all(rx, ry, rz, d, hv, score, inside)
    tried = 0
    while tried < max_trials:
        best = -1
        best_score = bound
        for j in range(d):
            if score[j] <= best_score:
                best_score = score[j]
                best = j
        if best < 0:
            return -1
        score[best] = np.inf
        if not _positive(rx, ry, d, best):
            continue
        tried += 1
        # a tight ring's star holds no sample but v and the ring, whose errors stay 0: v's error decides (the
        # rasteriser, which interpolates in another order, decides within `margin` of the bound)
        if (tight and best_score <= bound - margin) or _new_fan_within(heights, rx, ry, d, best, inside[best], vx,
                                                                        vy, bound):
            return best
    return -1


# RTIN's finest vertices: ring offsets (col, row) counter-clockwise seen from +Z (clockwise in (col, row)),
# starting at the smallest vertex id (as _sweep_range's rings do); odd entries are the axis neighbours
FINE_DX = np.array([-1, -1, -1, 0, 1, 1, 1, 0], dtype=np.int64)  # NW W SW S SE E NE N
FINE_DY = np.array([-1, 0, 1, 1, 1, 0, -1, -1], dtype=np.int64)


@_njit_inline
def _clearly_kept(heights, x, y, hv, limit, square):
    """True if finest vertex (x, y) of RTIN's mesh (ring as in _fine_collapses) has no collapse whose error at
    v itself is <= limit: a collapse into ring vertex X puts v on the segment to X's opposite (mean of the
    two), or, for a square vertex whose opposite axis neighbour is unused, in the triangle of X and the two
    corners beside it (weights 1/2, 1/4, 1/4); both are counted, whichever the mesh uses. Read from the 3 x 3
    neighbourhood, before the ring is built (most finest vertices of a dense mesh stay)."""
    n = np.float64(heights[y - 1, x])
    s = np.float64(heights[y + 1, x])
    w = np.float64(heights[y, x - 1])
    e = np.float64(heights[y, x + 1])
    if abs(hv - 0.5 * (w + e)) <= limit or abs(hv - 0.5 * (n + s)) <= limit:
        return False
    if not square:
        return True
    nw = np.float64(heights[y - 1, x - 1])
    ne = np.float64(heights[y - 1, x + 1])
    sw = np.float64(heights[y + 1, x - 1])
    se = np.float64(heights[y + 1, x + 1])
    if abs(hv - 0.5 * (nw + se)) <= limit or abs(hv - 0.5 * (ne + sw)) <= limit:
        return False
    if abs(hv - 0.5 * e - 0.25 * (nw + sw)) <= limit or abs(hv - 0.5 * w - 0.25 * (ne + se)) <= limit:
        return False
    if abs(hv - 0.5 * n - 0.25 * (sw + se)) <= limit or abs(hv - 0.5 * s - 0.25 * (nw + ne)) <= limit:
        return False
    return True


@_njit_par
def _fine_collapses(heights, used, target, touched, square, bound, margin, max_trials):
    """Phase 1 of the pass on RTIN's own mesh, for one class of its finest vertices (not on the border):
    square=False: x xor y odd, square=True: x and y odd and not touched (no neighbour collapsed).

    Such a vertex is the hypotenuse midpoint of a diamond whose children are never split again, or split once
    at the finest level, so its ring is known from the grid: x xor y odd, the 4 axis neighbours; both odd,
    the 4 diagonal corners and the axis neighbours the mesh uses. No two vertices of one class are neighbours,
    and a square one is tried only if no neighbour went in the first class: every decision is made on RTIN's
    own ring, each collapse changes only its own star, and all are independent (any order, any threads).
    The decision is _choose's, as in _sweep_range. Collapses set target[v], clear used[v] and set touched for
    v's ring."""
    gh, gw = heights.shape
    for y in _prange(1, gh - 1):
        rx = np.empty(8, dtype=np.int64)
        ry = np.empty(8, dtype=np.int64)
        rz = np.empty(8, dtype=np.float64)
        ids = np.empty(8, dtype=np.int64)
        score = np.empty(8, dtype=np.float64)
        inside = np.empty(8, dtype=np.int64)
        odd_y = (y & 1) != 0
        if square and not odd_y:
            continue
        first = 2 if odd_y and not square else 1  # square: x odd on odd rows; edge: x odd on even rows, even on odd
        for x in range(first, gw - 1, 2):
            v = y * gw + x
            if not used[v] or (square and touched[v]):
                continue
            hv = np.float64(heights[y, x])
            if _clearly_kept(heights, x, y, hv, bound + margin, square):
                continue
            d = 0
            if square:
                for k in range(8):
                    dx = FINE_DX[k]
                    dy = FINE_DY[k]
                    w = (y + dy) * gw + (x + dx)
                    if (dx == 0 or dy == 0) and not used[w]:
                        continue
                    rx[d], ry[d], ids[d] = dx, dy, w
                    rz[d] = heights[y + dy, x + dx]
                    d += 1
            else:
                for k in range(4):  # N, W, S, E: from the smallest id on
                    dx = FINE_DX[(2 * k + 7) % 8]
                    dy = FINE_DY[(2 * k + 7) % 8]
                    rx[d], ry[d], ids[d] = dx, dy, (y + dy) * gw + (x + dx)
                    rz[d] = heights[y + dy, x + dx]
                    d += 1
            chosen = _choose(heights, rx, ry, rz, d, x, y, hv, bound, margin, True, max_trials, score, inside)
            if chosen < 0:
                continue
            target[v] = ids[chosen]
            used[v] = False  # a square vertex next to it is touched, so no later decision reads this
            for k in range(d):
                touched[ids[k]] = True  # every writer stores True


@_njit_inline
def _link(v, start, fan, alive, ctri, la, lb, lt):
    """v's alive triangles (from its fan list) -> how many; each one's outer edge la[k] -> lb[k] (counter-clockwise
    around v) and the triangle lt[k]."""
    n = 0
    for i in range(start[v], start[v + 1]):
        t = fan[i]
        if not alive[t]:
            continue
        a, b, c = ctri[t, 0], ctri[t, 1], ctri[t, 2]
        if a == v:
            la[n], lb[n] = b, c
        elif b == v:
            la[n], lb[n] = c, a
        else:
            la[n], lb[n] = a, b
        lt[n] = t
        n += 1
    return n


@_njit_inline
def _follow_link(ring, d, la, lb, n):
    """From ring[0], follow the n outer edges la[k] -> lb[k] (_link) to fill ring[1..d-1] -> d, or 0 when an edge
    is missing (the link is not one cycle / one path)."""
    for i in range(1, d):
        ring[i] = -1
        for k in range(n):
            if la[k] == ring[i - 1]:
                ring[i] = lb[k]
                break
        if ring[i] < 0:
            return 0
    return d


@_njit_inline
def _merge(v, u, n, la, lb, lt, ctri, alive, ring, d, marks, stale):
    """Collapse v into its neighbour u: of v's n triangles (_link), those holding u die, the others take u for v.
    The d vertices of v's one-ring are marked (their fans changed: worth another try) and u is stale (its fan
    list misses v's old triangles until the next sweep)."""
    for k in range(n):
        t = lt[k]
        if la[k] == u or lb[k] == u:
            alive[t] = False
        else:
            for q in range(3):
                if ctri[t, q] == v:
                    ctri[t, q] = u
    for i in range(d):
        marks[ring[i]] = True
    stale[u] = True


@_njit_inline
def _border_choice(heights, rx, ry, rz, d, vx, vy, hv, bound):
    """The collapse of border vertex v (its link a path ring[0..d-1] from one border neighbour to the other, both
    on v's border line) -> 0 or d - 1 (merge along the border into that end), or -1. Either way v's new height is
    the border segment's, so one test rejects both; then each end's new fan is checked positive and rasterised
    (the triangle on the border segment, which holds v, first)."""
    ds = abs(rx[0]) + abs(ry[0])  # distances along the border line (one of x, y is 0)
    de = abs(rx[d - 1]) + abs(ry[d - 1])
    if abs(hv - (rz[0] * de + rz[d - 1] * ds) / (ds + de)) > bound:
        return -1
    # as a cyclic ring closed by the border segment ring[d-1] -> ring[0] (v lies on it), the new fans are
    # _positive's and _new_fan_within's: the triangles that hold the end merged into are left out
    if _positive(rx, ry, d, 0) and _new_fan_within(heights, rx, ry, d, 0, d - 2, vx, vy, bound):
        return 0
    if _positive(rx, ry, d, d - 1) and _new_fan_within(heights, rx, ry, d, d - 1, 0, vx, vy, bound):
        return d - 1
    return -1


@_njit
def _sweep_border(heights, vrow, vcol, ctri, alive, start, fan, maxdeg, dirty, stale, bound, order):
    """The dirty vertices order[...] on the grid border (not corners), in that order, each cleared as tried: one
    merges only along its border line, into a border neighbour, so the border stays the same straight lines and
    the cover and its outline do not change (_border_choice). The one-ring of each merge is set dirty.
    -> removed."""
    gh, gw = heights.shape
    la = np.empty(maxdeg, dtype=np.int32)
    lb = np.empty(maxdeg, dtype=np.int32)
    lt = np.empty(maxdeg, dtype=np.int32)
    ring = np.empty(maxdeg + 1, dtype=np.int32)  # the link is a path: one more vertex than triangles
    rx = np.empty(maxdeg + 1, dtype=np.int64)
    ry = np.empty(maxdeg + 1, dtype=np.int64)
    rz = np.empty(maxdeg + 1, dtype=np.float64)
    removed = 0
    for v in order:
        if not dirty[v] or stale[v]:
            continue
        dirty[v] = False
        vy = np.int64(vrow[v])
        vx = np.int64(vcol[v])
        on_row = vy == 0 or vy == gh - 1
        on_col = vx == 0 or vx == gw - 1
        if on_row == on_col:  # a corner stays (and an interior vertex is not this sweep's)
            continue
        nt = _link(v, start, fan, alive, ctri, la, lb, lt)
        # the link runs from the only vertex no outer edge ends at (set by the geometry, not the triangle order)
        ring[0] = -1
        for k in range(nt):
            head = True
            for q in range(nt):
                if lb[q] == la[k]:
                    head = False
                    break
            if head:
                ring[0] = la[k]
                break
        if ring[0] < 0:
            continue
        d = _follow_link(ring, nt + 1, la, lb, nt)  # 0: not one path (cannot happen in a valid cover): leave v
        if d < 3:
            continue
        for i in range(d):
            ry[i] = np.int64(vrow[ring[i]]) - vy
            rx[i] = np.int64(vcol[ring[i]]) - vx
            rz[i] = heights[vrow[ring[i]], vcol[ring[i]]]
        if (on_row and (ry[0] != 0 or ry[d - 1] != 0)) or (on_col and (rx[0] != 0 or rx[d - 1] != 0)):
            continue  # both ends on v's border line (they are in a valid cover)
        chosen = _border_choice(heights, rx, ry, rz, d, vx, vy, np.float64(heights[vy, vx]), bound)
        if chosen < 0:
            continue
        _merge(v, ring[chosen], nt, la, lb, lt, ctri, alive, ring, d, dirty, stale)
        removed += 1
    return removed


@_njit
def _sweep_range(heights, vid, vrow, vcol, ctri, alive, start, fan, maxdeg, dirty, marks, stale, skipped,
                 bound, margin, max_trials, c_lo, c_hi, row_lo, row_hi):
    """Try the dirty vertices c_lo <= c < c_hi in order (each tried one is cleared); a vertex whose one-ring
    leaves rows [row_lo, row_hi] is marked skipped instead (row_hi < 0: no limit). The one-ring of each
    collapse is set in `marks` (may be `dirty` itself: then later vertices retry in this sweep). Every
    candidate is scored by the error at v and the best are rasterised first, at most max_trials of them.
    -> removed."""
    gh, gw = heights.shape
    la = np.empty(maxdeg, dtype=np.int32)
    lb = np.empty(maxdeg, dtype=np.int32)
    lt = np.empty(maxdeg, dtype=np.int32)
    ring = np.empty(maxdeg, dtype=np.int32)
    rx = np.empty(maxdeg, dtype=np.int64)
    ry = np.empty(maxdeg, dtype=np.int64)
    rz = np.empty(maxdeg, dtype=np.float64)
    score = np.empty(maxdeg, dtype=np.float64)
    inside = np.empty(maxdeg, dtype=np.int64)
    removed = 0
    for v in range(c_lo, c_hi):
        if not dirty[v] or stale[v]:
            continue
        vy = np.int64(vrow[v])
        vx = np.int64(vcol[v])
        if vy == 0 or vx == 0 or vy == gh - 1 or vx == gw - 1:
            continue  # _sweep_border's (stays dirty for the next sweep's)
        hv = np.float64(heights[vy, vx])
        d = _link(v, start, fan, alive, ctri, la, lb, lt)
        # the link of an interior vertex is one cycle: ring[i] -> ring[i+1] is the outer edge of (v, ring[i], ring[i+1]);
        # it starts at its smallest vertex id, so ties between candidates break the same whatever the triangle order
        ring[0] = la[0]
        for k in range(1, d):
            ring[0] = min(ring[0], la[k])
        d = _follow_link(ring, d, la, lb, d)  # 0: not a closed fan (cannot happen in a valid mesh): leave v
        if d < 3:
            dirty[v] = False
            continue
        out = False
        tight = True
        for i in range(d):
            yy = np.int64(vrow[ring[i]])
            ry[i] = yy - vy
            rx[i] = np.int64(vcol[ring[i]]) - vx
            rz[i] = heights[yy, vcol[ring[i]]]
            if row_hi >= 0 and (yy < row_lo or yy > row_hi):
                out = True
            if abs(rx[i]) > 1 or abs(ry[i]) > 1:
                tight = False
        if out:
            skipped[v] = True
            continue
        dirty[v] = False
        # the new surface at v interpolates ring heights: nothing can go if hv is farther than the bound from
        # their range
        lo_z = rz[0]
        hi_z = rz[0]
        for i in range(1, d):
            lo_z = min(lo_z, rz[i])
            hi_z = max(hi_z, rz[i])
        if hv > hi_z + bound or hv < lo_z - bound:
            continue
        chosen = _choose(heights, rx, ry, rz, d, vx, vy, hv, bound, margin, tight, max_trials, score, inside)
        if chosen < 0:
            continue
        _merge(v, ring[chosen], d, la, lb, lt, ctri, alive, ring, d, marks, stale)
        removed += 1
    return removed


@_njit_par
def _sweep_stripes(heights, vid, vrow, vcol, ctri, alive, start, fan, maxdeg, dirty, marks, stale, skipped, bound,
                   margin, max_trials, bounds, cuts):
    """All stripes in parallel: stripe s holds vertices bounds[s] <= c < bounds[s+1], rows
    [cuts[s], cuts[s+1] - 1]; only vertices whose one-ring stays inside are tried (the others are marked
    skipped). A collapse's one-ring lies in its stripe's rows, so no two stripes touch one triangle."""
    n_stripes = bounds.size - 1
    removed = np.zeros(n_stripes, dtype=np.int64)
    for s in _prange(n_stripes):
        removed[s] = _sweep_range(heights, vid, vrow, vcol, ctri, alive, start, fan, maxdeg, dirty, marks, stale,
                                  skipped, bound, margin, max_trials, bounds[s], bounds[s + 1],
                                  cuts[s], cuts[s + 1] - 1)
    return removed.sum()


def _stripe_rows(gh, gw, triangles):
    """Rows per stripe: STRIPE_ROWS, doubled while a typical triangle leg (sqrt(2 * grid area / triangles)) is
    more than 1/16 of it and MIN_STRIPES stripes remain. A coarse mesh has one-rings dozens of rows tall, which
    in 64-row stripes would mostly wait for the serial sweep (2049^2 at 0.5%: 1.4x -> 1.1x of its serial time);
    dense meshes keep 64. Depends on the mesh only (not on the thread count), so every run makes one mesh."""
    rows = STRIPE_ROWS
    leg = np.sqrt(2.0 * gh * gw / max(1, triangles))
    while rows < 16.0 * leg and gh >= 2 * rows * MIN_STRIPES:
        rows *= 2
    return rows


def _border_order(vid, vcol, gh, gw):
    """-> (B,) int64 indices of the used vertices on the grid border, in vertex order (so along each side)."""
    row_starts = np.searchsorted(vid, np.arange(gh + 1, dtype=np.int64) * gw)
    first = row_starts[1:gh - 1]
    last = row_starts[2:gh] - 1
    left = first[(first < row_starts[2:gh]) & (vcol[np.minimum(first, vid.size - 1)] == 0)]
    right = last[(last >= row_starts[1:gh - 1]) & (vcol[np.maximum(last, 0)] == gw - 1)]
    sides = np.sort(np.concatenate([left, right]))
    return np.concatenate([np.arange(row_starts[1]), sides, np.arange(row_starts[gh - 1], vid.size)]).astype(np.int64)


def _sweep(heights, vid, vrow, vcol, ctri, alive, dirty, border, bound, margin, max_trials, parallel, ws=None):
    """One sweep over the dirty vertices (cleared as tried, set again where a one-ring changed), the border ones
    (`border`: _border_order) first. -> removed."""
    # one private int32 count per vertex and chunk: at most FAN_COUNT_BYTES of them
    chunks = max(1, min(FAN_CHUNKS, _num_threads(), FAN_COUNT_BYTES // max(1, 4 * vid.size))) if parallel else 1
    start, fan, maxdeg = _fans(ctri, alive, vid.size, chunks, ws)
    stale = _alloc(ws, "stale", vid.size, np.bool_, False)
    skipped = _alloc(ws, "skipped", vid.size, np.bool_, False)
    gh, gw = heights.shape
    # border vertices first, serially along the border (a merge along a flat stretch leaves the next vertex a
    # longer segment to join); the vertices next to the ones that went are then retried with the rest
    removed = _sweep_border(heights, vrow, vcol, ctri, alive, start, fan, maxdeg, dirty, stale, bound, border)
    rows = _stripe_rows(gh, gw, int(start[-1]) // 3)
    if parallel and gh > 4 * rows:
        # stripes differ in work (dense where the relief is rough): hand them out one at a time
        previous = _set_chunksize(1)
        try:
            cuts = np.minimum(np.arange(0, gh + rows, rows), gh)
            bounds = np.searchsorted(vid, cuts * gw).astype(np.int64)
            removed += int(_sweep_stripes(heights, vid, vrow, vcol, ctri, alive, start, fan, maxdeg, dirty, dirty,
                                          stale, skipped, bound, margin, max_trials, bounds, cuts))
            # one-rings that straddle two stripes: again in parallel, in stripes shifted by half a stripe (most
            # such rings lie inside one of those); their changes wait for the next sweep
            todo = dirty & skipped
            dirty &= ~skipped
            skipped[:] = False
            cuts = np.concatenate(([0], np.minimum(np.arange(rows // 2, gh + rows, rows), gh)))
            bounds = np.searchsorted(vid, cuts * gw).astype(np.int64)
            removed += int(_sweep_stripes(heights, vid, vrow, vcol, ctri, alive, start, fan, maxdeg, todo, dirty,
                                          stale, skipped, bound, margin, max_trials, bounds, cuts))
        finally:
            _set_chunksize(previous)
        # the few left (rings taller than half a stripe): one serial sweep
        removed += _sweep_range(heights, vid, vrow, vcol, ctri, alive, start, fan, maxdeg, todo, dirty, stale,
                                skipped, bound, margin, max_trials, 0, vid.size, 0, -1)
        dirty |= todo  # stale ones left
    else:
        removed += _sweep_range(heights, vid, vrow, vcol, ctri, alive, start, fan, maxdeg, dirty, dirty, stale,
                                skipped, bound, margin, max_trials, 0, vid.size, 0, -1)
    return removed


@_njit_par
def _row_abs_max(heights, out):
    for y in _prange(heights.shape[0]):
        m = 0.0
        for x in range(heights.shape[1]):
            m = max(m, abs(np.float64(heights[y, x])))
        out[y] = m


def _abs_max(heights):
    """max |height| (one parallel pass; numpy's max and min were two passes, 2.4 ms at 2049^2)."""
    out = np.empty(heights.shape[0], dtype=np.float64)
    _row_abs_max(heights, out)
    return float(out.max()) if out.size else 0.0


def collapse_vertices(heights: np.ndarray, triangles: np.ndarray, bound: float, *, effort: str = "fast",
                      parallel: bool = True, rtin: bool = False) -> np.ndarray:
    """(GH, GW) float32 heights, (M, 3) int64 triangles (vertex ids row*GW+col, counter-clockwise, error <= bound)
    -> (M', 3) triangles, M' <= M, still error <= bound at every sample, same outline, no cracks; vertex ids
    int32 unless the grid has 2^31 samples or more (vertex_id_dtype).

    effort "fast": one sweep, each vertex tries its most promising collapse only; "full": sweeps trying every
    candidate until a sweep removes under 0.1% of the vertices (fewer triangles, 1.2-2.5x the time of "fast");
    "quick" (rtin=True only): each vertex tried once, fine to coarse, its ring read from the grid
    (mesh/grid_pass.py: no mesh structure, 1-14% more triangles than "fast", faster on dense meshes).
    rtin: the triangles are RTIN's mesh of this grid (adaptive.rtin_triangles, in any order). The finest
    vertices then go first, decided from the grid alone (_fine_collapses), and the sweep tries only the others
    and those whose ring changed: fewer triangles (finest first is the better greedy order) in about the same
    time on the benchmark maps.
    Other meshes must leave it False.
    """
    if effort not in EFFORTS:
        raise ValueError(f"effort: expected one of {EFFORTS}, got {effort!r}")
    if effort == "quick":  # rings read from the grid, no mesh structure (mesh/grid_pass.py)
        if not rtin:
            raise ValueError("collapse_vertices: effort 'quick' works on RTIN's own mesh only (rtin=True)")
        from .grid_pass import quick_collapse

        return quick_collapse(heights, triangles, bound)
    heights = np.ascontiguousarray(heights, dtype=np.float32)
    if triangles.shape[0] == 0:
        return np.asarray(triangles, dtype=vertex_id_dtype(heights.size)).reshape(0, 3)
    triangles = np.ascontiguousarray(triangles, dtype=np.int64)
    bound = float(bound)
    # _score_all and the rasteriser interpolate in different orders: the tight-ring shortcut decides only cases
    # at least this far below the bound, the rasteriser the rest
    margin = TIE_MARGIN * _abs_max(heights)
    max_trials = 1 if effort == "fast" else 1 << 30
    ws = workspace()  # scratch reused from call to call (see mesh/workspace.py); the result is fresh
    used = _mark_used(triangles, heights.size, ws)
    if rtin:
        target = ws.get("target", heights.size, vertex_id_dtype(heights.size), fill=-1)
        touched = ws.get("touched", heights.size, np.bool_, fill=False)
        for square in (False, True):
            _fine_collapses(heights, used, target, touched, square, bound, margin, max_trials)
    else:
        target = np.empty(0, dtype=np.int64)
    vid, vrow, vcol, ctri, alive, bad = _compact(triangles, heights.shape[1], used, target, ws)
    if bad.any():
        raise ValueError("collapse_vertices(rtin=True): these triangles are not RTIN's mesh of this grid")
    border = _border_order(vid, vcol, *heights.shape)
    if rtin:  # the finest vertices whose ring stayed as it was are done (phase 1 leaves the border alone)
        dirty = touched[vid] | (((vrow | vcol) & 1) == 0)
        dirty[border] = True
    else:
        dirty = np.ones(vid.size, dtype=np.bool_)
    if effort == "fast":
        _sweep(heights, vid, vrow, vcol, ctri, alive, dirty, border, bound, margin, max_trials, parallel, ws)
    else:
        for _ in range(64):  # each sweep retries only vertices whose one-ring changed
            removed = _sweep(heights, vid, vrow, vcol, ctri, alive, dirty, border, bound, margin, max_trials, parallel, ws)
            # the tail is long on step edges (dozens of sweeps removing a handful each): stop below 0.1%
            if removed <= FULL_MIN_GAIN * vid.size:
                break
    return _alive_triangles(vid, ctri, alive, vertex_id_dtype(heights.size))


@_njit_par
def _generic_errors(heights, triangles, grid_cols, out):
    for t in _prange(triangles.shape[0]):
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
