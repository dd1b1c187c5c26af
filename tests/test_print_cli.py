"""`gpurelief convert photo.jpg -o plaque.stl --width-mm 100`: print formats end to end, and their bad input."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gpurelief import convert
from gpurelief.cli import main
from gpurelief.errors import ExitStatus
from gpurelief.writers import stl as stl_module

from conftest import photo_like

trimesh = pytest.importorskip("trimesh")


@pytest.mark.parametrize("suffix", [".stl", ".3mf", ".obj", ".ply"])
def test_cli_writes_a_closed_solid_in_millimetres(tmp_path, photo_jpeg, suffix, capsys):
    out = tmp_path / f"plaque{suffix}"
    rc = main(["convert", str(photo_jpeg), "-o", str(out), "--width-mm", "100", "--relief-mm", "5", "--base-mm", "2"])
    assert rc == ExitStatus.OK, capsys.readouterr().err
    mesh = trimesh.load(out, force="mesh")
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    (x0, y0, z0), (x1, y1, z1) = mesh.bounds
    assert x1 - x0 == pytest.approx(100.0, abs=1e-3)
    assert y1 - y0 == pytest.approx(100.0 * 47 / 63, abs=1e-3)   # 64x48 photo: aspect kept
    assert (z0, z1) == (pytest.approx(0.0), pytest.approx(7.0, abs=1e-4))
    # the base is solid: no point of the top dips below 2 mm
    top_z = mesh.vertices[mesh.vertices[:, 2] > 0, 2]
    assert top_z.min() >= 2.0 - 1e-4


def test_cli_height_mm_and_border_give_the_outer_size(tmp_path, photo_jpeg):
    out = tmp_path / "framed.stl"
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--height-mm", "60", "--border-mm", "5"]) == 0
    mesh = trimesh.load(out)
    size = mesh.bounds[1] - mesh.bounds[0]
    assert size[1] == pytest.approx(60.0, abs=1e-3)
    assert size[0] == pytest.approx(5 * 2 + (60 - 10) * 63 / 47, abs=1e-3)
    assert mesh.is_volume


def test_lithophane_is_thick_where_the_photo_is_dark(tmp_path):
    pixels = np.full((40, 60, 3), 235, np.uint8)
    pixels[10:30, 20:40] = 20  # dark square
    src = tmp_path / "dark_square.png"
    Image.fromarray(pixels).save(src)
    out = tmp_path / "litho.stl"
    result = convert(src, out, lithophane=True, width_mm=60)
    assert result.size_mm[2] == pytest.approx(3.0)
    mesh = trimesh.load(out)
    v = mesh.vertices
    top = v[v[:, 2] > 0]
    inside = (np.abs(top[:, 0]) < 8) & (np.abs(top[:, 1]) < 8)
    outside = (np.abs(top[:, 0]) > 14) | (np.abs(top[:, 1]) > 14)
    assert top[inside, 2].min() == pytest.approx(3.0, abs=1e-3)   # dark: full thickness
    assert top[outside, 2].max() == pytest.approx(0.8, abs=1e-3)  # bright: the minimum thickness
    assert mesh.is_watertight and mesh.volume > 0


@pytest.mark.parametrize("args, flag", [
    (["--width-mm", "0"], "--width-mm"),
    (["--width-mm", "-10"], "--width-mm"),
    (["--width-mm", "20000"], "--width-mm"),
    (["--height-mm", "0"], "--height-mm"),
    (["--width-mm", "100", "--height-mm", "50"], "--height-mm"),
    (["--relief-mm", "0"], "--relief-mm"),
    (["--width-mm", "40", "--relief-mm", "41"], "--relief-mm"),
    (["--base-mm", "0.1"], "--base-mm"),
    (["--base-mm", "-2"], "--base-mm"),
    (["--lithophane", "--base-mm", "0.2"], "--base-mm"),
    (["--border-mm", "60", "--width-mm", "100"], "--border-mm"),
    (["--cut-transparent"], "--cut-transparent"),
    (["--width", "150", "--units", "mm"], "--width"),
    (["--units", "cm"], "--units"),
    (["--relief", "0.2"], "--relief"),
    (["--lithophane", "--depth-map", "depth.png"], "--depth-map"),
])
def test_cli_rejects_bad_print_sizes_in_one_line_naming_the_flag(tmp_path, photo_jpeg, args, flag, capsys):
    out = tmp_path / "out" / "plaque.stl"
    out.parent.mkdir()
    rc = main(["convert", str(photo_jpeg), "-o", str(out), *args])
    err = capsys.readouterr().err
    assert rc == ExitStatus.OPTION
    assert err.startswith(f"gpurelief: error: {flag}:") and err.count("\n") == 1, err
    assert list(out.parent.iterdir()) == []


def test_cli_refuses_print_flags_for_gltf_and_keeps_gltf_unchanged(tmp_path, photo_jpeg, capsys, gltf_validator):
    rc = main(["convert", str(photo_jpeg), "-o", str(tmp_path / "a.glb"), "--width-mm", "100"])
    assert rc == ExitStatus.OPTION and "--width-mm" in capsys.readouterr().err
    out = tmp_path / "b.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(out)]) == 0
    gltf_validator(out)
    scene = trimesh.load(out)
    assert scene.bounds[1][0] - scene.bounds[0][0] == pytest.approx(1.0, abs=1e-5)  # glTF stays in metres
    assert not trimesh.load(out, force="mesh").is_watertight  # the open relief surface, no walls


def test_cli_refuses_an_oversized_stl_naming_the_flag(tmp_path, photo_jpeg, monkeypatch, capsys):
    monkeypatch.setattr(stl_module, "STL_MAX_BYTES", 10_000)
    out = tmp_path / "plaque.stl"
    rc = main(["convert", str(photo_jpeg), "-o", str(out), "--max-size", "full"])
    err = capsys.readouterr().err
    assert rc == ExitStatus.OUTPUT and "--allow-large-stl" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--max-size", "full", "--allow-large-stl"]) == 0
    assert out.stat().st_size > 10_000


def test_adaptive_stl_is_judged_by_its_real_triangle_count(tmp_path, monkeypatch, capsys):
    """The early refusal uses the full grid's count, which an adaptive top does not have: under a limit between
    the two, the grid STL is refused before any work and the adaptive one is written; an adaptive STL over the
    limit is refused once meshed (naming --max-error and --max-triangles), a --max-triangles budget over it
    before any work."""
    pytest.importorskip("numba")
    from gpurelief.mesh.solid import solid_triangle_bound

    src = tmp_path / "smooth.png"
    yy, xx = np.mgrid[0:120, 0:160]
    Image.fromarray((127 + 100 * np.sin(xx / 40.0) * np.cos(yy / 30.0)).astype(np.uint8)).save(src)
    limit = stl_module.stl_size(solid_triangle_bound((120, 160))) // 2
    monkeypatch.setattr(stl_module, "STL_MAX_BYTES", limit)
    grid_out, adaptive_out = tmp_path / "grid.stl", tmp_path / "adaptive.stl"
    calls = []
    import gpurelief.pipeline as pipeline

    real_heightfield = pipeline.compute_heightfield
    monkeypatch.setattr(pipeline, "compute_heightfield", lambda *a, **k: calls.append(1) or real_heightfield(*a, **k))
    assert main(["convert", str(src), "-o", str(grid_out)]) == ExitStatus.OUTPUT
    assert "--max-size" in capsys.readouterr().err and not grid_out.exists() and not calls  # before any work
    assert main(["convert", str(src), "-o", str(adaptive_out), "--mesh", "adaptive", "--max-error", "1%"]) == 0
    assert 0 < adaptive_out.stat().st_size < limit / 4
    assert trimesh.load(adaptive_out).is_watertight
    capsys.readouterr()
    grainy = tmp_path / "grainy.png"  # error 0 on a noisy relief: about the full grid, over the limit
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(grainy)
    exact = tmp_path / "exact.stl"
    assert main(["convert", str(grainy), "-o", str(exact), "--mesh", "adaptive", "--max-error", "0",
                 "--quality-pass", "off"]) == ExitStatus.OUTPUT
    err = capsys.readouterr().err
    assert "--max-error" in err and "--max-triangles" in err and err.count("\n") == 1 and not exact.exists()
    calls.clear()
    budget = tmp_path / "budget.stl"
    assert main(["convert", str(src), "-o", str(budget), "--mesh", "adaptive", "--max-triangles", "40000"]) \
        == ExitStatus.OUTPUT
    assert "--max-triangles" in capsys.readouterr().err and not budget.exists() and not calls


def test_adaptive_print_reports_its_measured_error_in_millimetres(tmp_path, photo_jpeg, capsys):
    """A print solid is in millimetres, and so is its --max-error: the measured max error is reported in mm
    (it was divided as if metres and labelled with --units: 0.001 mm printed as '0.001 m')."""
    pytest.importorskip("numba")
    result = convert(photo_jpeg, tmp_path / "a.stl", mesh="adaptive", max_error="0.05", relief_mm=5)
    assert result.error_units == "mm" and 0 < result.max_error <= 0.05 * (1 + 1e-5)
    pct = convert(photo_jpeg, tmp_path / "b.stl", mesh="adaptive", max_error="1%", relief_mm=5)
    assert 0.01 < pct.max_error <= 0.05 * (1 + 1e-5)  # 1% of 5 mm, a real share of it on a photo
    assert main(["convert", str(photo_jpeg), "-o", str(tmp_path / "c.stl"), "--mesh", "adaptive", "--max-error",
                 "0.05", "-v"]) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("max error"))
    assert line.split()[3] == "mm" and 0 < float(line.split()[2]) <= 0.05 * (1 + 1e-5)
    glb = convert(photo_jpeg, tmp_path / "d.glb", mesh="adaptive", max_error="0.5", units="cm", relief=0.1)
    assert glb.error_units == "cm" and 0 < glb.max_error <= 0.5 * (1 + 1e-5)


def test_format_flag_picks_a_print_format_for_an_unknown_suffix(tmp_path, photo_jpeg):
    out = tmp_path / "plaque.bin3d"
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--format", "stl"]) == 0
    assert trimesh.load(out, file_type="stl").is_volume


def test_ply_default_colours_come_from_the_photo(tmp_path):
    pixels = photo_like(30, 40)
    src = tmp_path / "p.png"
    Image.fromarray(pixels).save(src)
    out = tmp_path / "c.ply"
    convert(src, out, max_size=None)
    mesh = trimesh.load(out, process=False)
    colors = mesh.visual.vertex_colors[: 30 * 40, :3].reshape(30, 40, 3)
    assert np.array_equal(colors, pixels)  # one vertex per pixel: the top carries the photo exactly


@pytest.mark.parametrize("suffix", [".stl", ".3mf"])
def test_cli_refuses_compress_for_print_formats_in_one_line(tmp_path, photo_jpeg, suffix, capsys):
    out = tmp_path / "out" / f"plaque{suffix}"
    out.parent.mkdir()
    rc = main(["convert", str(photo_jpeg), "-o", str(out), "--compress", "meshopt"])
    err = capsys.readouterr().err
    assert rc == ExitStatus.OPTION
    assert err.startswith("gpurelief: error: --compress meshopt:") and suffix in err and err.count("\n") == 1, err
    assert list(out.parent.iterdir()) == []


def test_cli_preset_compression_does_not_block_a_print_format(tmp_path, photo_jpeg, capsys):
    """--preset web fills --compress meshopt for glTF; writing .stl with it is not an error (the STL is plain)."""
    out = tmp_path / "web.stl"
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--preset", "web"]) == ExitStatus.OK, capsys.readouterr().err
    assert trimesh.load(out).is_watertight
    assert main(["convert", str(photo_jpeg), "-o", str(tmp_path / "plain.stl"), "--compress", "none"]) == ExitStatus.OK


def test_batch_compress_applies_to_the_gltf_formats_and_is_refused_for_print_only(tmp_path, photo_jpeg, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(photo_jpeg.read_bytes())
    rc = main(["batch", str(src), "-o", str(tmp_path / "o1"), "--formats", "stl,3mf", "--compress", "quantize"])
    assert rc == ExitStatus.OPTION and "--compress quantize:" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() or not any((tmp_path / "o1").rglob("*.stl"))
    out = tmp_path / "o2"
    assert main(["batch", str(src), "-o", str(out), "--formats", "glb,stl", "--compress", "quantize"]) == ExitStatus.OK
    glb = next(out.rglob("*.glb"))
    assert b"KHR_mesh_quantization" in glb.read_bytes()[:4096]
    assert trimesh.load(next(out.rglob("*.stl"))).is_watertight
