"""The CUDA kernels, compiled as host C++ (tests/kernel_host_shim.h) and driven by the same glue as
cupy_ops (backend.kernel_ops), must equal their numpy twins bit for bit.

The GPU build differs only in the compiler (NVRTC with --fmad=false instead of g++ with
-ffp-contract=off) and in CuPy's own calls (sort, cumsum, min/max); tests/test_cupy_ops_gpu.py
repeats these comparisons on a GPU. Run under AddressSanitizer by .ci/run (GPURELIEF_HOST_ASAN=1).
"""
from __future__ import annotations

import numpy as np
import pytest

from gpurelief.backend import numpy_ops as N
from gpurelief.backend.kernel_ops import percentiles_from_sorted

from heightmaps import heights_like
from kernel_host import compiler, host_ops

pytestmark = pytest.mark.skipif(compiler() is None, reason="needs g++ for the kernel host shim")

# tiny (one block, mostly idle threads), odd (partial blocks both ways), large (many blocks, u32 indices)
SHAPES = [(2, 2), (3, 5), (17, 33), (257, 129), (600, 1201)]
DX, DY, RELIEF = 0.0123, 0.0117, 0.173


@pytest.fixture(scope="module")
def kops(tmp_path_factory):
    return host_ops(tmp_path_factory.mktemp("kernels-host"))



def assert_bits_equal(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    g = got.reshape(got.size, -1).view(np.uint8) if got.size else got
    w = want.reshape(want.size, -1).view(np.uint8) if want.size else want
    if not np.array_equal(g, w):
        diff = np.flatnonzero(np.any(g.reshape(got.size, -1) != w.reshape(want.size, -1), axis=1))
        i = diff[0]
        pytest.fail(f"{diff.size} of {got.size} values differ; first at {i}: got {got.reshape(-1)[i]!r}, want {want.reshape(-1)[i]!r}")


def ulp_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 units in the last place (same-sign values)."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


@pytest.mark.parametrize("shape", SHAPES)
def test_grid_positions_kernel_matches_numpy_bit_for_bit(kops, shape):
    h = heights_like(shape)
    assert_bits_equal(kops.grid_positions(h, dx=DX, dy=DY, relief=RELIEF), N.grid_positions(h, dx=DX, dy=DY, relief=RELIEF))


@pytest.mark.parametrize("shape", SHAPES)
def test_grid_normals_kernel_matches_numpy_bit_for_bit(kops, shape):
    h = heights_like(shape, seed=1)
    assert_bits_equal(kops.grid_normals(h, dx=DX, dy=DY, relief=RELIEF), N.grid_normals(h, dx=DX, dy=DY, relief=RELIEF))


@pytest.mark.parametrize("shape", SHAPES)
def test_grid_uvs_kernel_matches_numpy_bit_for_bit(kops, shape):
    assert_bits_equal(kops.grid_uvs(shape), N.grid_uvs(shape))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [None, np.uint16, np.uint32])
def test_grid_indices_kernel_matches_numpy_for_u16_and_u32(kops, shape, dtype):
    got = kops.grid_indices(shape, dtype)
    assert_bits_equal(got, N.grid_indices(shape, dtype))
    if dtype is None:
        assert got.dtype == (np.uint16 if shape[0] * shape[1] <= 65535 else np.uint32)


def test_grid_indices_kernel_rejects_other_dtypes(kops):
    with pytest.raises(ValueError, match="uint16 or uint32"):
        kops.grid_indices((3, 3), np.int32)


CONDITION_CASES = [
    {},
    {"clip_lo_pct": 1.0, "clip_hi_pct": 99.0},
    {"clip_lo_pct": 7.5, "clip_hi_pct": 100.0, "invert": True},
    {"invert": True, "contrast": 1.7},
    {"smooth_px": 1.5, "clip_lo_pct": 2.0, "clip_hi_pct": 98.0},
    {"smooth_px": 0.8, "invert": True, "contrast": 0.6},
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", CONDITION_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_condition_kernel_matches_numpy_bit_for_bit(kops, shape, case):
    rng = np.random.default_rng(3)
    depth = (rng.standard_normal(shape) * 4 + 10).astype(np.float32)
    depth.reshape(-1)[:: max(1, depth.size // 5)] = np.nan  # no-data samples -> the lowest height
    assert_bits_equal(kops.condition_heights(depth, **case), N.condition_heights(depth, **case))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["finite", "extremes", "inf"])
def test_condition_range_pass_matches_numpy_bit_for_bit(kops, shape, kind):
    """range_partials_f32 (one read of the map, thread partials reduced after) gives numpy's range: maps with no
    NaN take that path alone (the cases above all hold NaN); +-inf samples must send it to numpy's fill."""
    rng = np.random.default_rng(11)
    depth = (rng.standard_normal(shape) * 50 - 20).astype(np.float32)
    flat = depth.reshape(-1)
    if kind == "extremes":  # the extremes anywhere, also past the first 2**17 samples (one thread's second turn)
        flat[rng.integers(flat.size)] = 3e37
        flat[rng.integers(flat.size)] = -3e37
    elif kind == "inf":
        flat[rng.integers(flat.size)] = np.inf
        flat[rng.integers(flat.size)] = -np.inf
    for case in ({}, {"invert": True}, {"clip_lo_pct": 2.0, "clip_hi_pct": 97.0}):
        assert_bits_equal(kops.condition_heights(depth, **case), N.condition_heights(depth, **case))


@pytest.mark.parametrize("case", [{}, {"clip_lo_pct": 1.0, "clip_hi_pct": 99.0}, {"smooth_px": 1.0}],
                         ids=["plain", "clip", "smooth"])
def test_condition_params_on_the_device_follow_numpy_for_non_finite_maps(kops, case):
    """range_params_f32 decides lo, span and the fill of non-finite samples on the device as numpy_ops does:
    NaN, +inf and -inf are no data (fill = the finite minimum), no finite sample at all (fill = 0: flat), a
    single sample; the heights are finite."""
    rng = np.random.default_rng(5)
    base = (rng.standard_normal((37, 53)) * 3).astype(np.float32)
    maps = []
    for values in ([np.inf], [-np.inf], [np.inf, np.nan], [np.nan, -np.inf, np.inf]):
        m = base.copy()
        m.reshape(-1)[rng.choice(m.size, len(values) * 3, replace=False)] = np.repeat(values, 3)
        maps.append(m)
    maps += [np.full((6, 9), np.inf, np.float32), np.where(rng.random((6, 9)) < 0.5, np.nan, np.inf).astype(np.float32),
             np.full((6, 9), -np.inf, np.float32), np.array([[2.5]], np.float32)]
    for depth in maps:
        if case.get("smooth_px") and depth.shape == (1, 1):
            continue
        want = N.condition_heights(depth, **case)
        assert np.isfinite(want).all()
        assert_bits_equal(kops.condition_heights(depth, **case), want)


@pytest.mark.parametrize("case", [{}, {"clip_lo_pct": 1.0, "clip_hi_pct": 99.0}, {"invert": True, "smooth_px": 1.0}],
                         ids=["plain", "clip", "invert-smooth"])
def test_condition_of_a_map_spanning_past_float32_max_matches_numpy(kops, case):
    """hi - lo overflows float32 (-3e38 .. 3e38): range_params_f32 halves the map as numpy_ops.normalization
    does, so both give the same finite heights (they were NaN on both backends)."""
    rng = np.random.default_rng(8)
    depth = ((rng.random((41, 67)) * 2 - 1) * 3e38).astype(np.float32)
    depth[3, 4], depth[20, 30] = -3.4e38, 3.4e38
    depth[7, 7] = np.nan
    got = kops.condition_heights(depth, **case)
    want = N.condition_heights(depth, **case)
    assert np.isfinite(want).all()
    assert_bits_equal(got, want)


@pytest.mark.parametrize("rows", [1, 2, 7, 1000, (1 << 17) + 3, 600_001])
def test_column_bounds_match_numpy(kops, rows):
    """The glTF POSITION bounds of a device array: range_partials_f32 over each strided column (one thread's
    second turn past 2**17 rows) equals numpy's column min/max, also with non-finite values in a column."""
    rng = np.random.default_rng(rows)
    table = (rng.standard_normal((rows, 3)) * [1, 100, 0.01]).astype(np.float32)
    assert kops.column_bounds(table) == N.column_bounds(table)
    want = N.column_bounds(table)
    assert want == ([float(table[:, k].min()) for k in range(3)], [float(table[:, k].max()) for k in range(3)])
    if rows > 2:
        table[rng.integers(rows), 1] = np.nan
        table[rng.integers(rows), 2] = -np.inf
        assert kops.column_bounds(table) == N.column_bounds(table)
        assert all(np.isfinite(N.column_bounds(table)[0])) and all(np.isfinite(N.column_bounds(table)[1]))
    table[:, 0] = np.nan  # no finite value in a column: both give (float32 max, -float32 max)
    assert kops.column_bounds(table) == N.column_bounds(table)


@pytest.mark.parametrize("case", [{}, {"invert": True}, {"contrast": 2.0}], ids=["plain", "invert", "contrast"])
def test_condition_kernel_flat_and_all_nan_maps_match_numpy(kops, case):
    for depth in (np.full((5, 7), 3.25, np.float32), np.full((4, 4), np.nan, np.float32)):
        assert_bits_equal(kops.condition_heights(depth, **case), N.condition_heights(depth, **case))


@pytest.mark.parametrize("gamma", [0.45, 1.7, 2.2])
def test_condition_kernel_gamma_within_one_ulp_of_numpy(kops, gamma):
    # numpy's float32 power is libm powf; the kernel rounds a double pow (README: tolerance)
    depth = np.random.default_rng(4).random((300, 211), dtype=np.float32)
    got = kops.condition_heights(depth, gamma=gamma)
    want = N.condition_heights(depth, gamma=gamma)
    d = ulp_diff(got, want)
    assert d.max() <= 1
    assert np.count_nonzero(d) <= depth.size // 100  # almost every sample is exact


def test_percentiles_from_sorted_equal_numpy_percentile():
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 10, 101, 1000, 4097):
        values = (rng.standard_normal(n) * rng.uniform(0.1, 1e4)).astype(np.float32)
        s = np.sort(values)
        for q in ([0.0, 100.0], [1.0, 99.0], [2.5, 97.5], [33.3, 66.7], [50.0, 50.0], [0.1, 99.9]):
            got = percentiles_from_sorted(s, q, lambda a, idx: a[idx])
            want = np.percentile(values, q)
            assert [np.float64(g).tobytes() for g in got] == [np.float64(w).tobytes() for w in want], (n, q)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.02, 0.4, 0.9])
def test_cut_and_compact_kernels_match_numpy(kops, shape, density):
    valid = np.random.default_rng(6).random(shape) < density
    keep = kops.cut_cells(valid)
    assert_bits_equal(keep, N.cut_cells(valid))
    if not keep.any():
        return
    vertex_ids, indices = kops.compact_grid(keep, shape)
    want_ids, want_indices = N.compact_grid(keep, shape)
    assert_bits_equal(vertex_ids, want_ids)
    assert_bits_equal(indices, want_indices)


def test_compact_kernel_switches_to_u32_past_65535_vertices(kops):
    shape = (300, 400)
    keep = np.ones((shape[0] - 1, shape[1] - 1), bool)
    keep[::7, ::3] = False
    _, indices = kops.compact_grid(keep, shape)
    _, want = N.compact_grid(keep, shape)
    assert indices.dtype == np.uint32
    assert_bits_equal(indices, want)


@pytest.mark.parametrize("shape", SHAPES)
def test_quantize_kernels_match_numpy_bit_for_bit(kops, shape):
    h = heights_like(shape, seed=7)
    positions = N.grid_positions(h, dx=DX, dy=DY, relief=RELIEF)
    normals = N.grid_normals(h, dx=DX, dy=DY, relief=RELIEF)
    uvs = N.grid_uvs(shape)
    centre, half = kops.quantization_transform(positions)
    want_centre, want_half = N.quantization_transform(positions)
    assert_bits_equal(centre, want_centre)
    assert_bits_equal(half, want_half)
    assert_bits_equal(kops.quantize_positions(positions, centre, half), N.quantize_positions(positions, centre, half))
    assert_bits_equal(kops.quantize_normals(normals, half), N.quantize_normals(normals, half))
    assert_bits_equal(kops.quantize_uvs(uvs), N.quantize_uvs(uvs))
