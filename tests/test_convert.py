"""End to end: photo -> GLB / glTF, judged by the Khronos validator and read back with pygltflib."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

import gpurelief
from gpurelief.errors import OptionError, OutputError

from conftest import photo_like
from gltf_read import primitive_arrays


def test_convert_jpeg_to_glb_valid_and_texture_bytes_identical(tmp_path, photo_jpeg, gltf_validator):
    out = tmp_path / "photo.glb"
    result = gpurelief.convert(photo_jpeg, out)
    report = gltf_validator(out)
    assert report["info"]["totalVertexCount"] == 48 * 64
    assert report["info"]["totalTriangleCount"] == 2 * 47 * 63
    a = primitive_arrays(out)
    assert a["image"] == photo_jpeg.read_bytes()
    assert a["gltf"].images[0].mimeType == "image/jpeg"
    assert len(a["positions"]) == result.vertex_count == 48 * 64
    assert a["indices"].dtype == np.uint16 and a["indices"].max() == 48 * 64 - 1
    np.testing.assert_allclose(np.linalg.norm(a["normals"], axis=1), 1.0, atol=1e-5)
    # UV orientation: the vertex with the smallest v is at the top (+Y)
    top = np.argmin(a["uvs"][:, 1])
    assert a["positions"][top, 1] == a["positions"][:, 1].max()
    mat = a["gltf"].materials[0]
    assert mat.pbrMetallicRoughness.metallicFactor == 0.0 and mat.pbrMetallicRoughness.roughnessFactor >= 0.8


def test_glb_layout_is_aligned_and_length_matches(tmp_path, photo_jpeg):
    out = tmp_path / "a.glb"
    gpurelief.convert(photo_jpeg, out)
    data = out.read_bytes()
    magic, version, length = struct.unpack("<III", data[:12])
    assert magic == 0x46546C67 and version == 2 and length == len(data)
    json_len, json_type = struct.unpack("<II", data[12:20])
    assert json_len % 4 == 0 and json_type == 0x4E4F534A
    bin_len, bin_type = struct.unpack("<II", data[20 + json_len : 28 + json_len])
    assert bin_type == 0x004E4942 and bin_len % 4 == 0 and 28 + json_len + bin_len == len(data)


def test_convert_gltf_writes_three_files_that_validate(tmp_path, photo_jpeg, gltf_validator):
    out = tmp_path / "scene.gltf"
    result = gpurelief.convert(photo_jpeg, out)
    assert [p.name for p in result.outputs] == ["scene.gltf", "scene.bin", "scene_texture.jpg"]
    gltf_validator(out)
    a = primitive_arrays(out)
    assert a["image"] == photo_jpeg.read_bytes()
    assert len(a["positions"]) == 48 * 64


def test_gltf_never_overwrites_its_input(tmp_path):
    src = tmp_path / "scene_texture.jpg"
    Image.fromarray(photo_like(10, 12)).save(src)
    before = src.read_bytes()
    with pytest.raises(OptionError, match="overwrite the input"):
        gpurelief.convert(src, tmp_path / "scene.gltf")
    assert src.read_bytes() == before


def test_convert_png_with_alpha_uses_png_texture_and_mask(tmp_path, gltf_validator):
    rgba = np.dstack([photo_like(20, 30), np.full((20, 30), 255, np.uint8)])
    rgba[:, :10, 3] = 0
    src = tmp_path / "cut.png"
    Image.fromarray(rgba).save(src)
    out = tmp_path / "cut.glb"
    gpurelief.convert(src, out)
    gltf_validator(out)
    a = primitive_arrays(out)
    mat = a["gltf"].materials[0]
    assert a["gltf"].images[0].mimeType == "image/png" and mat.alphaMode == "MASK" and mat.alphaCutoff == 0.5
    decoded = np.asarray(Image.open(io.BytesIO(a["image"])))
    assert decoded.shape == (20, 30, 4) and (decoded[:, :10, 3] == 0).all()
    # alpha is never used for depth: the same RGB without alpha gives the same heights
    Image.fromarray(rgba[..., :3]).save(tmp_path / "opaque.png")
    gpurelief.convert(tmp_path / "opaque.png", tmp_path / "opaque.glb")
    np.testing.assert_array_equal(primitive_arrays(tmp_path / "opaque.glb")["positions"], a["positions"])
    # --cut-transparent drops the fully transparent cells
    gpurelief.convert(src, tmp_path / "cut2.glb", cut_transparent=True, alpha_mode="blend")
    gltf_validator(tmp_path / "cut2.glb")
    b = primitive_arrays(tmp_path / "cut2.glb")
    assert b["gltf"].materials[0].alphaMode == "BLEND"
    assert len(b["indices"]) // 3 == 2 * 19 * 20  # columns 0..9 cut, cell 9 keeps (touches column 10)
    assert b["uvs"][:, 0].min() > 9 / 30


def test_convert_options_unlit_double_sided_relief_width_units(tmp_path, photo_jpeg, gltf_validator):
    out = tmp_path / "u.glb"
    gpurelief.convert(photo_jpeg, out, unlit=True, double_sided=True, relief=0.25, width=40, units="cm")
    gltf_validator(out)
    a = primitive_arrays(out)
    g = a["gltf"]
    assert "KHR_materials_unlit" in g.extensionsUsed and g.materials[0].doubleSided
    x, z = a["positions"][:, 0], a["positions"][:, 2]
    assert np.isclose(x.max() - x.min(), 0.40, rtol=1e-6)
    assert np.isclose(z.max() - z.min(), 0.25 * 0.40, rtol=1e-5)


def test_convert_max_size_limits_grid_and_full_keeps_every_pixel(tmp_path, gltf_validator):
    src = tmp_path / "wide.png"
    Image.fromarray(photo_like(90, 300)).save(src)
    r = gpurelief.convert(src, tmp_path / "small.glb", max_size=100)
    assert r.grid_size == (30, 100)
    r = gpurelief.convert(src, tmp_path / "full.glb", max_size=None)
    assert r.grid_size == (90, 300) and r.vertex_count == 27000
    gltf_validator(tmp_path / "full.glb")
    # the CLI's spellings work from Python too (a TypeError before)
    assert gpurelief.convert(src, tmp_path / "f2.glb", max_size="full").grid_size == (90, 300)
    assert gpurelief.convert(src, tmp_path / "s2.glb", max_size="100").grid_size == (30, 100)
    with pytest.raises(OptionError, match="max-size.*'huge'"):
        gpurelief.convert(src, tmp_path / "x.glb", max_size="huge")
    assert not (tmp_path / "x.glb").exists()


def test_convert_uint32_indices_above_65535_vertices(tmp_path, gltf_validator):
    src = tmp_path / "big.png"
    Image.fromarray(photo_like(257, 256)).save(src)
    out = tmp_path / "big.glb"
    gpurelief.convert(src, out)
    gltf_validator(out)
    a = primitive_arrays(out)
    assert a["indices"].dtype == np.uint32 and a["indices"].max() == 257 * 256 - 1


def test_convert_depth_map_heights_follow_the_given_map(tmp_path, photo_jpeg, gltf_validator):
    dm = np.zeros((48, 64), np.uint16)
    dm[:, 32:] = 60000  # right half raised
    Image.fromarray(dm).save(tmp_path / "h.png")
    out = tmp_path / "d.glb"
    gpurelief.convert(photo_jpeg, out, depth_map=tmp_path / "h.png", relief=0.1)
    gltf_validator(out)
    p = primitive_arrays(out)["positions"].reshape(48, 64, 3)
    assert np.allclose(p[:, :32, 2], 0.0) and np.allclose(p[:, 32:, 2], 0.1, rtol=1e-6)
    np.save(tmp_path / "h.npy", dm.astype(np.float32)[::2, ::2])  # other size: resampled onto the grid
    gpurelief.convert(photo_jpeg, tmp_path / "e.glb", depth_map=tmp_path / "h.npy", invert=True)
    q = primitive_arrays(tmp_path / "e.glb")["positions"].reshape(48, 64, 3)
    assert q[:, :30, 2].min() > q[:, 34:, 2].max()


def test_convert_float_tiff_depth_map(tmp_path, photo_jpeg):
    elev = np.linspace(100.0, 2500.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    Image.fromarray(elev, mode="F").save(tmp_path / "dem.tif")
    out = tmp_path / "t.glb"
    gpurelief.convert(photo_jpeg, out, depth_map=tmp_path / "dem.tif")
    z = primitive_arrays(out)["positions"][:, 2]
    assert np.isclose(z[0], 0.0) and np.isclose(z[-1], 0.1, rtol=1e-5) and np.all(np.diff(z) >= 0)


@pytest.mark.parametrize("mesh", ["grid", "adaptive"])
def test_a_depth_map_spanning_past_float32_max_gives_a_finite_relief(tmp_path, photo_jpeg, gltf_validator, mesh):
    """-3e38 .. 3e38: the range overflows float32, which made every height NaN (grid: a GLB of NaN positions;
    adaptive: an internal error). Heights follow the map like any other."""
    if mesh == "adaptive":
        pytest.importorskip("numba")
    ramp = np.linspace(-3.3e38, 3.3e38, 48 * 64, dtype=np.float32).reshape(48, 64)
    np.save(tmp_path / "wide.npy", ramp)
    out = tmp_path / "w.glb"
    kw = {"max_error": "0.1%"} if mesh == "adaptive" else {}
    gpurelief.convert(photo_jpeg, out, depth_map=tmp_path / "wide.npy", relief=0.1, mesh=mesh, **kw)
    gltf_validator(out)
    p = primitive_arrays(out)["positions"]
    assert np.isfinite(p).all()
    assert np.isclose(p[:, 2].min(), 0.0, atol=1e-7) and np.isclose(p[:, 2].max(), 0.1, rtol=1e-6)
    if mesh == "grid":
        assert np.all(np.diff(p[:, 2]) >= 0)


def _dem_with_hole(value):
    """A 48 x 64 ramp from 100 to 2500 m with a 6 x 8 block of `value` (an exporter's no-data) in a corner."""
    elev = np.linspace(100.0, 2500.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    elev[:6, :8] = value
    return elev


def test_nodata_from_the_flag_or_the_geotiff_tag_keeps_the_relief(tmp_path, photo_jpeg, capsys):
    """A no-data value left in a DEM as a height squashes the real terrain into a sliver at the top of the relief.
    --nodata (any format) or a GeoTIFF's GDAL_NODATA tag (42113) turns it into no data; a map whose minimum looks
    like one gets a note naming the flag."""
    from PIL import TiffImagePlugin

    from gpurelief.cli import main

    elev = _dem_with_hole(-32768.0)
    Image.fromarray(elev, mode="F").save(tmp_path / "plain.tif")
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[42113] = "-32768"
    tags.tagtype[42113] = 2  # ASCII, as GDAL writes it
    Image.fromarray(elev, mode="F").save(tmp_path / "tagged.tif", tiffinfo=tags)
    np.save(tmp_path / "hole.npy", _dem_with_hole(-9999.0))

    def terrain_z(out):  # heights of the ramp outside the hole's corner
        z = primitive_arrays(out)["positions"][:, 2].reshape(48, 64)
        return z[10:, 10:]

    squashed = gpurelief.convert(photo_jpeg, tmp_path / "s.glb", depth_map=tmp_path / "plain.tif")
    assert np.ptp(terrain_z(tmp_path / "s.glb")) < 0.1 * 0.1  # under 10% of the relief: the failure mode
    assert any("--nodata -32768" in n for n in squashed.notes)
    for name, kw in [("flag.glb", dict(depth_map=tmp_path / "plain.tif", nodata=-32768.0)),
                     ("tag.glb", dict(depth_map=tmp_path / "tagged.tif")),
                     ("npy.glb", dict(depth_map=tmp_path / "hole.npy", nodata=-9999))]:
        result = gpurelief.convert(photo_jpeg, tmp_path / name, **kw)
        assert np.ptp(terrain_z(tmp_path / name)) > 0.6 * 0.1, name  # the ramp spans the relief again
        assert not result.notes
    # the CLI flag, its note, and the flag without a map
    assert main(["convert", str(photo_jpeg), "-o", str(tmp_path / "c.glb"), "--depth-map", str(tmp_path / "hole.npy")]) == 0
    assert "pass --nodata -9999" in capsys.readouterr().err
    assert main(["convert", str(photo_jpeg), "-o", str(tmp_path / "d.glb"), "--depth-map", str(tmp_path / "hole.npy"),
                 "--nodata", "-9999"]) == 0
    assert "--nodata" not in capsys.readouterr().err
    assert np.ptp(terrain_z(tmp_path / "d.glb")) > 0.6 * 0.1
    with pytest.raises(OptionError, match="--nodata applies to --depth-map"):
        gpurelief.convert(photo_jpeg, tmp_path / "e.glb", nodata=-9999)


def test_an_elevation_image_given_as_the_photo_gets_a_note(tmp_path, photo_jpeg):
    """A float or 16-bit single-channel input is most likely a DEM given as the photo: the note names
    --depth-map; with it (the same file) there is no note, and neither for an ordinary photo."""
    elev = np.linspace(100.0, 2500.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    Image.fromarray(elev, mode="F").save(tmp_path / "dem.tif")
    Image.fromarray((elev * 20).astype(np.uint16)).save(tmp_path / "dem16.png")
    for name in ("dem.tif", "dem16.png"):
        notes = gpurelief.convert(tmp_path / name, tmp_path / "a.glb").notes
        assert any(f"--depth-map {tmp_path / name}" in n for n in notes), name
        assert not gpurelief.convert(tmp_path / name, tmp_path / "b.glb", depth_map=tmp_path / name).notes
    assert not gpurelief.convert(photo_jpeg, tmp_path / "c.glb").notes


def test_a_real_low_value_is_not_taken_for_no_data(tmp_path, photo_jpeg):
    """-9999 inside a continuous range (a deep trench, not a hole) gets no note."""
    elev = np.linspace(-9999.0, -9000.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    np.save(tmp_path / "trench.npy", elev)
    assert not gpurelief.convert(photo_jpeg, tmp_path / "t.glb", depth_map=tmp_path / "trench.npy").notes


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_jpeg_keeps_pixels_and_maps_uvs_onto_them(tmp_path, orientation, gltf_validator):
    raw = photo_like(24, 40)
    raw[:4, :6] = [255, 0, 0]  # a red marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    src = tmp_path / "rot.jpg"
    Image.fromarray(raw).save(src, quality=95, exif=exif)
    out = tmp_path / "rot.glb"
    gpurelief.convert(src, out)
    gltf_validator(out)
    a = primitive_arrays(out)
    stored = Image.open(io.BytesIO(a["image"]))
    assert stored.getexif().get(0x0112) == 1  # tag neutralised, pixels untouched
    assert len(a["image"]) == src.stat().st_size
    assert np.array_equal(np.asarray(stored), np.asarray(Image.open(src)))
    displayed = np.asarray(gpurelief.load_image(src).pixels)
    gh, gw = displayed.shape[:2]
    tex = np.asarray(stored)
    # sample the stored texture at every vertex's UV: it must equal the displayed photo at that vertex
    u = np.clip((a["uvs"][:, 0] * tex.shape[1]).astype(int), 0, tex.shape[1] - 1)
    v = np.clip((a["uvs"][:, 1] * tex.shape[0]).astype(int), 0, tex.shape[0] - 1)
    np.testing.assert_array_equal(tex[v, u].reshape(gh, gw, 3), displayed)


def test_texture_options_reencode_and_downscale(tmp_path, photo_jpeg, gltf_validator):
    out = tmp_path / "t.glb"
    gpurelief.convert(photo_jpeg, out, texture_format="png", texture_max=32)
    gltf_validator(out)
    a = primitive_arrays(out)
    img = Image.open(io.BytesIO(a["image"]))
    assert img.format == "PNG" and max(img.size) == 32
    bmp = tmp_path / "p.bmp"
    Image.fromarray(photo_like(16, 16)).save(bmp)
    gpurelief.convert(bmp, tmp_path / "b.glb")
    assert primitive_arrays(tmp_path / "b.glb")["gltf"].images[0].mimeType == "image/jpeg"


def test_failed_write_leaves_no_partial_file(tmp_path, photo_jpeg, monkeypatch):
    def boom(f, doc, **kwargs):
        f.write(b"x" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gpurelief.writers.glb.write_pieces", boom)
    with pytest.raises(OutputError, match="disk is full"):
        gpurelief.convert(photo_jpeg, tmp_path / "x.glb")
    assert list(tmp_path.iterdir()) == [photo_jpeg]


def test_depth_command_writes_16bit_png_and_npy(tmp_path, photo_jpeg):
    gpurelief.depth(photo_jpeg, tmp_path / "d.png")
    d = np.asarray(Image.open(tmp_path / "d.png"))
    assert d.dtype == np.uint16 and d.shape == (48, 64) and d.max() == 65535 and d.min() == 0
    gpurelief.depth(photo_jpeg, tmp_path / "d.npy")
    f = np.load(tmp_path / "d.npy")
    assert f.dtype == np.float32 and f.shape == (48, 64)
    np.testing.assert_allclose(f, d / 65535.0, atol=1e-4)


def test_estimated_depth_is_deterministic_and_ground_below_is_nearer(tmp_path):
    img = photo_like(120, 160)
    d1 = gpurelief.estimate_depth(img).values
    d2 = gpurelief.estimate_depth(img.copy()).values
    np.testing.assert_array_equal(d1, d2)
    assert d1.shape == (120, 160) and d1.dtype == np.float32
    assert d1[-10:].mean() > d1[:10].mean()


def test_glb_loads_in_trimesh_as_an_independent_reader(tmp_path, photo_jpeg):
    trimesh = pytest.importorskip("trimesh")
    out = tmp_path / "t.glb"
    gpurelief.convert(photo_jpeg, out)
    scene = trimesh.load(out, process=False)
    geom = next(iter(scene.geometry.values()))
    assert len(geom.vertices) == 48 * 64 and len(geom.faces) == 2 * 47 * 63
    tex = geom.visual.material.baseColorTexture
    assert tex.size == (64, 48)
