"""--compress quantize|meshopt (and draco when DracoPy is installed), --texture-format webp, --preset:
every file passes the Khronos validator, and compressed geometry decodes back to the source mesh."""
from __future__ import annotations

import numpy as np
import pytest
from pygltflib import GLTF2

from gpurelief.cli import main
from gpurelief.errors import ExitStatus
from gpurelief.mesh.grid import grid_mesh
from gpurelief.texture import make_texture  # noqa: F401  (the core path that encodes WebP)
from gpurelief.types import Heightfield, Texture
from gpurelief.writers.glb import write_glb
from gpurelief.writers.gltf import write_gltf

from heightmaps import fractal

COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def _mesh(h=61, w=90, relief_frac=0.05):
    hf = Heightfield(fractal(h, w, seed=7), image_size=(h, w))
    return grid_mesh(hf, width=1.0, relief_frac=relief_frac)


def _texture():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(buf, "JPEG")
    return Texture(buf.getvalue(), "image/jpeg", 16, 16)


def read_attribute(gltf: GLTF2, blobs: dict, accessor_index: int) -> np.ndarray:
    """Accessor -> (count, width) array as stored, decoding EXT_meshopt_compression with the meshopt package."""
    acc = gltf.accessors[accessor_index]
    bv = gltf.bufferViews[acc.bufferView]
    dtype = np.dtype(COMPONENT[acc.componentType])
    width = WIDTH[acc.type]
    ext = (bv.extensions or {}).get("EXT_meshopt_compression")
    if ext:
        import meshopt

        src = blobs[ext["buffer"]][ext.get("byteOffset", 0) : ext.get("byteOffset", 0) + ext["byteLength"]]
        raw = meshopt.decode_gltf_buffer(bytes(src), ext["count"], ext["byteStride"], ext["mode"], ext.get("filter"))
        raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
        stride = ext["byteStride"]
    else:
        start = (bv.byteOffset or 0) + (acc.byteOffset or 0)
        raw = np.frombuffer(blobs[bv.buffer], np.uint8)[start:]
        stride = bv.byteStride or dtype.itemsize * width
    rows = np.lib.stride_tricks.as_strided(
        raw, shape=(acc.count, width * dtype.itemsize), strides=(stride, 1), writeable=False
    )
    return np.ascontiguousarray(rows).view(dtype).reshape(acc.count, width)


def decode_glb(path) -> dict:
    """GLB -> float positions (after the node transform), unit normals (inverse-transpose), uvs, indices."""
    gltf = GLTF2().load_binary(str(path))
    blobs = {0: gltf.binary_blob()}
    prim = gltf.meshes[0].primitives[0]
    out = {}
    for name, idx in (("positions", prim.attributes.POSITION), ("normals", prim.attributes.NORMAL),
                      ("uvs", prim.attributes.TEXCOORD_0)):
        acc = gltf.accessors[idx]
        a = read_attribute(gltf, blobs, idx).astype(np.float64)
        if acc.normalized:
            a = np.maximum(a / np.iinfo(COMPONENT[acc.componentType]).max, -1.0)
        out[name] = a
    out["indices"] = read_attribute(gltf, blobs, prim.indices).reshape(-1)
    node = gltf.nodes[0]
    s = np.array(node.scale or [1, 1, 1], np.float64)
    t = np.array(node.translation or [0, 0, 0], np.float64)
    out["positions"] = out["positions"] * s + t
    n = out["normals"] / s  # inverse-transpose of a diagonal scale
    out["normals"] = n / np.linalg.norm(n, axis=1, keepdims=True)
    out["gltf"] = gltf
    return out


@pytest.mark.parametrize("compress", ["quantize", "meshopt"])
def test_compressed_glb_is_valid_and_decodes_to_the_source_mesh(compress, tmp_path, gltf_validator):
    mesh = _mesh()
    path = tmp_path / f"{compress}.glb"
    size = write_glb(path, mesh, _texture(), compress=compress)
    report = gltf_validator(path, allow_warnings=False)
    infos = {m["code"] for m in report["issues"]["messages"]}
    assert infos <= {"UNSUPPORTED_EXTENSION"}  # the validator cannot look inside meshopt streams
    d = decode_glb(path)
    ext = set(d["gltf"].extensionsRequired)
    assert "KHR_mesh_quantization" in ext and (("EXT_meshopt_compression" in ext) == (compress == "meshopt"))
    extent = mesh.positions.max(axis=0) - mesh.positions.min(axis=0)
    step = extent / 65534  # one int16 step per axis
    assert np.all(np.abs(d["positions"] - mesh.positions) <= step * 0.5 + 1e-7)
    # normals: int8 xyz (quantize) or 8-bit octahedral (meshopt filter), with the non-uniform-scale correction
    # (gotcha 2) -> within 1.5 / 3 degrees of the source; without the correction it is off by far more (below)
    cos = (d["normals"] * mesh.normals).sum(axis=1)
    assert cos.min() > np.cos(np.radians(1.5 if compress == "quantize" else 3.0))
    assert np.median(np.degrees(np.arccos(np.clip(cos, -1, 1)))) < 0.5
    assert np.abs(d["uvs"] - mesh.uvs).max() <= 0.5 / 65535 + 1e-7
    assert np.array_equal(d["indices"], mesh.indices)
    assert size == path.stat().st_size < write_glb(tmp_path / "plain.glb", mesh, _texture())


def test_quantized_normals_without_the_scale_correction_would_be_wrong():
    """Guard for the test above: storing n itself (not normalize(S n)) is visibly off on a thin relief."""
    from gpurelief.backend import numpy_ops as ops

    mesh = _mesh(relief_frac=0.02)
    _, half = ops.quantization_transform(mesh.positions)
    n = mesh.normals / half
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    assert (n * mesh.normals).sum(axis=1).min() < np.cos(np.radians(5))


def test_meshopt_gltf_with_external_bin_is_valid_and_decodes(tmp_path, gltf_validator):
    mesh = _mesh()
    paths = write_gltf(tmp_path / "m.gltf", mesh, _texture(), compress="meshopt")
    gltf_validator(paths[0])
    gltf = GLTF2().load(str(paths[0]))
    blobs = {0: (tmp_path / "m.bin").read_bytes()}
    pos = read_attribute(gltf, blobs, gltf.meshes[0].primitives[0].attributes.POSITION)
    assert pos.dtype == np.int16 and pos.shape == (mesh.vertex_count, 3)
    assert np.array_equal(read_attribute(gltf, blobs, gltf.meshes[0].primitives[0].indices).reshape(-1), mesh.indices)


def test_meshopt_needs_the_extra_when_the_package_is_missing(tmp_path, monkeypatch):
    import sys

    from gpurelief.errors import DependencyError

    monkeypatch.setitem(sys.modules, "meshopt", None)  # makes `import meshopt` raise ImportError
    with pytest.raises(DependencyError, match=r"gpurelief\[compress\]"):
        write_glb(tmp_path / "x.glb", _mesh(), None, compress="meshopt")
    assert not (tmp_path / "x.glb").exists()


def test_cli_webp_texture_uses_ext_texture_webp_and_validates(photo_jpeg, tmp_path, gltf_validator):
    out = tmp_path / "w.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--texture-format", "webp", "--texture-quality", "70"]) == 0
    gltf_validator(out)
    gltf = GLTF2().load_binary(str(out))
    assert gltf.images[0].mimeType == "image/webp"
    assert gltf.textures[0].source is None
    assert gltf.textures[0].extensions["EXT_texture_webp"]["source"] == 0
    assert "EXT_texture_webp" in gltf.extensionsRequired
    view = gltf.bufferViews[gltf.images[0].bufferView]
    blob = gltf.binary_blob()[view.byteOffset : view.byteOffset + view.byteLength]
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WEBP"


def test_cli_webp_quality_changes_the_size(photo_jpeg, tmp_path):
    sizes = []
    for q in ("30", "95"):
        out = tmp_path / f"w{q}.glb"
        assert main(["convert", str(photo_jpeg), "-o", str(out), "--texture-format", "webp", "--texture-quality", q]) == 0
        sizes.append(out.stat().st_size)
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize("compress", ["quantize", "meshopt"])
def test_cli_compress_with_adaptive_mesh_validates(photo_jpeg, tmp_path, gltf_validator, compress):
    out = tmp_path / "c.glb"
    argv = ["convert", str(photo_jpeg), "-o", str(out), "--mesh", "adaptive", "--max-error", "0.5%", "--compress", compress]
    assert main(argv) == 0
    gltf_validator(out)
    d = decode_glb(out)
    assert d["indices"].max() < len(d["positions"])


def test_cli_preset_ar_limits_triangles_and_texture(tmp_path, gltf_validator):
    from PIL import Image

    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from conftest import photo_like

    src = tmp_path / "big.png"
    Image.fromarray(photo_like(700, 2600)).save(src)
    out = tmp_path / "ar.glb"
    assert main(["convert", str(src), "-o", str(out), "--preset", "ar"]) == 0
    gltf_validator(out)
    gltf = GLTF2().load_binary(str(out))
    prim = gltf.meshes[0].primitives[0]
    assert gltf.accessors[prim.indices].count // 3 <= 100_000
    assert gltf.images[0].mimeType == "image/jpeg"
    view = gltf.bufferViews[gltf.images[0].bufferView]
    import io

    img = Image.open(io.BytesIO(gltf.binary_blob()[view.byteOffset : view.byteOffset + view.byteLength]))
    assert max(img.size) <= 2048
    assert [k for k in vars(prim.attributes) if k.startswith("TEXCOORD") and getattr(prim.attributes, k) is not None] == ["TEXCOORD_0"]


@pytest.mark.parametrize("quality", [90, 97])
def test_jpeg_texture_of_a_grainy_photo_encodes(tmp_path, quality):
    """Pillow sizes its buffer for optimized JPEG at 1 byte per pixel (2 at quality >= 95); film grain at 4:4:4
    needs more, which used to fail the conversion with 'broken data stream'."""
    import io

    from PIL import Image

    from gpurelief.decode import load_image

    pixels = np.random.default_rng(5).integers(0, 256, size=(300, 451, 3), dtype=np.uint8)
    src = tmp_path / "grain.png"
    Image.fromarray(pixels).save(src)
    texture, orientation = make_texture(load_image(src), texture_format="jpeg", quality=quality)
    assert texture.mime == "image/jpeg" and orientation == 1
    assert len(texture.data) > 300 * 451 * (2 if quality >= 95 else 1)  # past Pillow's guess: the fallback ran
    back = np.asarray(Image.open(io.BytesIO(texture.data)).convert("RGB"), dtype=np.int16)
    assert back.shape == pixels.shape
    assert np.abs(back - pixels).mean() < 12  # the same picture (noise is JPEG's worst case)


def test_cli_preset_ar_on_a_grainy_photo(tmp_path, gltf_validator):
    from PIL import Image

    src = tmp_path / "grain.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 256, size=(300, 451, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "ar.glb"
    assert main(["convert", str(src), "-o", str(out), "--preset", "ar"]) == 0
    gltf_validator(out)
    assert GLTF2().load_binary(str(out)).images[0].mimeType == "image/jpeg"


def test_cmyk_jpeg_photo_gets_an_rgb_texture_the_validator_accepts(tmp_path, gltf_validator):
    """A CMYK JPEG (print workflows) decodes fine, but its bytes are not a glTF texture (the validator: 'Invalid
    number of JPEG color channels'; browsers cannot show it): auto re-encodes it as an RGB JPEG."""
    import io

    from PIL import Image

    from conftest import photo_like

    rgb = photo_like(60, 80)
    src = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(src, quality=95)
    out = tmp_path / "cmyk.glb"
    assert main(["convert", str(src), "-o", str(out)]) == 0
    gltf_validator(out)
    gltf = GLTF2().load_binary(str(out))
    view = gltf.bufferViews[gltf.images[0].bufferView]
    img = Image.open(io.BytesIO(gltf.binary_blob()[view.byteOffset : view.byteOffset + view.byteLength]))
    assert img.format == "JPEG" and img.mode == "RGB"
    assert np.abs(np.asarray(img, dtype=np.int16) - rgb).mean() < 8


def test_cli_preset_web_uses_meshopt_and_explicit_options_win(photo_jpeg, tmp_path, gltf_validator):
    out = tmp_path / "web.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--preset", "web"]) == 0
    gltf_validator(out)
    assert "EXT_meshopt_compression" in GLTF2().load_binary(str(out)).extensionsRequired
    out2 = tmp_path / "web2.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(out2), "--preset", "web", "--compress", "quantize"]) == 0
    assert "EXT_meshopt_compression" not in (GLTF2().load_binary(str(out2)).extensionsUsed or [])
    out3 = tmp_path / "web3.glb"  # an explicit value equal to the default still wins over the preset
    assert main(["convert", str(photo_jpeg), "-o", str(out3), "--preset", "web", "--compress", "none", "--mesh", "grid"]) == 0
    plain = GLTF2().load_binary(str(out3))
    assert not plain.extensionsUsed
    assert plain.accessors[plain.meshes[0].primitives[0].indices].count == 6 * 47 * 63


def test_cli_bad_preset_is_a_usage_error(photo_jpeg, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(photo_jpeg), "-o", str(tmp_path / "x.glb"), "--preset", "phone"])
    assert exc.value.code == ExitStatus.USAGE


def test_draco_round_trip_when_dracopy_is_installed(tmp_path, gltf_validator):
    DracoPy = pytest.importorskip("DracoPy", reason="Draco is an optional extra: pip install 'gpurelief[draco]'")
    mesh = _mesh()
    path = tmp_path / "d.glb"
    write_glb(path, mesh, _texture(), compress="draco")
    gltf_validator(path)
    gltf = GLTF2().load_binary(str(path))
    prim = gltf.meshes[0].primitives[0]
    ext = prim.extensions["KHR_draco_mesh_compression"]
    view = gltf.bufferViews[ext["bufferView"]]
    blob = gltf.binary_blob()[view.byteOffset : view.byteOffset + view.byteLength]
    decoded = DracoPy.decode(blob)
    assert len(decoded.faces) == mesh.triangle_count
    pts = np.asarray(decoded.points)
    extent = mesh.positions.max(axis=0) - mesh.positions.min(axis=0)
    # edgebreaker reorders vertices: compare the point sets (sorted rows) within the quantization step
    a = np.sort(np.round(pts / extent * 1000), axis=0)
    b = np.sort(np.round(mesh.positions / extent * 1000), axis=0)
    assert np.abs(a - b).max() <= 1


def test_presets_fill_only_options_left_at_defaults_in_the_api():
    from gpurelief.pipeline import ConvertOptions, _options

    archive = _options(ConvertOptions(preset="archive"), {})
    assert (archive.max_size, archive.mesh, archive.compress, archive.texture_max) == (None, "grid", "none", None)
    printing = _options(None, {"preset": "print", "max_size": 512})
    assert (printing.max_size, printing.mesh, printing.max_error, printing.max_triangles) == (
        512, "adaptive", "0.02%", 2_000_000)
    with pytest.raises(Exception, match="--preset"):
        _options(None, {"preset": "phone"})
