"""mesh/grid_pass.py: the "quick" quality pass reads every ring from the grid; it must keep the exact bound and a
crack-free cover like the other passes, and its premise (RTIN's rings follow the grid rule) must hold."""
from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the quality pass is compiled with numba (pip extra [fast])")

import gpurelief
from gpurelief.mesh.adaptive import rtin_triangles
from gpurelief.mesh.simplify import collapse_vertices, mesh_max_error

from gltf_read import primitive_arrays
from heightmaps import fractal, step_edges
from mesh_checks import assert_valid_cover, neighbour_sets

CASES = {
    "fractal": lambda: fractal(257, 257, seed=8),
    "steps": lambda: step_edges(257, 257, seed=8),
    "8-bit": lambda: np.round(fractal(257, 280, seed=2) * 255) / 255,  # ties everywhere
    "padded": lambda: step_edges(301, 203, seed=3),  # not (2^k+1)^2: RTIN splits along the real border
}
DIRS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


def rule_ring(shape, used, x, y):
    """The ring the module doc states for RTIN vertex (x, y): on each of the 8 directions the nearest used sample
    at distance 1, 2, 4, ... up to h (h/2 on the diagonals of an edge vertex), h = lowbit(x | y)."""
    gh, gw = shape
    h = (x | y) & -(x | y)
    square = (x // h) % 2 == 1 and (y // h) % 2 == 1
    ring = set()
    for dx, dy in DIRS:
        lim = h if (square or dx == 0 or dy == 0) else h // 2
        dist = 1
        while dist <= lim:
            xx, yy = x + dx * dist, y + dy * dist
            if not (0 <= xx < gw and 0 <= yy < gh):
                break
            if used[yy * gw + xx]:
                ring.add(yy * gw + xx)
                break
            dist *= 2
    return ring


def phase_one_ring(shape, used, x, y):
    """The ring simplify._fine_collapses assumes for a finest vertex (x, y) of RTIN's mesh: x xor y odd -> the 4
    axis neighbours; both odd -> the 4 corners and the used axis neighbours."""
    gw = shape[1]
    axis = {(y + dy) * gw + x + dx for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))}
    if (x & 1) and (y & 1):
        return {(y + dy) * gw + x + dx for dx in (-1, 1) for dy in (-1, 1)} | {w for w in axis if used[w]}
    return axis


@pytest.mark.parametrize("case", list(CASES))
def test_every_interior_rtin_vertex_has_the_ring_the_grid_rule_gives(case):
    """Checked against the triangles for every interior vertex of every level, dense and coarse bounds; the
    finest ones also against the ring phase 1 of the fast pass assumes (simplify._fine_collapses)."""
    heights = CASES[case]()
    gh, gw = heights.shape
    checked = 0
    for bound in (0.0, 0.0005, 0.003, 0.05):
        tris, _ = rtin_triangles(heights, max_error=bound)
        used = np.zeros(heights.size, dtype=bool)
        used[tris.ravel()] = True
        neighbours = neighbour_sets(tris, heights.size)
        for v in np.flatnonzero(used):
            y, x = divmod(int(v), gw)
            if 0 < x < gw - 1 and 0 < y < gh - 1:
                assert neighbours[v] == rule_ring(heights.shape, used, x, y), (bound, x, y)
                if (x | y) & 1:
                    assert neighbours[v] == phase_one_ring(heights.shape, used, x, y), (bound, x, y)
                checked += 1
    assert checked > 20000


@pytest.mark.parametrize("case", list(CASES))
def test_quick_pass_keeps_the_bound_and_the_cover(case):
    heights = CASES[case]()
    for bound in (0.0, 0.0002, 0.002, 0.02):
        rtin, threshold = rtin_triangles(heights, max_error=bound)
        quick = collapse_vertices(heights, rtin, threshold, effort="quick", rtin=True)
        fast = collapse_vertices(heights, rtin, threshold, effort="fast", rtin=True)
        assert quick.dtype == np.int32
        assert_valid_cover(heights, quick, threshold + 1e-12)  # 0: the metric's barycentric rounding
        assert mesh_max_error(heights, quick) <= threshold
        # fewer than RTIN's (a fractal at bound 0 has nothing to merge); a few percent more than "fast" (whose
        # targets can go later and whose border vertices merge)
        assert len(quick) <= 1.25 * len(fast), (bound, len(quick), len(fast))
        assert len(quick) < len(rtin) or (bound == 0 and len(fast) == len(rtin))


def canonical(triangles):
    return sorted(tuple(np.roll(t, -int(np.argmin(t)))) for t in np.asarray(triangles, dtype=np.int64))


def test_quick_pass_gives_one_mesh_for_any_triangle_order_and_thread_count():
    heights = np.round(step_edges(300, 211, seed=9) * 255) / 255  # quantised: ties are common
    bound = 0.004
    rtin, _ = rtin_triangles(heights, max_error=bound)
    rng = np.random.default_rng(2)
    shuffled = rtin[rng.permutation(len(rtin))]
    shuffled = np.stack([np.roll(t, -int(k)) for t, k in zip(shuffled, rng.integers(0, 3, len(shuffled)))])
    a = collapse_vertices(heights, rtin, bound, effort="quick", rtin=True)
    b = collapse_vertices(heights, shuffled, bound, effort="quick", rtin=True)
    assert len(a) < 0.8 * len(rtin)
    assert canonical(a) == canonical(b)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        previous = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            one = collapse_vertices(heights, rtin, bound, effort="quick", rtin=True)
        finally:
            numba.set_num_threads(previous)
        assert canonical(one) == canonical(a)


def test_quick_pass_needs_rtins_own_mesh():
    heights = fractal(40, 50, seed=1)
    rtin, threshold = rtin_triangles(heights, max_error=0.01)
    with pytest.raises(ValueError, match="RTIN's own mesh"):
        collapse_vertices(heights, rtin, threshold, effort="quick")


def test_convert_with_quick_pass_is_valid_gltf_within_the_bound(tmp_path, photo_jpeg, gltf_validator):
    out = tmp_path / "q.glb"
    r = gpurelief.convert(photo_jpeg, out, mesh="adaptive", max_error="0.5%", quality_pass="quick", relief=0.1)
    gltf_validator(out)
    arrays = primitive_arrays(out)
    assert len(arrays["indices"]) // 3 == r.triangle_count
    assert r.max_error is not None and r.max_error <= 0.0005 * (1 + 1e-6)
