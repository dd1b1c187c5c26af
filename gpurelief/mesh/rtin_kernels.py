"""Exact-error RTIN kernels (numba). Pure functions on integer grid coordinates; see adaptive.py for the model.

Coordinates: x = column, y = row on the padded (S+1) x (S+1) square, S = 2^k. Every vertex that is not a
corner of the square is the hypotenuse midpoint of exactly one "diamond" (the one or two triangles of the
right-triangle hierarchy whose hypotenuse it halves). With s = lowbit(x | y):
  - x/s and y/s both odd ("square" vertex): the diamond is the 2s x 2s square centred on it, cut by the
    diagonal through the corners (cx, cy) with (cx + cy) / 2s even;
  - exactly one odd ("edge" vertex): the hypotenuse is the axis-aligned edge of length 2s through it, and the
    right angles sit at distance s on either side.
Levels are processed fine -> coarse: edge s=1, square s=1, edge s=2, square s=2, ...; vertices of one level
are independent, so each level is one parallel loop (the shape a GPU kernel wants too).

errors[y, x] = max(exact error of the diamond's triangles, errors of their children's hypotenuse midpoints):
monotone up the hierarchy, so "split where errors > E" is crack-free (a vertex forces its parents).
With a finite limit E most triangles are not measured: a triangle's error lies within [d, max(children) + d]
(d = its hypotenuse midpoint's distance to the hypotenuse), and it is rasterised only when that interval
straddles E; the stored value is then an upper bound, and "errors > E" is exactly the measured pyramid's.
"""
from __future__ import annotations

import contextlib
import math
import os

import numpy as np

# numba's OpenMP workers busy-wait after every parallel loop by default (libgomp's active wait policy). On a
# machine whose cores are busy with other work they then take the CPU from the serial code that follows: with
# one of 2 cores taken by another process, a 2049^2 error pyramid took 4-5x longer (every small serial level
# ~15 ms instead of ~0.02 ms). Passive waiting costs a futex wake per parallel loop. A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # the compiled path; without numba the same functions run as (slow) plain Python
    import numba

    _njit = numba.njit(cache=True, nogil=True)
    _njit_par = numba.njit(cache=True, nogil=True, parallel=True)
    # per-vertex helpers are inlined into the level loops: a call that passes arrays bumps their reference
    # counts (atomics shared by all threads), which cost more than the vertex's own work
    _njit_inline = numba.njit(cache=True, nogil=True, inline="always")
    _prange = numba.prange
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    def _njit(f):
        return f

    _njit_par = _njit_inline = _njit
    _prange = range
    HAVE_NUMBA = False

INF = np.inf


@_njit
def plane_through(heights, ax, ay, bx, by, cx, cy):
    """-> (za, gx, gy): the plane through the heights at three integer grid points, z = za + gx*(x-ax) + gy*(y-ay),
    in float64 (operation order mirrored by kernels/rtin.cu)."""
    za = np.float64(heights[ay, ax])
    zb = np.float64(heights[by, bx])
    zc = np.float64(heights[cy, cx])
    ux = bx - ax
    uy = by - ay
    wx = cx - ax
    wy = cy - ay
    det = np.float64(ux * wy - uy * wx)
    gx = ((zb - za) * wy - (zc - za) * uy) / det
    gy = ((zc - za) * ux - (zb - za) * wx) / det
    return za, gx, gy


@_njit_inline
def span_max_deviation(row, lo, hi, base, gx, err):
    """max(err, |row[x] - (base + gx*(x - lo))| for x in lo..hi): one row span of a triangle against its plane,
    in float64 (operation order mirrored by kernels/rtin.cu). Shared with the quality pass (simplify.py)."""
    for x in range(lo, hi + 1):
        d = abs(np.float64(row[x]) - (base + gx * (x - lo)))
        if d > err:
            err = d
    return err


@_njit
def triangle_error(heights, ax, ay, bx, by, cx, cy, real_cols, real_rows, limit):
    """Max |height - plane(a, b, c)| over every grid sample in the closed triangle (float64).

    Triangles not inside the real grid (cols <= real_cols, rows <= real_rows) return 0 when they lie wholly
    in the padding and +inf when they straddle its border (they must be split). The scan stops early once the
    error exceeds `limit` (the value returned is then > limit but not the exact maximum).
    """
    minx = min(ax, bx, cx)
    maxx = max(ax, bx, cx)
    miny = min(ay, by, cy)
    maxy = max(ay, by, cy)
    if maxx > real_cols or maxy > real_rows:
        if minx >= real_cols or miny >= real_rows:
            return 0.0
        return INF
    za, gx, gy = plane_through(heights, ax, ay, bx, by, cx, cy)
    # Right isosceles with the right angle at c: row spans in closed form for the three shapes
    if ay == by:  # horizontal hypotenuse: half-width grows by one per row away from the apex c
        shape = 0
        half = 0
    elif ax == bx:  # vertical hypotenuse at x = ax, apex at distance `half` to the side `sx`
        shape = 1
        half = abs(cx - ax)
    else:  # diagonal hypotenuse, axis-aligned legs of length `half` from c
        shape = 2
        half = abs(bx - ax)
    sx = 1 if (ax + bx) - 2 * cx > 0 else -1
    if shape == 1:
        sx = 1 if cx > ax else -1
    err = 0.0
    for y in range(miny, maxy + 1):
        if shape == 0:
            j = abs(y - cy)
            lo = cx - j
            hi = cx + j
        elif shape == 1:
            w = half - abs(y - cy)
            lo = ax if sx > 0 else ax - w
            hi = ax + w if sx > 0 else ax
        else:
            w = half - abs(y - cy)
            lo = cx if sx > 0 else cx - w
            hi = cx + w if sx > 0 else cx
        err = span_max_deviation(heights[y], lo, hi, za + gx * (lo - ax) + gy * (y - ay), gx, err)
        if err > limit:
            return err
    return err


@_njit_inline
def _vertex_error(heights, errors, x, y, ax, ay, bx, by, c1x, c1y, c2x, c2y, size, real_cols, real_rows, limit, tol,
                  leaf_children):
    """errors[y, x] of the diamond with hypotenuse (a, b) and apexes c1, c2 (an apex off the square: a one-triangle
    diamond). leaf_children: the triangles' children are the finest ones (error 0, no midpoint).

    With a finite limit each triangle inside the grid is first bounded from its children without rasterising it:
    the plane of a child and the parent's plane differ by a linear function that is 0 at the child's other two
    vertices and d = |h(m) - (h(a) + h(b)) / 2| at the shared midpoint m, so
        d <= err(T) <= max(err(C1), err(C2)) + d
    (and the tighter of that and the same bound one level deeper, below). Only when the interval straddles
    the limit (each end widened by `tol` for rounding) is the triangle measured.
    """
    d = abs(np.float64(heights[y, x]) - 0.5 * (np.float64(heights[ay, ax]) + np.float64(heights[by, bx])))
    k1 = 0.0
    k2 = 0.0
    if c1x >= 0 and c1y >= 0 and c1x <= size and c1y <= size and not leaf_children:
        k1 = max(errors[(ay + c1y) // 2, (ax + c1x) // 2], errors[(by + c1y) // 2, (bx + c1x) // 2])
    if c2x >= 0 and c2y >= 0 and c2x <= size and c2y <= size and not leaf_children:
        k2 = max(errors[(ay + c2y) // 2, (ax + c2x) // 2], errors[(by + c2y) // 2, (bx + c2x) // 2])
    err = max(k1, k2)
    if err > limit:
        return err
    if (limit < INF and min(ax, ay, bx, by, c1x, c1y, c2x, c2y) >= 0 and max(ax, bx, c1x, c2x) <= real_cols
            and max(ay, by, c1y, c2y) <= real_rows):
        # the whole diamond inside the grid (the common case): both triangles decided at once when that is enough;
        # the same values as the loop below
        if d > limit + tol:
            return max(err, d)
        if err + d + tol <= limit:
            return err + d + tol
    for side in range(2):
        cx = c1x if side == 0 else c2x
        cy = c1y if side == 0 else c2y
        if cx < 0 or cy < 0 or cx > size or cy > size:
            continue
        if max(ax, bx, cx) > real_cols or max(ay, by, cy) > real_rows:
            if min(ax, bx, cx) >= real_cols or min(ay, by, cy) >= real_rows:
                continue  # wholly in the padding: never measured
            return INF  # straddles the real border: must split
        if limit < INF:
            if d > limit + tol:
                return max(err, d)
            hi = (k1 if side == 0 else k2) + d
            if hi + tol > limit and not leaf_children:
                # one level deeper: over a grandchild G the two planes differ by a linear function whose values at
                # G's vertices are 0, d and the child's own d, so err(T) <= max_G (errors at G's midpoint) +
                # max(d, d_child); G's midpoints halve a-m, c-m, b-m (0 where the grandchildren are the finest)
                dc1 = abs(np.float64(heights[(ay + cy) // 2, (ax + cx) // 2]) - 0.5 * (np.float64(heights[ay, ax]) + np.float64(heights[cy, cx])))
                dc2 = abs(np.float64(heights[(by + cy) // 2, (bx + cx) // 2]) - 0.5 * (np.float64(heights[by, bx]) + np.float64(heights[cy, cx])))
                ga = gb = gc = 0.0
                if (ax + x) % 2 == 0 and (ay + y) % 2 == 0:
                    ga = errors[(ay + y) // 2, (ax + x) // 2]
                    gb = errors[(by + y) // 2, (bx + x) // 2]
                    gc = errors[(cy + y) // 2, (cx + x) // 2]
                hi = min(hi, max(max(ga, gc) + max(d, dc1), max(gc, gb) + max(d, dc2)))
            if hi + tol <= limit:
                err = max(err, hi + tol)
                continue
        err = max(err, triangle_error(heights, ax, ay, bx, by, cx, cy, real_cols, real_rows, limit))
        if err > limit:
            return err
    return err


def _edge_level(heights, errors, s, size, real_cols, real_rows, limit, tol):
    """Errors of the "edge" vertices at scale s (midpoints of axis-aligned edges of length 2s)."""
    n_odd = size // (2 * s)
    n_even = n_odd + 1
    for j in _prange(n_even):  # horizontal edges: x = s(2i+1), y = 2sj
        y = 2 * s * j
        inside_rows = min(y + 1, size) <= real_rows
        for i in range(n_odd):
            x = s * (2 * i + 1)
            if s == 1 and inside_rows and x + 1 <= real_cols:
                # both triangles cover only their corners and the midpoint of their shared hypotenuse
                errors[y, x] = abs(np.float64(heights[y, x]) - 0.5 * (np.float64(heights[y, x - 1]) + np.float64(heights[y, x + 1])))
            else:
                errors[y, x] = _vertex_error(heights, errors, x, y, x - s, y, x + s, y, x, y - s, x, y + s, size,
                                             real_cols, real_rows, limit, tol, s == 1)
    for j in _prange(n_odd):  # vertical edges: x = 2si, y = s(2j+1)
        y = s * (2 * j + 1)
        inside_rows = y + 1 <= real_rows
        for i in range(n_even):
            x = 2 * s * i
            if s == 1 and inside_rows and min(x + 1, size) <= real_cols:
                errors[y, x] = abs(np.float64(heights[y, x]) - 0.5 * (np.float64(heights[y - 1, x]) + np.float64(heights[y + 1, x])))
            else:
                errors[y, x] = _vertex_error(heights, errors, x, y, x, y - s, x, y + s, x - s, y, x + s, y, size,
                                             real_cols, real_rows, limit, tol, s == 1)


def _square_level(heights, errors, s, size, real_cols, real_rows, limit, tol):
    """Errors of the "square" vertices at scale s (centres of 2s x 2s squares; the children's hypotenuses are
    the square's sides, edge vertices at scale s)."""
    n_side = size // (2 * s)
    for j in _prange(n_side):
        y = s * (2 * j + 1)
        for i in range(n_side):
            x = s * (2 * i + 1)
            if (i + j) % 2 == 0:  # hypotenuse (x-s, y-s)-(x+s, y+s); right angles at the other corners
                ax, ay, bx, by = x - s, y - s, x + s, y + s
                c1x, c1y, c2x, c2y = x + s, y - s, x - s, y + s
            else:
                ax, ay, bx, by = x + s, y - s, x - s, y + s
                c1x, c1y, c2x, c2y = x - s, y - s, x + s, y + s
            if s == 1 and x + 1 <= real_cols and y + 1 <= real_rows:
                # a 2x2 square inside the grid: off the legs (covered by the children) each triangle holds
                # only the centre, on the hypotenuse
                child = max(errors[y - 1, x], errors[y + 1, x], errors[y, x - 1], errors[y, x + 1])
                if child <= limit:
                    mid = np.float64(heights[y, x])
                    child = max(child, abs(mid - 0.5 * (np.float64(heights[ay, ax]) + np.float64(heights[by, bx]))))
                errors[y, x] = child
            else:
                errors[y, x] = _vertex_error(heights, errors, x, y, ax, ay, bx, by, c1x, c1y, c2x, c2y, size,
                                             real_cols, real_rows, limit, tol, False)


# One compiled kernel per level kind, parallel; small levels run it on one thread (_level_threads). Compiling
# the same function a second time without parallel=True would not only cost compile time (12 s of a cold
# first mesh here): numba's on-disk cache files a kernel under its module, qualified name and first line and
# tells entries apart by signature and machine only, not by options, so both versions share one entry and
# whichever compiled first serves both (the "parallel" levels then ran on one thread).
square_level_par = _njit_par(_square_level)
edge_level_par = _njit_par(_edge_level)
# Below this many rows of work a level runs on one thread: on a busy machine a parallel launch per small
# level costs more in thread wake-ups (and waits on a descheduled worker) than it saves. The levels where the
# bounds straddle the limit rasterise about the whole grid each, whatever their scale: with 512 (the value
# while the parallel kernels ran on one thread, see above) a 2049^2 fractal pyramid at 0.5% took 73 ms, with
# 64, 16 or 4 rows 45-47 ms (2 cores, one run).
PARALLEL_MIN_ROWS = 32


@contextlib.contextmanager
def _level_threads(parallel: bool):
    """Run the level kernels inside on all of numba's threads, or on this thread alone (a thread-local setting)."""
    if parallel or not HAVE_NUMBA:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# Widening of the interval bounds in _vertex_error, relative to max |height|: the float64 plane evaluation and
# the sums in the bounds round by at most ~1e-14 of it, so decisions within this slack of the limit are left to
# the exact measurement and the bounded pyramid splits exactly where the exact one does.
BOUND_SLACK = 2.0 ** -40


def bound_slack(heights_max_abs: float) -> float:
    return BOUND_SLACK * float(heights_max_abs)


def build_errors(heights: np.ndarray, real_rows: int, real_cols: int, limit: float, ws=None) -> np.ndarray:
    """Padded (S+1, S+1) float32 heights -> (S+1, S+1) float64 vertex errors (see module docstring).

    real_rows / real_cols: last real row / column; samples beyond them are padding and never measured.
    limit: errors above it are only known to exceed it, errors at or below it are upper bounds of the exact
    value (either exact or bounded from the children, see _vertex_error): "errors > limit" is exactly the
    exact pyramid's, so emit/count at threshold == limit only. limit = inf: exact everywhere (--max-triangles
    bisects on the values).
    ws: a mesh.workspace.Workspace to take the array from (scratch, overwritten by the next such call).
    """
    size = heights.shape[0] - 1
    if ws is None:
        errors = np.zeros(heights.shape, dtype=np.float64)
    else:
        errors = ws.get("rtin.errors", heights.shape, np.float64, fill=0.0)
    real = heights[:real_rows + 1, :real_cols + 1]  # the padding holds no height of the map (zeros)
    tol = bound_slack(max(abs(float(real.max())), abs(float(real.min()))))
    s = 1
    while s < size:
        with _level_threads(size // (2 * s) >= PARALLEL_MIN_ROWS):
            edge_level_par(heights, errors, s, size, real_cols, real_rows, limit, tol)
            square_level_par(heights, errors, s, size, real_cols, real_rows, limit, tol)
        s *= 2
    return errors


@_njit_inline
def _splits(errors, threshold, real_cols, real_rows, ax, ay, bx, by, cx, cy):
    """-1: wholly in the padding (drop); 1: split; 0: a leaf of the output mesh."""
    if min(ax, bx, cx) >= real_cols or min(ay, by, cy) >= real_rows:
        return -1
    sx = ax + bx
    sy = ay + by
    if sx % 2 != 0 or sy % 2 != 0:
        return 0  # finest level
    inside = max(ax, bx, cx) <= real_cols and max(ay, by, cy) <= real_rows
    return 1 if (errors[sy // 2, sx // 2] > threshold or not inside) else 0


@_njit_inline
def _write_leaf(out, i, grid_cols, ax, ay, bx, by, cx, cy):
    """out[i] = the triangle as vertex ids row * grid_cols + col, counter-clockwise seen from +Z (image up =
    +Y: counter-clockwise there is clockwise in (col, row))."""
    cross = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    ia = ay * grid_cols + ax
    ib = by * grid_cols + bx
    ic = cy * grid_cols + cx
    if cross < 0:
        out[i, 0], out[i, 1], out[i, 2] = ia, ib, ic
    else:
        out[i, 0], out[i, 1], out[i, 2] = ia, ic, ib


@_njit
def _walk(errors, root, real_cols, real_rows, threshold, out, start, grid_cols, write):
    """Top-down refinement of one root triangle: split while its hypotenuse midpoint's error > threshold.

    Leaves are counted, and when `write` stored from out[start] (_write_leaf). -> leaf count. Children at the
    finest level (legs 1) are leaves: they are taken at once, not pushed (half the nodes of a dense mesh).
    """
    stack = np.empty((256, 6), dtype=np.int64)
    for q in range(6):
        stack[0, q] = root[q]
    top = 1
    count = 0
    while top > 0:
        top -= 1
        ax, ay, bx, by = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
        cx, cy = stack[top, 4], stack[top, 5]
        k = _splits(errors, threshold, real_cols, real_rows, ax, ay, bx, by, cx, cy)
        if k < 0:
            continue
        if k == 0:
            if write:
                _write_leaf(out, start + count, grid_cols, ax, ay, bx, by, cx, cy)
            count += 1
            continue
        mx = (ax + bx) // 2
        my = (ay + by) // 2
        # children (cx, cy, ax, ay, m) and (bx, by, cx, cy, m), in the order the stack would pop them
        if ((cx + ax) & 1) != 0 or ((cy + ay) & 1) != 0:  # finest: leaves, unless wholly in the padding
            if min(bx, cx, mx) < real_cols and min(by, cy, my) < real_rows:
                if write:
                    _write_leaf(out, start + count, grid_cols, bx, by, cx, cy, mx, my)
                count += 1
            if min(cx, ax, mx) < real_cols and min(cy, ay, my) < real_rows:
                if write:
                    _write_leaf(out, start + count, grid_cols, cx, cy, ax, ay, mx, my)
                count += 1
            continue
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = cx, cy, ax, ay
        stack[top, 4], stack[top, 5] = mx, my
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = bx, by, cx, cy
        stack[top, 4], stack[top, 5] = mx, my
        top += 1
    return count


@_njit_par
def _walk_all(errors, roots, real_cols, real_rows, threshold, out, starts, grid_cols, write):
    counts = np.zeros(roots.shape[0], dtype=np.int64)
    for r in _prange(roots.shape[0]):
        counts[r] = _walk(errors, roots[r], real_cols, real_rows, threshold, out, starts[r], grid_cols, write)
    return counts


def _roots(errors: np.ndarray, real_rows: int, real_cols: int, threshold: float, depth: int = 8) -> np.ndarray:
    """The top `depth` levels expanded serially -> (R, 6) subtree roots (splits pending or leaves), R <= 2^(depth+1)."""
    size = errors.shape[0] - 1
    frontier = [(0, 0, size, size, size, 0), (size, size, 0, 0, 0, size)]
    for _ in range(depth):
        nxt = []
        for t in frontier:
            k = _splits(errors, threshold, real_cols, real_rows, *t)
            if k < 0:
                continue
            if k == 0:
                nxt.append(t)
                continue
            ax, ay, bx, by, cx, cy = t
            mx, my = (ax + bx) // 2, (ay + by) // 2
            nxt.append((cx, cy, ax, ay, mx, my))
            nxt.append((bx, by, cx, cy, mx, my))
        frontier = nxt
    return np.array(frontier, dtype=np.int64).reshape(-1, 6)


def _leaf_counts(errors, roots, real_rows: int, real_cols: int, threshold: float) -> np.ndarray:
    """-> (R,) leaf count of each subtree root, walked in parallel without writing."""
    none = np.empty((0, 3), np.int64)
    return _walk_all(errors, roots, real_cols, real_rows, threshold, none, np.zeros(len(roots), np.int64), 1, False)


def count_triangles(errors: np.ndarray, real_rows: int, real_cols: int, threshold: float) -> int:
    roots = _roots(errors, real_rows, real_cols, threshold)
    return int(_leaf_counts(errors, roots, real_rows, real_cols, threshold).sum())


# --max-triangles: the threshold for a triangle count without walking the tree again and again.
#
# A triangle of the hierarchy splits iff its hypotenuse midpoint's error > t or it straddles the real border
# (_splits), and with the exact pyramid (limit = inf) a parent's error is >= its children's (each vertex error
# is the max of its children's and its own), so every triangle that would split has a split parent: the set of
# split triangles at t is simply those with error > t (plus the straddling ones). Splitting a triangle adds one
# leaf per child that is not wholly padding, minus itself; a triangle wholly inside the real grid has 2 such
# children. So for 0 <= t <= the largest finite error,
#     count(t) = count(largest finite) + sum over vertices v of m_v * [t < e_v < inf]
# where m_v (0, 1 or 2) is the number of v's diamond halves wholly inside the real grid (straddling halves and
# infinite errors split at any t and are in count(largest finite)). The smallest t with count(t) <= N is then
# the weighted order statistic of the vertex errors: one histogram pass over their float bits finds its bin,
# a second collects that bin's values (checked against the tree walk's count in tests/test_rtin_bounds.py).

SELECT_BITS = 16  # histogram bins: the top bits of the float64 pattern (monotone for positive floats)


@_njit_inline
def _inside_halves(x, y, size, real_cols, real_rows):
    """m_v of grid vertex (x, y): how many halves of its diamond (the triangles whose hypotenuse midpoint it is)
    lie wholly inside the real grid [0, real_cols] x [0, real_rows]; 0 for the square's corners."""
    bits = x | y
    if bits == 0:
        return 0
    s = bits & -bits  # the vertex's scale: its lowest set coordinate bit
    if s >= size:
        return 0
    odd_x = (x // s) % 2 == 1
    odd_y = (y // s) % 2 == 1
    if odd_x and odd_y:  # square vertex: both halves fill the 2s x 2s square around it
        return 2 if x + s <= real_cols and y + s <= real_rows else 0
    m = 0
    if odd_x:  # midpoint of the horizontal edge (x - s, y) - (x + s, y); apexes above and below
        if x + s <= real_cols:
            if y - s >= 0 and y <= real_rows:
                m += 1
            if y + s <= real_rows:
                m += 1
    else:  # midpoint of the vertical edge (x, y - s) - (x, y + s); apexes left and right
        if y + s <= real_rows:
            if x - s >= 0 and x <= real_cols:
                m += 1
            if x + s <= real_cols:
                m += 1
    return m


@_njit_par
def _error_histogram(errors, bits, real_cols, real_rows, hi, shift, prefix, pshift, hist):
    """hist[c, b] += m_v over the vertices with 0 < e_v <= hi whose float bits >> pshift == prefix (pshift 64:
    all), bin b = (bits >> shift) & (bins - 1); one row of hist per block c of grid rows (bits: errors viewed as
    uint64)."""
    size = errors.shape[0] - 1
    chunks = hist.shape[0]
    mask = np.uint64(hist.shape[1] - 1)
    rows_per = (size + chunks) // chunks
    for c in _prange(chunks):
        for y in range(c * rows_per, min(size + 1, (c + 1) * rows_per)):
            for x in range(size + 1):
                e = errors[y, x]
                if not (e > 0.0 and e <= hi):
                    continue
                b = bits[y, x]
                if pshift < 64 and (b >> np.uint64(pshift)) != np.uint64(prefix):
                    continue
                m = _inside_halves(x, y, size, real_cols, real_rows)
                if m != 0:
                    hist[c, np.int64((b >> np.uint64(shift)) & mask)] += m


@_njit
def _bin_values(errors, bits, real_cols, real_rows, hi, prefix, pshift, n, values, weights):
    """The n vertices with 0 < e_v <= hi, m_v > 0 and float bits >> pshift == prefix -> values[:n], weights[:n]."""
    size = errors.shape[0] - 1
    k = 0
    for y in range(size + 1):
        for x in range(size + 1):
            e = errors[y, x]
            if not (e > 0.0 and e <= hi) or (bits[y, x] >> np.uint64(pshift)) != np.uint64(prefix):
                continue
            m = _inside_halves(x, y, size, real_cols, real_rows)
            if m != 0 and k < n:
                values[k] = e
                weights[k] = m
                k += 1
    return k


def threshold_for_extra(errors: np.ndarray, real_rows: int, real_cols: int, hi: float, extra: int) -> float:
    """The smallest t >= 0 whose mesh has at most `extra` more triangles than at t = hi (the largest finite
    error), from the weighted order statistic above (the same float as a bisection with the tree walk)."""
    errors = np.ascontiguousarray(errors, dtype=np.float64)
    bits = errors.view(np.uint64)
    chunks = max(1, min(64, (errors.shape[0] + 63) // 64))
    hist = np.empty((chunks, 1 << SELECT_BITS), dtype=np.int64)
    above = 0  # weight of the values above the current bin
    prefix, pshift = 0, 64
    # level 1: bits 63..48 (sign, exponent, 4 mantissa bits); level 2: bits 47..32 inside the bin found there;
    # then that bin's values (within 2^-20 of each other), sorted
    for shift in (64 - SELECT_BITS, 64 - 2 * SELECT_BITS):
        hist[:] = 0
        _error_histogram(errors, bits, real_cols, real_rows, float(hi), shift, prefix, pshift, hist)
        counts = hist.sum(axis=0)
        for b in range(counts.size - 1, -1, -1):
            if above + counts[b] > extra:
                break
            above += counts[b]
        else:
            return 0.0  # every positive error fits: t = 0
        prefix, pshift = (prefix << SELECT_BITS) | b, shift
    n = int(counts[b])  # the bin's weight: at least its number of values (each weighs 1 or 2)
    values = np.empty(n, dtype=np.float64)
    weights = np.empty(n, dtype=np.int64)
    n = _bin_values(errors, bits, real_cols, real_rows, float(hi), prefix, pshift, n, values, weights)
    order = np.argsort(values[:n], kind="stable")[::-1]  # largest first
    # t = the value whose weight takes the running total past extra (equal values share it: the first of them
    # to cross has their common value)
    past = np.flatnonzero(above + np.cumsum(weights[order]) > extra)
    if past.size == 0:  # pragma: no cover - the histogram counted this bin's weight
        raise AssertionError("threshold_for_extra: the histogram and the values disagree")
    return float(values[order[past[0]]])


def emit_triangles(errors: np.ndarray, real_rows: int, real_cols: int, threshold: float, ws=None,
                   dtype=np.int64) -> np.ndarray:
    """-> (M, 3) `dtype` vertex ids into the real (real_rows+1, real_cols+1) grid (scratch from `ws` if given).

    The top levels are expanded serially into subtree roots; the subtrees are walked in parallel twice: once to
    count their leaves (so each knows where its triangles start), once to write them.
    """
    roots = _roots(errors, real_rows, real_cols, threshold)
    counts = _leaf_counts(errors, roots, real_rows, real_cols, threshold)
    starts = np.zeros(len(roots), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    shape = (int(counts.sum()), 3)
    out = np.empty(shape, dtype=dtype) if ws is None else ws.get("rtin.triangles", shape, dtype)
    _walk_all(errors, roots, real_cols, real_rows, threshold, out, starts, real_cols + 1, True)
    return out


def vertex_id_dtype(samples: int):
    """Grid vertex ids of a grid of `samples` samples: int32 when they fit (half the memory), else int64."""
    return np.int32 if samples < 2 ** 31 else np.int64


def padded_side(rows: int, cols: int) -> int:
    """Smallest S = 2^k with S + 1 >= max(rows, cols) samples (k >= 1)."""
    return 1 << max(1, math.ceil(math.log2(max(rows, cols) - 1)))


@_njit_par
def _triangle_errors(heights, triangles, grid_cols, out):
    big = heights.shape[0] + heights.shape[1]
    for t in _prange(triangles.shape[0]):
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        out[t] = triangle_error(
            heights, a % grid_cols, a // grid_cols, b % grid_cols, b // grid_cols, c % grid_cols, c // grid_cols,
            big, big, INF,
        )


def mesh_max_error(heights: np.ndarray, triangles: np.ndarray, grid_cols: int) -> float:
    """(GH, GW) float32 heights, (M, 3) RTIN triangles (vertex ids row*GW+col) -> exact max error over them."""
    if triangles.shape[0] == 0:
        return 0.0
    out = np.empty(triangles.shape[0], dtype=np.float64)
    _triangle_errors(heights, triangles, grid_cols, out)
    return float(out.max())
