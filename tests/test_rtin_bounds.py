"""rtin_kernels.build_errors with a finite limit bounds most triangles from their children instead of measuring
them; its split decisions ("errors > limit") must be exactly those of the fully measured pyramid (limit = inf),
so the mesh is the same triangle for triangle."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba", reason="the adaptive mesher's compiled path needs numba (pip extra [fast])")

from gpurelief.mesh import rtin_kernels as rk
from gpurelief.mesh.adaptive import _padded, rtin_triangles

from heightmaps import fractal, heights_like, step_edges


def _plane(h, w, seed):
    y, x = np.mgrid[0:h, 0:w]
    return (0.1 + 0.003 * x + 0.002 * y).astype(np.float32)


MAPS = {
    "fractal": lambda h, w, seed: fractal(h, w, seed=seed),
    "steps": lambda h, w, seed: step_edges(h, w, seed=seed),
    "noise": lambda h, w, seed: np.random.default_rng(seed).random((h, w)).astype(np.float32),
    "smooth+noise": lambda h, w, seed: heights_like((h, w), seed),
    "constant": lambda h, w, seed: np.full((h, w), 0.3, np.float32),
    "plane": _plane,
    # far from zero: float32 steps of 6e-5 and a rounding slack scaled by max |height|
    "offset": lambda h, w, seed: (1000.0 + 0.05 * fractal(h, w, seed=seed)).astype(np.float32),
}
SHAPES = [(2, 2), (3, 5), (2, 9), (17, 17), (33, 20), (65, 65), (70, 101), (129, 40), (200, 33)]


def _both(heights, limit):
    padded = _padded(heights)
    rows, cols = heights.shape[0] - 1, heights.shape[1] - 1
    return rk.build_errors(padded, rows, cols, np.inf), rk.build_errors(padded, rows, cols, limit), rows, cols


@pytest.mark.parametrize("kind", MAPS)
def test_bounded_pyramid_splits_exactly_where_the_measured_one_does(kind):
    for shape in SHAPES:
        heights = MAPS[kind](*shape, sum(shape))
        scale = float(heights.max() - heights.min()) or 1.0
        for frac in (0.0, 1e-4, 1e-3, 5e-3, 0.02, 0.3):
            limit = frac * scale
            exact, bounded, rows, cols = _both(heights, limit)
            assert np.array_equal(bounded > limit, exact > limit), (shape, frac)
            # at or below the limit a stored value is an upper bound of the exact one
            kept = bounded <= limit
            assert (bounded[kept] >= exact[kept]).all(), (shape, frac)
            assert np.array_equal(rk.emit_triangles(bounded, rows, cols, limit), rk.emit_triangles(exact, rows, cols, limit))


@pytest.mark.parametrize("kind", ["fractal", "steps", "offset"])
def test_limits_equal_to_exact_errors_tie_the_same_way(kind):
    """A limit equal to some triangle's exact error is the tightest case for the bounds' rounding slack."""
    heights = MAPS[kind](97, 131, 5)
    padded = _padded(heights)
    exact = rk.build_errors(padded, 96, 130, np.inf)
    values = np.unique(exact[np.isfinite(exact) & (exact > 0)])
    for limit in values[np.linspace(0, values.size - 1, 12).astype(int)]:
        bounded = rk.build_errors(padded, 96, 130, float(limit))
        assert np.array_equal(bounded > limit, exact > limit), limit


@pytest.mark.parametrize("kind", ["fractal", "steps"])
def test_coarse_bounds_skip_most_measurements(kind):
    """The point of the bounds: at a coarse limit most stored values above the finest level (where the error
    has a closed form) are bounds, larger than the exact error, so their triangles were never rasterised; yet
    the meshes are identical."""
    heights = MAPS[kind](257, 257, 1)
    limit = 0.02
    exact, bounded, rows, cols = _both(heights, limit)
    y, x = np.mgrid[0:257, 0:257]
    kept = (x % 2 == 0) & (y % 2 == 0) & (bounded <= limit) & (exact > 0)
    assert np.count_nonzero(bounded[kept] > exact[kept]) > 0.8 * np.count_nonzero(kept) > 0
    tris, _ = rtin_triangles(heights, max_error=limit)
    assert np.array_equal(tris, rk.emit_triangles(exact, rows, cols, limit))


def _cached_dispatchers(module):
    from numba.core.dispatcher import Dispatcher

    for name, obj in sorted(vars(module).items()):
        if isinstance(obj, Dispatcher) and hasattr(obj._cache, "_cache_file"):
            yield name, obj


def test_every_cached_kernel_has_a_cache_file_of_its_own():
    """numba keys its on-disk cache by module, qualified name and line, not by options: the same function compiled
    with and without parallel=True under one name shares one entry, and whichever compiled first is what both
    load later (the pyramid's parallel levels ran on one thread that way)."""
    from gpurelief.mesh import simplify

    paths = {}
    seen = set()
    for module in (rk, simplify):
        for name, dispatcher in _cached_dispatchers(module):
            if id(dispatcher) in seen:  # imported from the other module: the same kernel
                continue
            seen.add(id(dispatcher))
            path = dispatcher._cache._cache_file._index_path
            assert path not in paths, f"{module.__name__}.{name} and {paths[path]} share the cache file {path}"
            paths[path] = f"{module.__name__}.{name}"
    assert {"edge_level_par", "square_level_par", "_walk_all", "_sweep_stripes"} <= {p.split(".")[-1] for p in paths.values()}


@pytest.mark.parametrize("limit", [np.inf, 0.002, 0.02])
def test_levels_on_one_thread_and_on_all_build_the_same_pyramid(limit, monkeypatch):
    heights = fractal(257, 300, seed=5)
    padded = _padded(heights)
    monkeypatch.setattr(rk, "PARALLEL_MIN_ROWS", 1 << 30)
    serial = rk.build_errors(padded, 256, 299, limit).copy()
    monkeypatch.setattr(rk, "PARALLEL_MIN_ROWS", 1)
    parallel = rk.build_errors(padded, 256, 299, limit)
    np.testing.assert_array_equal(serial, parallel)


@pytest.mark.parametrize("fill", [np.nan, 1e30, -7.0])
def test_padding_samples_decide_nothing(fill):
    """_padded fills the padding with zeros (a fresh zeroed allocation: its pages are never written). That is
    only right if no padding sample enters a decision: NaN, huge or negative padding must give the very same
    pyramid and triangles as the zeros, at every limit and on grids of any shape."""
    rng = np.random.default_rng(7)
    for it in range(12):
        gh, gw = int(rng.integers(2, 160)), int(rng.integers(2, 160))
        heights = (fractal if it % 2 else step_edges)(gh, gw, seed=it).astype(np.float32)
        zeros = _padded(heights)
        assert zeros.shape[0] == zeros.shape[1] == rk.padded_side(gh, gw) + 1
        assert np.array_equal(zeros[:gh, :gw], heights) and not zeros[gh:].any() and not zeros[:, gw:].any()
        other = np.full_like(zeros, fill)
        other[:gh, :gw] = heights
        for limit in [np.inf, 0.0, 0.002, 0.02, 0.2]:
            a = rk.build_errors(zeros, gh - 1, gw - 1, limit).copy()
            b = rk.build_errors(other, gh - 1, gw - 1, limit).copy()
            assert np.array_equal(a, b), (gh, gw, limit)
            if np.isfinite(limit):
                assert np.array_equal(rk.emit_triangles(a, gh - 1, gw - 1, limit),
                                      rk.emit_triangles(b, gh - 1, gw - 1, limit))


def test_threshold_for_a_count_is_the_exact_smallest_one():
    """--max-triangles without tree-walk bisection: the weighted order statistic of the vertex errors must be
    the smallest threshold whose tree walk counts <= N (the next float below counts more), on every kind of map:
    rough, stepped, quantised (many equal errors) and noise, on grids of any shape (padding halves weigh 0)."""
    from gpurelief.mesh.adaptive import _error_field, _threshold_for_count
    from gpurelief.mesh.workspace import workspace

    rng = np.random.default_rng(11)
    checked = 0
    for it in range(16):
        gh, gw = int(rng.integers(2, 140)), int(rng.integers(2, 140))
        kind = it % 4
        heights = [fractal(gh, gw, seed=it), step_edges(gh, gw, seed=it),
                   np.round(fractal(gh, gw, seed=it) * 20) / 20, rng.random((gh, gw))][kind].astype(np.float32)
        _, errors, rows, cols = _error_field(heights, np.inf, workspace())
        hi = float(np.max(errors, where=np.isfinite(errors), initial=0.0))
        fewest, most = rk.count_triangles(errors, rows, cols, hi), rk.count_triangles(errors, rows, cols, 0.0)
        for n in {fewest, most, fewest + 1, max(fewest, most - 1), *rng.integers(fewest, most + 1, 4).tolist()}:
            t = _threshold_for_count(errors, rows, cols, int(n))
            assert rk.count_triangles(errors, rows, cols, t) <= n
            assert t == 0.0 or rk.count_triangles(errors, rows, cols, np.nextafter(t, 0.0)) > n, (gh, gw, kind, n)
            checked += 1
    assert checked > 60
