"""mesh/adaptive.py: the error bound holds at every pixel, the mesh is crack-free, vertices are grid samples."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

pytest.importorskip("numba", reason="the adaptive mesher's compiled path needs numba (pip extra [fast])")

from gpurelief.backend import numpy_ops as ops
from gpurelief.cli import main
from gpurelief.errors import ExitStatus, OptionError
from gpurelief.mesh.adaptive import adaptive_mesh, parse_max_error, rtin_triangles
from gpurelief.mesh.grid import grid_mesh
from gpurelief.mesh.metrics import vertical_error
from gpurelief.mesh.vertex_kernels import attributes_at
from gpurelief.types import Heightfield

from heightmaps import fractal, step_edges
from mesh_checks import assert_valid_cover

MAPS = {"fractal": fractal, "steps": step_edges}
SIZES = [(97, 131), (130, 65), (129, 129), (33, 200)]


def _grid_coords(mesh, hf, width):
    """Mesh vertices -> (cols, rows) grid indices, recovered from the positions."""
    gh, gw = hf.grid_size
    dx = width / (gw - 1)
    cols = np.rint(mesh.positions[:, 0] / dx + (gw - 1) / 2).astype(np.int64)
    rows = np.rint((gh - 1) / 2 - mesh.positions[:, 1] / (dx)).astype(np.int64)  # square pixels: dy == dx
    return cols, rows


@pytest.mark.parametrize("kind", MAPS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pct", [2.0, 0.5, 0.1])
def test_adaptive_error_bound_holds_at_every_pixel(kind, size, pct):
    heights = MAPS[kind](*size, seed=sum(size))
    hf = Heightfield(heights, image_size=size)
    width, relief_frac = 2.0, 0.25
    mesh = adaptive_mesh(hf, width=width, relief_frac=relief_frac, max_error_frac=pct / 100)
    relief = width * relief_frac
    cols, rows = _grid_coords(mesh, hf, width)
    # the full grid's Z (float32, what --mesh grid writes) is the reference surface
    z_grid = heights * np.float32(relief)
    m = vertical_error(z_grid, cols, rows, mesh.positions[:, 2], mesh.indices)
    assert m["uncovered"] == 0
    bound = pct / 100 * relief
    # the bound holds on the heights; scaling them to float32 model units adds at most a few ulps
    assert m["max"] <= bound + 4 * np.spacing(np.float32(relief))
    assert mesh.extras["max_error"] == pytest.approx(m["max"], rel=1e-5, abs=1e-9)
    assert mesh.triangle_count < 2 * (size[0] - 1) * (size[1] - 1)


@pytest.mark.parametrize("kind", MAPS)
@pytest.mark.parametrize("size", [(97, 131), (130, 65), (64, 64)])
def test_adaptive_mesh_is_crack_free_and_covers_exactly_the_grid(kind, size):
    gh, gw = size
    heights = MAPS[kind](gh, gw, seed=3)
    triangles, _ = rtin_triangles(heights, max_error=0.004)
    rows, cols = np.divmod(triangles, gw)
    # counter-clockwise seen from +Z (y = -row): positive area in (col, -row)
    area2 = (cols[:, 1] - cols[:, 0]) * (-rows[:, 2] + rows[:, 0]) - (-rows[:, 1] + rows[:, 0]) * (cols[:, 2] - cols[:, 0])
    assert (area2 > 0).all()
    # no overlap, no gap: the areas add up to the grid's
    assert area2.sum() == 2 * (gh - 1) * (gw - 1)
    # every edge shared by at most 2 triangles; edges used once lie on the grid border (a T-junction
    # or a crack would leave an interior edge used once)
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    e.sort(axis=1)
    uniq, counts = np.unique(e, axis=0, return_counts=True)
    assert counts.max() <= 2
    r, c = np.divmod(uniq[counts == 1], gw)
    on_border = ((r[:, 0] == r[:, 1]) & np.isin(r[:, 0], [0, gh - 1])) | ((c[:, 0] == c[:, 1]) & np.isin(c[:, 0], [0, gw - 1]))
    assert on_border.all()
    # the border edges add up to the perimeter exactly once
    length = np.abs(r[:, 0] - r[:, 1]) + np.abs(c[:, 0] - c[:, 1])
    assert length.sum() == 2 * (gh - 1) + 2 * (gw - 1)


@pytest.mark.parametrize("quality_pass", ["off", "fast"])
def test_adaptive_vertices_are_the_grid_meshers_vertices(quality_pass):
    heights = step_edges(81, 120, seed=1)
    hf = Heightfield(heights, image_size=(162, 240))
    kw = dict(width=1.5, relief_frac=0.2)
    grid = grid_mesh(hf, **kw)
    mesh = adaptive_mesh(hf, max_error_frac=0.003, quality_pass=quality_pass, **kw)
    ids = {tuple(p): i for i, p in enumerate(grid.positions.tolist())}
    vertex_ids = np.array([ids[tuple(p)] for p in mesh.positions.tolist()])
    assert np.array_equal(mesh.positions, grid.positions[vertex_ids])
    assert np.array_equal(mesh.normals, grid.normals[vertex_ids])
    assert np.array_equal(mesh.uvs, grid.uvs[vertex_ids])
    assert mesh.indices.dtype == np.uint16 and mesh.vertex_count <= 65535


def test_adaptive_plane_needs_only_the_corner_triangles():
    y, x = np.mgrid[0:129, 0:129].astype(np.float32)
    heights = (0.2 + 0.003 * x + 0.002 * y).astype(np.float32)
    triangles, _ = rtin_triangles(heights, max_error=1e-6)
    assert len(triangles) == 2


def test_adaptive_max_triangles_caps_the_count_and_reports_the_true_error():
    heights = fractal(150, 201, seed=5)
    hf = Heightfield(heights, image_size=heights.shape)
    mesh = adaptive_mesh(hf, width=1.0, relief_frac=1.0, max_triangles=3000)
    assert 2500 < mesh.triangle_count <= 3000
    cols, rows = _grid_coords(mesh, hf, 1.0)
    m = vertical_error(heights.astype(np.float64), cols, rows, mesh.positions[:, 2], mesh.indices)
    assert mesh.extras["max_error"] == pytest.approx(m["max"], rel=1e-5)
    tighter = adaptive_mesh(hf, width=1.0, relief_frac=1.0, max_triangles=3000, max_error_frac=0.5)
    assert tighter.triangle_count < mesh.triangle_count  # the looser of the two bounds wins
    with pytest.raises(OptionError, match="--max-triangles"):
        adaptive_mesh(hf, max_triangles=3)


@pytest.mark.parametrize("quality", ["fast", "full"])
@pytest.mark.parametrize("kind", ["fractal", "steps"])
def test_max_triangles_counts_the_mesh_after_the_quality_pass(kind, quality):
    """The limit applies to the final mesh: it is used (>= 90% of it), kept, and the bound this reaches is
    tighter than fitting RTIN's count and passing (which leaves the pass's result far under the limit)."""
    from gpurelief.mesh.adaptive import adaptive_triangles
    from gpurelief.mesh.simplify import mesh_max_error

    heights = (fractal if kind == "fractal" else step_edges)(180, 250, seed=11)
    n = 6000
    tris, threshold = adaptive_triangles(heights, max_triangles=n, quality_pass=quality)
    assert 0.9 * n <= len(tris) <= n
    assert_valid_cover(heights, tris, threshold + 1e-12)
    assert mesh_max_error(heights, tris) <= threshold
    _, rtin_fit = rtin_triangles(heights, max_triangles=n)
    assert threshold < 0.9 * rtin_fit
    # with a bound as well, the looser one still wins
    loose, t2 = adaptive_triangles(heights, max_triangles=n, max_error=2 * rtin_fit, quality_pass=quality)
    assert t2 == 2 * rtin_fit and len(loose) < len(tris)


def test_max_triangles_below_rtins_fewest_works_with_a_pass_and_says_when_not():
    """A flat grid that is not (2^k+1)^2: RTIN needs its border splits, the full pass merges them away."""
    from gpurelief.mesh.adaptive import adaptive_triangles

    heights = np.zeros((60, 91), dtype=np.float32)
    with pytest.raises(OptionError, match="needs at least"):
        rtin_triangles(heights, max_triangles=20)
    tris, _ = adaptive_triangles(heights, max_triangles=20, quality_pass="full")
    assert 2 <= len(tris) <= 20
    assert_valid_cover(heights, tris, 1e-12)
    rough = fractal(60, 91, seed=2)
    with pytest.raises(OptionError, match="quality-pass full goes lower"):
        adaptive_triangles(rough, max_triangles=2, quality_pass="fast")


def test_default_pass_turns_full_where_fast_cannot_reach_the_budget():
    """adaptive_mesh(full_if_needed=True) (the CLI's default pass): a budget below what one fast sweep reaches on
    a grid that is not (2^k+1)^2 runs the full pass instead of refusing, and says so in extras."""
    from gpurelief.mesh.adaptive import PassTooCoarse

    hf = Heightfield(np.zeros((60, 91), dtype=np.float32), image_size=(60, 91))
    with pytest.raises(PassTooCoarse, match="quality-pass full goes lower") as refused:
        adaptive_mesh(hf, width=1.0, max_triangles=20, quality_pass="fast")
    assert refused.value.fewest > 20 and refused.value.effort == "fast"
    mesh = adaptive_mesh(hf, width=1.0, max_triangles=20, quality_pass="fast", full_if_needed=True)
    assert 2 <= mesh.triangle_count <= 20
    assert mesh.extras["quality_pass"] == "full" and mesh.extras["fast_fewest"] == refused.value.fewest
    assert mesh.extras["max_error"] == 0.0
    # a budget fast reaches stays with fast
    rough = Heightfield(fractal(60, 91, seed=2), image_size=(60, 91))
    kept = adaptive_mesh(rough, width=1.0, max_triangles=2000, quality_pass="fast", full_if_needed=True)
    assert kept.triangle_count <= 2000 and kept.extras["quality_pass"] == "fast" and "fast_fewest" not in kept.extras
    # the full pass cannot go below its own fewest either: still a one-line option error
    with pytest.raises(PassTooCoarse, match="with --quality-pass full"):
        adaptive_mesh(rough, width=1.0, max_triangles=2, quality_pass="fast", full_if_needed=True)


def test_cli_max_triangles_below_the_default_pass_runs_full_and_notes_it(tmp_path, capsys):
    from PIL import Image as PILImage

    src = tmp_path / "flat.png"
    PILImage.new("RGB", (300, 200), (128, 128, 128)).save(src)
    out = tmp_path / "flat.glb"
    assert main(["convert", str(src), "-o", str(out), "--mesh", "adaptive", "--max-triangles", "100"]) == 0
    err = capsys.readouterr().err
    assert "the default --quality-pass fast keeps at least" in err and "the full pass ran" in err
    assert _glb_json(out)["accessors"][-1]["count"] <= 3 * 100
    # a pass the user chose is kept: refused in one line, nothing written
    chosen = tmp_path / "chosen.glb"
    assert main(["convert", str(src), "-o", str(chosen), "--mesh", "adaptive", "--max-triangles", "100",
                 "--quality-pass", "fast"]) == ExitStatus.OPTION
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("gpurelief: error:")]
    assert len(errors) == 1 and "--quality-pass full goes lower" in errors[0] and "Traceback" not in err
    assert not chosen.exists()


def test_parse_max_error_accepts_units_and_percent_and_rejects_garbage():
    assert parse_max_error("0.5%") == (0.5, True)
    assert parse_max_error("0.002") == (0.002, False)
    with pytest.raises(OptionError, match="--max-error"):
        parse_max_error("abc")
    with pytest.raises(OptionError, match="--max-error"):
        parse_max_error("-1%")


def _glb_json(path):
    data = path.read_bytes()
    n = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20 : 20 + n])


def test_cli_adaptive_writes_a_valid_smaller_glb(photo_jpeg, tmp_path, gltf_validator, capsys):
    grid_out, adaptive_out = tmp_path / "g.glb", tmp_path / "a.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(grid_out)]) == 0
    assert main(["convert", str(photo_jpeg), "-o", str(adaptive_out), "--mesh", "adaptive", "--max-error", "1%", "-v"]) == 0
    assert "max error" in capsys.readouterr().err
    gltf_validator(adaptive_out)
    g, a = _glb_json(grid_out), _glb_json(adaptive_out)
    assert a["accessors"][-1]["count"] < g["accessors"][-1]["count"]
    assert a["accessors"][0]["min"] == g["accessors"][0]["min"] and a["accessors"][0]["max"] == g["accessors"][0]["max"]


def test_cli_max_error_without_adaptive_is_an_option_error(photo_jpeg, tmp_path, capsys):
    out = tmp_path / "x.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--max-error", "1%"]) == ExitStatus.OPTION
    err = capsys.readouterr().err
    assert "--mesh adaptive" in err and "Traceback" not in err
    assert not out.exists()


def test_adaptive_flat_relief_stays_inside_the_grid():
    hf = Heightfield(fractal(70, 90, seed=2), image_size=(70, 90))
    mesh = adaptive_mesh(hf, width=1.0, relief_frac=0.0, max_error=0.001)
    assert mesh.extras["max_error"] == 0.0
    x, y = mesh.positions[:, 0], mesh.positions[:, 1]
    assert x.min() == -0.5 and x.max() == 0.5  # exactly the grid's extent: nothing in the padding
    assert mesh.triangle_count < 2 * 69 * 89 // 4


@pytest.mark.parametrize("kind", MAPS)
@pytest.mark.parametrize("pct", [0.05, 0.01, 0.002])
def test_adaptive_bound_is_exact_in_double_precision(kind, pct):
    """In height units there is no float32 scaling: the measured max must not exceed the bound at all
    (a kernel that rounded to float32 once overshot 0.01% by 1.7e-9 on a 1025^2 map)."""
    for seed in range(3):
        heights = MAPS[kind](257, 300, seed=seed)
        triangles, _ = rtin_triangles(heights, max_error=pct / 100)
        rows, cols = np.divmod(np.arange(heights.size), heights.shape[1])
        m = vertical_error(heights, cols, rows, heights.reshape(-1), triangles)
        assert m["uncovered"] == 0
        assert m["max"] <= pct / 100 * (1 + 1e-12)


def test_cli_max_error_in_units_equals_the_same_percentage(photo_jpeg, tmp_path):
    """--width 100 --units cm --relief 0.1: the relief is 10 cm, so 0.5 (cm) is 5% of it."""
    from gpurelief.pipeline import convert

    kw = dict(width=100, units="cm", relief=0.1, mesh="adaptive")
    a = convert(photo_jpeg, tmp_path / "a.glb", max_error="0.5", **kw)
    b = convert(photo_jpeg, tmp_path / "b.glb", max_error="5%", **kw)
    assert a.triangle_count == b.triangle_count < 2 * 47 * 63
    assert 0 < a.max_error <= 0.5 * (1 + 1e-5)  # reported in --units (cm)


@pytest.mark.parametrize("kind", MAPS)
@pytest.mark.parametrize("size", [(97, 131), (130, 65)])
@pytest.mark.parametrize("pct", [0.5, 0.1])
@pytest.mark.parametrize("effort", ["fast", "full"])
def test_quality_pass_keeps_the_bound_and_the_cover_with_fewer_triangles(kind, size, pct, effort):
    from gpurelief.mesh.simplify import collapse_vertices

    gh, gw = size
    heights = MAPS[kind](gh, gw, seed=9)
    rtin, _ = rtin_triangles(heights, max_error=pct / 100)
    triangles = collapse_vertices(heights, rtin, pct / 100, effort=effort)
    assert len(triangles) < 0.9 * len(rtin)
    assert_valid_cover(heights, triangles, pct / 100)


def test_cli_quality_pass_writes_fewer_triangles(photo_jpeg, tmp_path, gltf_validator):
    from gpurelief.pipeline import convert

    a = convert(photo_jpeg, tmp_path / "a.glb", mesh="adaptive", max_error="0.5%", quality_pass="off")
    b = convert(photo_jpeg, tmp_path / "b.glb", mesh="adaptive", max_error="0.5%", quality_pass=True)
    assert b.triangle_count < a.triangle_count
    assert b.max_error <= 0.005 * 0.1 * (1 + 1e-5)  # 0.5% of a relief of 0.1 m
    gltf_validator(tmp_path / "b.glb")


def test_cli_quality_pass_levels_default_to_fast_and_the_bare_flag_is_full(tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "p.png"
    Image.fromarray((step_edges(120, 160, seed=2) * 255).astype(np.uint8)).save(src)
    counts = {}
    for name, extra in {"default": [], "off": ["--quality-pass", "off"], "fast": ["--quality-pass", "fast"],
                        "bare": ["--quality-pass"], "full": ["--quality-pass", "full"]}.items():
        out = tmp_path / f"{name}.glb"
        assert main(["convert", str(src), "-o", str(out), "--mesh", "adaptive", "--max-error", "0.5%", *extra]) == 0
        counts[name] = _glb_json(out)["accessors"][-1]["count"] // 3
    assert counts["default"] == counts["fast"] and counts["bare"] == counts["full"]
    assert counts["full"] <= counts["fast"] < 0.9 * counts["off"]
    # the bare flag written just before the input path: the path is the input, not a level
    out = tmp_path / "bare-first.glb"
    assert main(["convert", "--mesh", "adaptive", "--max-error", "0.5%", "--quality-pass", str(src), "-o", str(out)]) == 0
    assert _glb_json(out)["accessors"][-1]["count"] // 3 == counts["full"]
    assert main(["convert", str(src), "-o", str(tmp_path / "g.glb"), "--quality-pass", "fast"]) == ExitStatus.OPTION
    assert "--quality-pass need --mesh adaptive" in capsys.readouterr().err
    assert main(["convert", str(src), "-o", str(tmp_path / "g.glb"), "--quality-pass", "off"]) == 0


def test_kernels_cached_tells_a_cold_numba_cache_from_a_warm_one(tmp_path):
    """A fresh NUMBA_CACHE_DIR: the next adaptive mesh compiles (False); after one adaptive mesh in this
    session (the default cache next to the sources), the kernels are on disk (True)."""
    import os
    import subprocess
    import sys

    from gpurelief.mesh import adaptive

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    out = subprocess.run([sys.executable, "-c", "from gpurelief.mesh.adaptive import kernels_cached; print(kernels_cached())"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
    heights = fractal(300, 300, seed=1)  # same argument types as a real run: every kernel compiled and cached
    tris, bound = rtin_triangles(heights, max_error=0.001)
    from gpurelief.mesh.simplify import collapse_vertices

    collapse_vertices(heights, tris, bound)
    assert adaptive.kernels_cached() is True


def test_kernels_cached_asks_only_for_the_kernels_the_run_will_use(monkeypatch):
    """With the pass off, the pass's kernels are not needed (and never compile): a cache without them is warm.
    With a pass, its phase 1 and serial sweep are, but not the parallel sweep, which small grids never run."""
    import os

    from gpurelief.mesh import adaptive, simplify

    def index(kernel):
        return kernel._cache._cache_file._index_path

    missing = {index(simplify._fine_collapses), index(simplify._sweep_stripes)}
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p not in missing and real_exists(p))
    heights = fractal(300, 300, seed=1)  # everything compiled and cached in this session's cache
    collapse = simplify.collapse_vertices
    collapse(heights, *rtin_triangles(heights, max_error=0.001))
    assert adaptive.kernels_cached("off") is True
    assert adaptive.kernels_cached("fast") is False and adaptive.kernels_cached("full") is False
    missing = {index(simplify._sweep_stripes)}
    monkeypatch.setattr(os.path, "exists", lambda p: p not in missing and real_exists(p))
    assert adaptive.kernels_cached("fast") is True
    # quick runs its own kernels, not the sweep's: a cache without the sweep is warm for it, one without its
    # level pass is not
    from gpurelief.mesh import grid_pass

    tris, threshold = rtin_triangles(heights, max_error=0.001)
    collapse(heights, tris, threshold, effort="quick", rtin=True)
    missing = {index(simplify._fine_collapses), index(simplify._sweep_range)}
    assert adaptive.kernels_cached("quick") is True and adaptive.kernels_cached("fast") is False
    missing = {index(grid_pass._level_pass)}
    assert adaptive.kernels_cached("quick") is False and adaptive.kernels_cached("fast") is True


@pytest.mark.parametrize("cached", [False, True])
def test_cli_says_once_that_the_first_adaptive_run_compiles(tmp_path, capsys, monkeypatch, cached):
    from PIL import Image

    from gpurelief.mesh import adaptive

    monkeypatch.setattr(adaptive, "kernels_cached", lambda quality_pass: cached)
    src = tmp_path / "p.png"
    Image.fromarray((step_edges(60, 80, seed=2) * 255).astype(np.uint8)).save(src)
    assert main(["convert", str(src), "-o", str(tmp_path / "a.glb"), "--mesh", "adaptive", "--max-error", "1%"]) == 0
    err = capsys.readouterr().err
    assert ("compiling the mesher" in err) is (not cached)
    assert main(["convert", str(src), "-o", str(tmp_path / "g.glb")]) == 0  # grid meshes compile nothing
    assert "compiling" not in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(2, 2), (3, 5), (9, 2), (2, 7), (33, 65), (300, 451)])
def test_vertex_attributes_at_are_bit_identical_to_the_grid_mesher(shape):
    """The adaptive mesh's positions, normals and UVs (attributes_at, one numba pass) are computed only at the used
    samples: every sample, border ones included, in any order, gets the grid mesher's float32 values bit for
    bit."""
    rng = np.random.default_rng(sum(shape))
    gh, gw = shape
    heights = (rng.random(shape) * rng.uniform(0.1, 50)).astype(np.float32)
    for dx, dy, relief in [(0.01, 0.013, 0.1), (1 / 3, 0.7, 2.5)]:
        full = ops.grid_normals(heights, dx=dx, dy=dy, relief=relief)
        ids = rng.permutation(gh * gw)
        rows, cols = np.divmod(ids, gw)
        positions, normals, uvs = attributes_at(heights, rows.astype(np.int32), cols.astype(np.int32), dx=dx, dy=dy,
                                                relief=relief)
        want = (ops.grid_positions(heights, dx=dx, dy=dy, relief=relief), full, ops.grid_uvs(shape))
        for got, grid in zip((positions, normals, uvs), want):
            assert got.dtype == np.float32 and got.shape == (ids.size, grid.shape[1])
            assert np.array_equal(grid[ids].view(np.uint32), got.view(np.uint32))
