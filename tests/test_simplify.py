"""mesh/simplify.py: the quality pass (fast and full) keeps the exact bound, the cover and the border; its
span rasteriser measures exactly the samples of a closed triangle."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba", reason="the quality pass is compiled with numba (pip extra [fast])")

from gpurelief.errors import OptionError
from gpurelief.mesh.adaptive import adaptive_mesh, quality_effort, rtin_triangles
from gpurelief.mesh.simplify import (
    TIE_MARGIN,
    _choose,
    _clearly_kept,
    _clip,
    _fan_triangle_error,
    _score_all,
    collapse_vertices,
    mesh_max_error,
)
from gpurelief.types import Heightfield

from heightmaps import fractal, step_edges
from mesh_checks import assert_valid_cover

MAPS = {"fractal": fractal, "steps": step_edges}




def test_clip_gives_the_exact_integer_span_of_a_half_plane():
    """The float floor in _clip must equal integer floor division, including quotients that are integers."""
    rng = np.random.default_rng(3)
    for _ in range(20000):
        a = int(rng.integers(-9000, 9000))
        x0 = int(rng.integers(-9000, 9000))
        b = -a * x0 + int(rng.integers(-2, 3)) if rng.random() < 0.5 else int(rng.integers(-10**8, 10**8))
        lo, hi = -10**9, 10**9
        if a > 0:
            want = (lo, min(hi, (-b) // a))
        elif a < 0:
            want = (max(lo, -((-b) // -a)), hi)  # ceil(b / -a)
        else:
            want = (lo, lo - 1) if b > 0 else (lo, hi)
        assert _clip(lo, hi, a, b, 1.0 / a if a else 0.0) == want, (a, b)


def test_block_counts_eight_flags_at_a_time_match_a_plain_count():
    """_block_starts counts a bool mask 8 flags per uint64 word, then the tail: every block's start must equal a
    plain cumulative count, for sizes that are not multiples of 8, smaller than the block count, and sparse."""
    from gpurelief.mesh.simplify import COMPACT_BLOCKS, _block_starts

    rng = np.random.default_rng(4)
    for n in [0, 1, 7, 8, 9, 255, 256, 257, 2047, 2049 * 3 + 5, 100_003]:
        for density in (0.0, 0.01, 0.5, 1.0):
            mask = rng.random(n) < density
            size, first = _block_starts(mask)
            assert size % 8 == 0 and size * COMPACT_BLOCKS >= n
            bounds = np.minimum(np.arange(COMPACT_BLOCKS + 1) * size, n)
            want = np.concatenate([[0], np.cumsum(mask)])[bounds]
            assert np.array_equal(first, want), (n, density)


def test_span_rasteriser_measures_every_sample_of_the_closed_triangle():
    """Against a brute-force scan of the bounding box with integer edge functions (slivers included)."""
    rng = np.random.default_rng(5)
    heights = rng.random((70, 90)).astype(np.float32)
    checked = 0
    while checked < 400:
        p = rng.integers(0, [90, 70], size=(3, 2))
        if rng.random() < 0.3:  # a thin sliver
            p[2] = p[0] + (p[1] - p[0]) * rng.integers(1, 4) // 4 + rng.integers(-1, 2, size=2)
            p[2] = np.clip(p[2], 0, [89, 69])
        (ax, ay), (bx, by), (cx, cy) = p.tolist()
        cross = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if cross == 0:
            continue
        if cross > 0:  # make it counter-clockwise seen from +Z (clockwise in (col, row))
            (bx, by), (cx, cy) = (cx, cy), (bx, by)
        ys, xs = np.mgrid[0:70, 0:90]
        e0 = (bx - ax) * (ys - ay) - (by - ay) * (xs - ax)
        e1 = (cx - bx) * (ys - by) - (cy - by) * (xs - bx)
        e2 = (ax - cx) * (ys - cy) - (ay - cy) * (xs - cx)
        inside = (e0 <= 0) & (e1 <= 0) & (e2 <= 0)
        za, zb, zc = (float(heights[y, x]) for x, y in ((ax, ay), (bx, by), (cx, cy)))
        det = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        gx = ((zb - za) * (cy - ay) - (zc - za) * (by - ay)) / det
        gy = ((zc - za) * (bx - ax) - (zb - za) * (cx - ax)) / det
        want = np.abs(heights[inside] - (za + gx * (xs[inside] - ax) + gy * (ys[inside] - ay))).max()
        got = _fan_triangle_error(heights, ax, ay, bx, by, cx, cy, np.inf)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
        checked += 1


def test_scoring_all_candidates_in_one_turn_matches_a_search_per_candidate():
    """_score_all walks the new triangle holding v forward as the candidate turns; a plain search from each
    candidate must find the same error at v (random star-shaped rings, collinear ring vertices included)."""
    rng = np.random.default_rng(11)
    checked = 0
    while checked < 3000:
        d = int(rng.integers(3, 13))
        ang = np.sort(rng.uniform(0, 2 * np.pi, d))[::-1]  # clockwise in (col, row) = counter-clockwise seen from +Z
        rad = rng.integers(1, 12, d) if rng.random() < 0.5 else rng.integers(1, 3, d)
        rx = np.round(rad * np.cos(ang)).astype(np.int64)
        ry = np.round(rad * np.sin(ang)).astype(np.int64)
        if any(rx[i] * ry[(i + 1) % d] - ry[i] * rx[(i + 1) % d] >= 0 for i in range(d)):
            continue  # the old fan must be positive: not a valid star around v
        rz = rng.random(d)
        hv = float(rng.random())
        score = np.empty(d)
        inside = np.empty(d, dtype=np.int64)
        _score_all(rx, ry, rz, d, hv, score, inside)
        for j in range(d):
            want = np.inf
            for step in range(1, d - 1):
                i, i1 = (j + step) % d, (j + step + 1) % d
                o_i1 = rx[i] * ry[j] - ry[i] * rx[j]
                o_i = rx[j] * ry[i1] - ry[j] * rx[i1]
                if o_i1 >= 0 and o_i >= 0:
                    w_j = -(rx[i] * ry[i1] - ry[i] * rx[i1])
                    want = abs(hv - (w_j * rz[j] + o_i * rz[i] + o_i1 * rz[i1]) / (w_j + o_i + o_i1))
                    break
            assert score[j] == pytest.approx(want, rel=1e-12, abs=1e-15), (rx, ry, j)
        checked += 1


def test_clearly_kept_rejects_only_vertices_no_candidate_can_take():
    """_clearly_kept reads a finest vertex's 3 x 3 neighbourhood before its ring is built: whenever it says kept,
    every candidate of the ring RTIN gives that vertex (x xor y odd: the 4 axis neighbours; both odd: the 4
    corners and any subset of the axis neighbours) must score above the bound in _score_all; for x xor y odd it
    must also say kept whenever every candidate scores clearly above the bound (it has to do its job)."""
    rng = np.random.default_rng(5)
    bound = 0.05
    limit = bound + TIE_MARGIN
    around = [("NW", (-1, -1)), ("W", (-1, 0)), ("SW", (-1, 1)), ("S", (0, 1)), ("SE", (1, 1)), ("E", (1, 0)),
              ("NE", (1, -1)), ("N", (0, -1))]  # counter-clockwise seen from +Z
    kept = {"edge": 0, "square": 0}
    for trial in range(4000):
        heights = rng.random((3, 3)) * rng.choice([0.1, 0.3, 1.0])
        if trial % 3 == 0:  # near-planar neighbourhoods, where collapses pass
            heights = 0.2 * np.add.outer(np.arange(3), 0.5 * np.arange(3)) + 0.02 * rng.random((3, 3))
        grid = heights.astype(np.float32)
        kind = "edge" if trial % 2 else "square"
        x = y = 1  # read at a 3 x 3 window: the parity is the caller's
        if kind == "edge":
            ring = [off for name, off in around if len(name) == 1]
        else:
            keep = {name for name, _ in around if len(name) == 1 and rng.random() < 0.5}
            ring = [off for name, off in around if len(name) == 2 or name in keep]
        rx = np.array([o[0] for o in ring], dtype=np.int64)
        ry = np.array([o[1] for o in ring], dtype=np.int64)
        rz = np.array([grid[y + o[1], x + o[0]] for o in ring], dtype=np.float64)
        hv = float(grid[y, x])
        score = np.empty(len(ring))
        inside = np.empty(len(ring), dtype=np.int64)
        _score_all(rx, ry, rz, len(ring), hv, score, inside)
        if _clearly_kept(grid, x, y, hv, limit, kind == "square"):
            kept[kind] += 1
            assert score.min() > bound, (kind, ring, grid)
        elif kind == "edge":
            assert score.min() <= limit + 1e-12, (ring, grid)
    assert kept["edge"] > 200 and kept["square"] > 200


def test_tight_ring_shortcut_decides_as_the_rasteriser():
    """_choose skips rasterising when every ring offset is within 1 and no ring edge passes over a sample: v's
    error then decides. On random tight and loose rings, it must choose the candidate the rasteriser does."""
    rng = np.random.default_rng(9)
    around = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]  # counter-clockwise from +Z
    far = [(-2, -1), (-1, 2), (2, 1), (1, -2)]
    compared = tight_ones = 0
    for _ in range(3000):
        keep = [o for o in around if rng.random() < 0.75]
        if rng.random() < 0.3:
            keep = sorted(keep + [far[int(rng.integers(4))]], key=lambda o: -np.arctan2(o[1], o[0]) % (2 * np.pi))
        d = len(keep)
        if d < 3:
            continue
        rx = np.array([o[0] for o in keep], dtype=np.int64)
        ry = np.array([o[1] for o in keep], dtype=np.int64)
        if any(rx[i] * ry[(i + 1) % d] - ry[i] * rx[(i + 1) % d] >= 0 for i in range(d)):
            continue  # not a star around v
        grid = (rng.random((5, 5)) * 0.05 + 0.01 * np.arange(5)[:, None]).astype(np.float32)
        vx = vy = 2
        rz = np.array([grid[vy + o[1], vx + o[0]] for o in keep], dtype=np.float64)
        hv = float(grid[vy, vx])
        bound = float(rng.choice([0.005, 0.02, 0.05]))
        picks = []
        for tight in (True, False):
            score = np.empty(d)
            inside = np.empty(d, dtype=np.int64)
            picks.append(_choose(grid, rx, ry, rz, d, vx, vy, hv, bound, TIE_MARGIN, tight and max(
                np.abs(rx).max(), np.abs(ry).max()) <= 1, 8, score, inside))
        assert picks[0] == picks[1], (keep, grid, bound)
        compared += 1
        tight_ones += picks[0] >= 0 and max(np.abs(rx).max(), np.abs(ry).max()) <= 1
    assert compared > 1000 and tight_ones > 100


def test_rtin_pass_refuses_a_mesh_that_is_not_rtins():
    """rtin=True assumes RTIN's rings; a grid cut along one diagonal everywhere has other rings, and there two
    collapsed vertices meet in one triangle: an error, never a broken mesh (the plain pass handles it)."""
    n = 9
    heights = np.zeros((n, n), dtype=np.float32)
    cells = [(y * n + x, y * n + x + n, y * n + x + 1, y * n + x + n + 1) for y in range(n - 1) for x in range(n - 1)]
    triangles = np.array([t for a, c, b, d in cells for t in ((a, c, b), (b, c, d))], dtype=np.int64)
    with pytest.raises(ValueError, match="not RTIN's mesh"):
        collapse_vertices(heights, triangles, 0.01, rtin=True)
    plain = collapse_vertices(heights, triangles, 0.01)
    assert_valid_cover(heights, plain, 0.01)
    assert len(plain) < len(triangles)


@pytest.mark.parametrize("effort", ["fast", "full"])
@pytest.mark.parametrize("case", ["fractal", "steps", "8-bit", "padded"])
def test_rtin_pass_keeps_the_bound_and_removes_more_than_the_plain_sweep(effort, case):
    """collapse_vertices(rtin=True): finest vertices first (grid-decided), then the sweep. A valid cover within
    the bound, on dense and coarse bounds and on a grid RTIN pads; at least as good as the plain sweep."""
    if case == "fractal":
        heights, bounds = fractal(300, 257, seed=8), (0.0002, 0.002)
    elif case == "steps":
        heights, bounds = step_edges(280, 257, seed=8), (0.0002, 0.004)
    elif case == "8-bit":
        heights, bounds = np.round(fractal(257, 280, seed=2) * 255) / 255, (0.0, 1 / 255)
    else:
        heights, bounds = step_edges(301, 203, seed=3), (0.0005, 0.003)
    for bound in bounds:
        rtin, threshold = rtin_triangles(heights, max_error=bound)
        plain = collapse_vertices(heights, rtin, threshold, effort=effort)
        finest_first = collapse_vertices(heights, rtin, threshold, effort=effort, rtin=True)
        assert_valid_cover(heights, finest_first, threshold + 1e-12)  # 0: the metric's barycentric rounding
        assert mesh_max_error(heights, finest_first) <= threshold
        assert len(finest_first) <= 1.02 * len(plain) < len(rtin)


@pytest.mark.parametrize("kind", MAPS)
@pytest.mark.parametrize("pct", [0.5, 0.05])
def test_fast_and_full_passes_keep_the_bound_and_full_removes_at_least_as_much(kind, pct):
    heights = MAPS[kind](150, 190, seed=4)
    bound = pct / 100
    rtin, _ = rtin_triangles(heights, max_error=bound)
    fast = collapse_vertices(heights, rtin, bound, effort="fast")
    full = collapse_vertices(heights, rtin, bound, effort="full")
    assert_valid_cover(heights, fast, bound)
    assert_valid_cover(heights, full, bound)
    assert len(full) <= len(fast) < (0.9 if pct >= 0.5 else 0.97) * len(rtin)  # 0.05%: RTIN is near the full grid
    assert mesh_max_error(heights, fast) <= bound and mesh_max_error(heights, full) <= bound


@pytest.mark.parametrize("effort", ["fast", "full"])
def test_parallel_stripes_give_a_valid_mesh_like_the_serial_sweep(effort):
    """Taller than 4 stripes, so the parallel path (all stripes at once + a serial tail) runs."""
    heights = step_edges(300, 170, seed=6)
    bound = 0.002
    rtin, _ = rtin_triangles(heights, max_error=bound)
    par = collapse_vertices(heights, rtin, bound, effort=effort, parallel=True)
    ser = collapse_vertices(heights, rtin, bound, effort=effort, parallel=False)
    assert_valid_cover(heights, par, bound)
    assert_valid_cover(heights, ser, bound)
    assert abs(len(par) - len(ser)) <= 0.05 * len(ser)  # another order of the same greedy sweep


def canonical(triangles):
    """Triangles as a sorted list, each rotated to start at its smallest vertex (the winding kept)."""
    return sorted(tuple(np.roll(t, -int(np.argmin(t)))) for t in np.asarray(triangles, dtype=np.int64))


@pytest.mark.parametrize("rtin", [False, True])
@pytest.mark.parametrize("effort", ["fast", "full"])
def test_pass_result_does_not_depend_on_the_triangle_order(effort, rtin):
    """The GPU emits RTIN's triangles in another order than numba: the pass must give one mesh for any order
    (rings start at their smallest vertex, so equal scores break ties alike). Quantised heights make ties common."""
    heights = np.round(step_edges(150, 170, seed=9) * 255) / 255  # an 8-bit depth map
    bound = 0.004
    triangles, _ = rtin_triangles(heights, max_error=bound)
    rng = np.random.default_rng(2)
    shuffled = triangles[rng.permutation(len(triangles))]
    shuffled = np.stack([np.roll(t, -int(k)) for t, k in zip(shuffled, rng.integers(0, 3, len(shuffled)))])
    a = collapse_vertices(heights, triangles, bound, effort=effort, rtin=rtin)
    b = collapse_vertices(heights, shuffled, bound, effort=effort, rtin=rtin)
    assert len(a) < 0.8 * len(triangles)
    assert canonical(a) == canonical(b)


def test_parallel_sweep_gives_the_same_mesh_on_any_number_of_threads():
    """Stripes run all at once and are handed out dynamically: stripes must not interact, so 1 thread and
    all threads give the same triangles."""
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one CPU: nothing runs concurrently")
    heights = fractal(700, 260, seed=3)  # 11 stripes
    bound = 0.001
    rtin, _ = rtin_triangles(heights, max_error=bound)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [collapse_vertices(heights, rtin, bound, effort="fast", rtin=r) for r in (False, True)]
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = [collapse_vertices(heights, rtin, bound, effort="fast", rtin=r) for r in (False, True)]
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(one, many):
        assert_valid_cover(heights, b, bound)
        assert canonical(a) == canonical(b)


def test_quality_pass_with_a_zero_bound_merges_only_coplanar_samples():
    y, x = np.mgrid[0:40, 0:50].astype(np.float32)
    heights = np.where(x < 25, 0.01 * x + 0.02 * y, 0.5).astype(np.float32)  # a plane and a flat step
    rtin, _ = rtin_triangles(heights, max_error=0.0)
    out = collapse_vertices(heights, rtin, 0.0, effort="full")
    assert mesh_max_error(heights, out) <= 1e-6  # float32 heights on a float64 plane
    assert_valid_cover(heights, out, 1e-6)
    assert len(out) < len(rtin)


@pytest.mark.parametrize("shape", [(45, 70), (70, 45), (300, 451)])
def test_border_vertices_merge_along_the_border(shape):
    """A grid that is not (2^k+1)^2 makes RTIN split every triangle that straddles the real border, down to the
    finest level along it (2,009 triangles for a flat 451 x 300 map). Border vertices may merge along their
    border line, so a plane comes down to a handful of triangles; the cover and its outline stay exact."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    heights = (0.003 * x + 0.002 * y).astype(np.float32)
    bound = 1e-5
    rtin, threshold = rtin_triangles(heights, max_error=bound)
    assert len(rtin) > 40
    full = collapse_vertices(heights, rtin, threshold, effort="full", rtin=True)
    assert_valid_cover(heights, full, threshold + 1e-12)
    assert len(full) <= 8
    fast = collapse_vertices(heights, rtin, threshold, effort="fast", rtin=True)
    assert_valid_cover(heights, fast, threshold + 1e-12)
    assert len(fast) < 0.5 * len(rtin)


@pytest.mark.parametrize("effort", ["fast", "full"])
def test_border_vertices_stay_where_the_border_profile_needs_them(effort):
    """Rough terrain along the border: fewer border vertices than RTIN's, the four corners kept, and the border
    profile within the bound (assert_valid_cover measures every sample, border ones included)."""
    heights = fractal(61, 93, seed=12)
    gh, gw = heights.shape
    bound = 0.004
    rtin, threshold = rtin_triangles(heights, max_error=bound)
    out = collapse_vertices(heights, rtin, threshold, effort=effort, rtin=True)
    assert_valid_cover(heights, out, threshold + 1e-12)
    assert mesh_max_error(heights, out) <= threshold

    def border(tris):
        r, c = np.divmod(np.unique(tris), gw)
        return set(zip(r[(r == 0) | (r == gh - 1) | (c == 0) | (c == gw - 1)].tolist(),
                       c[(r == 0) | (r == gh - 1) | (c == 0) | (c == gw - 1)].tolist()))

    kept, before = border(out), border(rtin)
    assert {(0, 0), (0, gw - 1), (gh - 1, 0), (gh - 1, gw - 1)} <= kept
    assert len(kept) < 0.9 * len(before)  # about 0.8 here; none went before border merges


def test_adaptive_mesh_quality_pass_levels_and_bad_values():
    heights = fractal(90, 120, seed=8)
    hf = Heightfield(heights, image_size=heights.shape)
    counts = {q: adaptive_mesh(hf, max_error_frac=0.002, quality_pass=q).triangle_count
              for q in ("off", "quick", "fast", "full")}
    assert counts["full"] <= counts["fast"] <= counts["quick"] < counts["off"]
    budget = adaptive_mesh(hf, max_triangles=1500, quality_pass="quick")
    assert budget.triangle_count <= 1500 and budget.extras["quality_pass"] == "quick"
    assert adaptive_mesh(hf, max_error_frac=0.002, quality_pass=True).triangle_count == counts["full"]
    assert quality_effort(None) is None and quality_effort(False) is None
    with pytest.raises(OptionError, match="--quality-pass: expected one of off, quick, fast, full, got 'best'"):
        adaptive_mesh(hf, max_error_frac=0.002, quality_pass="best")
