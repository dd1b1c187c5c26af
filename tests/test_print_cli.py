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
