"""numpy_ops grid stages and mesh.grid: counts, winding, UVs, normals, placement, index types."""
from __future__ import annotations

import numpy as np
import pytest

from gpurelief.backend import numpy_ops as ops
from gpurelief.condition import condition
from gpurelief.mesh.grid import grid_mesh
from gpurelief.types import DepthMap, Heightfield


def _mesh(heights, image_size=None, **kw):
    h = np.asarray(heights, np.float32)
    return grid_mesh(Heightfield(heights=h, image_size=image_size or h.shape), **kw)


def test_grid_mesh_counts_and_index_range_on_odd_shape():
    m = _mesh(np.random.default_rng(1).random((7, 13)))
    assert m.vertex_count == 7 * 13
    assert m.triangle_count == 2 * 6 * 12
    assert m.indices.min() == 0 and m.indices.max() == 7 * 13 - 1
    assert m.positions.dtype == np.float32 and m.normals.shape == (91, 3) and m.uvs.shape == (91, 2)


def test_grid_indices_wind_ccw_seen_from_viewer():
    m = _mesh(np.zeros((5, 6)))
    tri = m.positions[m.indices.astype(np.int64).reshape(-1, 3)]
    cross_z = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2]
    assert (cross_z > 0).all()


def test_grid_uses_uint16_up_to_65535_vertices_then_uint32():
    assert ops.grid_indices((255, 257)).dtype == np.uint16  # 65,535 vertices
    assert ops.grid_indices((256, 256)).dtype == np.uint32  # 65,536 vertices
    big = ops.grid_indices((256, 256))
    assert big.max() == 65535


def test_grid_uvs_on_texel_centres_and_image_top_at_top():
    m = _mesh(np.zeros((4, 5)))
    u = m.uvs[:, 0].reshape(4, 5)
    v = m.uvs[:, 1].reshape(4, 5)
    np.testing.assert_allclose(u[0], (np.arange(5) + 0.5) / 5)
    np.testing.assert_allclose(v[:, 0], (np.arange(4) + 0.5) / 4)
    y = m.positions[:, 1].reshape(4, 5)
    assert (y[0] > y[-1]).all()  # row 0 (v small = image top) is at +Y


def test_grid_positions_centred_span_width_and_keep_aspect():
    m = _mesh(np.zeros((31, 41)), image_size=(300, 400), width=2.0)
    x, y = m.positions[:, 0], m.positions[:, 1]
    assert np.isclose(x.min(), -1.0) and np.isclose(x.max(), 1.0)
    assert np.isclose(y.min(), -y.max())
    # cells are (400/41) x (300/31) pixels; model height follows the photo's aspect
    assert np.isclose(y.max() - y.min(), 2.0 * (300 / 400) * (30 / 31) / (40 / 41), rtol=1e-5)


def test_grid_relief_height_is_fraction_of_width():
    h = np.zeros((3, 3), np.float32)
    h[1, 1] = 1.0
    m = _mesh(h, width=0.5, relief_frac=0.2)
    assert np.isclose(m.positions[:, 2].max(), 0.1) and m.positions[:, 2].min() == 0.0


def test_grid_normals_unit_and_tilt_away_from_slope():
    rows, cols = np.mgrid[0:9, 0:11].astype(np.float32)
    h = cols / 10.0  # rises toward +X
    m = _mesh(h, width=1.0, relief_frac=0.1)
    n = m.normals
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    # z = 0.1 * x + c  -> n ~ (-0.1, 0, 1) / |.|
    np.testing.assert_allclose(n, np.tile(np.array([-0.1, 0, 1], np.float32) / np.sqrt(1.01), (99, 1)), atol=1e-6)
    m2 = _mesh(rows / 8.0, width=1.0, relief_frac=0.1)  # rises toward the image bottom = -Y
    assert (m2.normals[:, 1] > 0).all()


def test_grid_shape_limits_longest_side():
    assert ops.grid_shape((3000, 4000), 1024) == (768, 1024)
    assert ops.grid_shape((300, 400), 1024) == (300, 400)
    assert ops.grid_shape((3000, 4000), None) == (3000, 4000)
    assert ops.grid_shape((2, 5000), 100) == (2, 100)


def test_condition_normalises_clamps_inverts_and_handles_nan():
    d = np.arange(100, dtype=np.float32).reshape(10, 10)
    d[0, 0] = np.nan
    hf = condition(DepthMap(d), image_size=(10, 10), grid_size=(10, 10))
    assert hf.heights.min() == 0.0 and hf.heights.max() == 1.0
    assert hf.heights[0, 0] == 0.0  # no-data -> lowest
    inv = condition(DepthMap(d), image_size=(10, 10), grid_size=(10, 10), invert=True)
    np.testing.assert_allclose(inv.heights, 1.0 - hf.heights, atol=1e-6)
    clipped = condition(DepthMap(d), image_size=(10, 10), grid_size=(10, 10), clip_pct=(10, 90))
    assert (clipped.heights == 1.0).sum() >= 10 and (clipped.heights == 0.0).sum() >= 10
    flat = condition(DepthMap(np.ones((4, 4), np.float32)), image_size=(4, 4), grid_size=(4, 4))
    assert (flat.heights == 0).all()
    # +-inf are no data like NaN (a single -inf made every height NaN), also when resampled onto the grid
    for grid in ((10, 10), (7, 13)):
        e = d.copy()
        e[0, 0], e[5, 5], e[9, 9] = -np.inf, np.inf, np.nan
        hi = condition(DepthMap(e), image_size=(10, 10), grid_size=grid)
        assert np.isfinite(hi.heights).all() and hi.heights.min() == 0.0 and hi.heights.max() == 1.0
        if grid == (10, 10):
            assert hi.heights[0, 0] == hi.heights[5, 5] == hi.heights[9, 9] == 0.0
            np.testing.assert_array_equal(hi.heights[1:5], (d[1:5] - np.float32(1)) / np.float32(97))


def test_condition_gamma_contrast_smooth():
    d = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    base = condition(DepthMap(d), image_size=(8, 8), grid_size=(8, 8)).heights
    g = condition(DepthMap(d), image_size=(8, 8), grid_size=(8, 8), gamma=2.0).heights
    np.testing.assert_allclose(g, base**2, atol=1e-6)
    c = condition(DepthMap(d), image_size=(8, 8), grid_size=(8, 8), contrast=2.0).heights
    np.testing.assert_allclose(c, np.clip(0.5 + (base - 0.5) * 2, 0, 1), atol=1e-6)
    noisy = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    s = condition(DepthMap(noisy), image_size=(32, 32), grid_size=(32, 32), smooth_px=2.0).heights
    assert s.std() < 0.5 * noisy.std()


def test_condition_resamples_to_grid_and_marks_transparent_samples():
    d = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    alpha = np.full((30, 40), 255, np.uint8)
    alpha[:, :20] = 0
    hf = condition(DepthMap(d), image_size=(30, 40), grid_size=(15, 20), alpha=alpha, cut_transparent=True)
    assert hf.heights.shape == (15, 20)
    assert np.all(np.diff(hf.heights, axis=1) >= 0)
    assert not hf.valid[:, :10].any() and hf.valid[:, 10:].all()


def test_cut_transparent_drops_cells_and_compacts_vertices():
    valid = np.ones((6, 8), bool)
    valid[:, :4] = False  # columns 0..3 transparent: cells 0..2 fully cut, cell 3 touches a valid column
    m = grid_mesh(Heightfield(np.zeros((6, 8), np.float32), (6, 8), valid=valid))
    assert m.triangle_count == 2 * 5 * 4
    assert m.vertex_count == 6 * 5
    assert m.indices.max() == m.vertex_count - 1
    assert m.positions[:, 0].min() > -0.5 + 1e-6  # leftmost columns gone
    tri = m.positions[m.indices.astype(np.int64).reshape(-1, 3)]
    assert (np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2] > 0).all()


def test_box_blur_and_resize_preserve_constants_and_means():
    a = np.full((17, 23), 3.5, np.float32)
    np.testing.assert_allclose(ops.box_blur(a, 4), a, rtol=1e-6)
    r = np.random.default_rng(2).random((64, 48)).astype(np.float32)
    assert np.isclose(ops.resize(r, (16, 12)).mean(), r.mean(), atol=1e-4)
    assert ops.resize(r, (128, 96)).shape == (128, 96)


@pytest.mark.parametrize("bad", [dict(width=0), dict(width=-1), dict(relief_frac=-0.1)])
def test_grid_mesh_rejects_bad_sizes(bad):
    from gpurelief.errors import OptionError

    with pytest.raises(OptionError):
        _mesh(np.zeros((3, 3)), **bad)


@pytest.mark.parametrize("shape", [(2, 2), (7, 13), (64, 33)])
def test_grid_mesh_bounds_equal_the_scanned_positions_exactly(shape):
    rng = np.random.default_rng(sum(shape))
    h = rng.random(shape).astype(np.float32)
    m = grid_mesh(Heightfield(heights=h, image_size=(shape[0] * 3, shape[1] * 5)), width=0.37, relief_frac=0.13)
    lo, hi = m.extras["position_bounds"]
    assert lo == [float(v) for v in m.positions.min(axis=0)]
    assert hi == [float(v) for v in m.positions.max(axis=0)]
