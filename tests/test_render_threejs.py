"""Our glTF files in a real client: three.js (GLTFLoader) in headless Chromium, rendered by tools/render_gltf.mjs.

One photo with an asymmetric pattern (red block top-left, green top-right, blue bottom-right on a grey ramp) is
converted to every kind of file we write; one browser renders them all, looking down -Z with an orthographic
camera. The screenshots must show the photo the right way up (UV orientation, image up = +Y, EXIF applied),
compressed files must render like the float file, and three.js must see our vertex/triangle counts and extent.

Locally the module is skipped when Chromium or the npm packages are missing; CI sets GPURELIEF_REQUIRE_BROWSER=1,
so there a missing browser fails.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpurelief import convert
from gpurelief.backend import numpy_ops

ROOT = Path(__file__).resolve().parents[1]
RENDERER = ROOT / "tools" / "render_gltf.mjs"
PHOTO_HW = (96, 128)
RENDER_WH = (256, 192)
RELIEF = 0.15
# block -> (rows, cols) in the upright photo, as fractions of its height/width, and its colour
BLOCKS = {
    "red": ((0.06, 0.36), (0.04, 0.34), (255, 0, 0)),
    "green": ((0.06, 0.30), (0.74, 0.93), (0, 255, 0)),
    "blue": ((0.62, 0.93), (0.62, 0.95), (0, 0, 255)),
}
# name -> (source, convert options); "exif" is the same photo stored rotated with an EXIF orientation tag
VARIANTS = {
    "glb": ("upright", {"unlit": True}, ".glb"),
    "gltf": ("upright", {"unlit": True}, ".gltf"),
    "meshopt": ("upright", {"unlit": True, "compress": "meshopt"}, ".glb"),
    "quantize": ("upright", {"unlit": True, "compress": "quantize"}, ".glb"),
    "draco": ("upright", {"unlit": True, "compress": "draco"}, ".glb"),
    "web_webp": ("upright", {"unlit": True, "preset": "web", "texture_format": "webp"}, ".glb"),
    "exif": ("exif", {"unlit": True}, ".glb"),
    # lit: the normals matter, so a wrongly decoded normal stream shows up against the float render
    "lit": ("upright", {}, ".glb"),
    "lit_quantize": ("upright", {"compress": "quantize"}, ".glb"),
    "lit_meshopt": ("upright", {"compress": "meshopt"}, ".glb"),
}
UNLIT = [k for k, (_, o, _) in VARIANTS.items() if o.get("unlit")]


def chromium_and_node() -> tuple[str, str]:
    """-> (node, chromium) executables; skips (locally) or fails (GPURELIEF_REQUIRE_BROWSER=1) when one is missing."""
    chromium = os.environ.get("GPURELIEF_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    node = shutil.which("node")
    missing = []
    if not chromium:
        missing.append("Chromium (apt-get install --no-install-recommends chromium, or set GPURELIEF_CHROMIUM)")
    if not node:
        missing.append("node")
    for pkg in ("three", "playwright-core"):
        if not (ROOT / "node_modules" / pkg).is_dir():
            missing.append(f"npm package {pkg} (run `npm ci` in the repository root)")
    if missing:
        msg = "three.js render test needs " + "; ".join(missing) + " (.ci/install installs them)"
        if os.environ.get("GPURELIEF_REQUIRE_BROWSER"):
            pytest.fail(msg)
        pytest.skip(msg)
    return node, chromium


def pattern_photo(h: int, w: int) -> np.ndarray:
    """-> (h, w, 3) uint8: a vertical grey ramp (darker at the top) with the three BLOCKS painted on it."""
    img = np.repeat(np.linspace(60, 170, h, dtype=np.float32)[:, None], w, axis=1)
    img = np.repeat(img[..., None], 3, axis=2).astype(np.uint8)
    for (r0, r1), (c0, c1), colour in BLOCKS.values():
        img[round(r0 * h) : round(r1 * h), round(c0 * w) : round(c1 * w)] = colour
    return img


def dome_depth(h: int, w: int) -> np.ndarray:
    """-> (h, w) uint8 depth map spanning 0..255 exactly: an off-centre dome, so the lit renders have slopes."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.exp(-(((x - 0.35 * w) / (0.3 * w)) ** 2 + ((y - 0.6 * h) / (0.35 * h)) ** 2))
    return np.round(255 * (d - d.min()) / (d.max() - d.min())).astype(np.uint8)


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Convert the photo to every VARIANT, render all in one browser -> {name: (ConvertResult, report, pixels)}."""
    node, chromium = chromium_and_node()
    tmp = tmp_path_factory.mktemp("render")
    h, w = PHOTO_HW
    upright = pattern_photo(h, w)
    Image.fromarray(upright).save(tmp / "upright.jpg", quality=95)
    # EXIF orientation 6 = "rotate 90 degrees clockwise to display": store the upright photo turned counter-clockwise.
    # Our GLB keeps these stored (rotated) JPEG bytes and maps the UVs onto them; the browser must not rotate again.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(tmp / "exif.jpg", quality=95, exif=exif)
    Image.fromarray(dome_depth(h, w)).save(tmp / "depth.png")  # upright: it applies to the EXIF-oriented photo
    results, files = {}, []
    for name, (source, options, suffix) in VARIANTS.items():
        out = tmp / name / f"{name}{suffix}"
        out.parent.mkdir()
        results[name] = convert(
            tmp / f"{source}.jpg", out, depth_map=tmp / "depth.png", relief=RELIEF, device="cpu", **options
        )
        files.append(out)
    shot_dir = tmp / "shots"
    proc = subprocess.run(
        [node, str(RENDERER), "--out", str(shot_dir), "--size", "x".join(map(str, RENDER_WH)),
         "--chromium", chromium, *map(str, files)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and "summary" in lines[-1], f"render_gltf.mjs crashed (exit {proc.returncode}): {proc.stderr[-3000:]}"
    reports = lines[:-1]
    assert len(reports) == len(files)
    out = {}
    for name, report in zip(VARIANTS, reports):
        pixels = np.asarray(Image.open(report["png"]).convert("RGB")) if report.get("png") else None
        out[name] = (results[name], report, pixels)
    out["_summary"] = lines[-1]["summary"]
    out["_photo"] = upright
    return out


def relief_crop(report: dict, pixels: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Screenshot -> (the pixels inside the relief's projected XY extent, one pixel in from each edge; the box
    (left, top, right, bottom) in photo pixel coordinates that they show). The relief runs from the first
    pixel's centre to the last one's (UVs at sample centres), so screen x0..x1 is photo 0.5..W-0.5."""
    h, w = PHOTO_HW
    x0, y0, x1, y1 = report["screenRect"]
    cx0, cy0, cx1, cy1 = int(np.ceil(x0)) + 1, int(np.ceil(y0)) + 1, int(np.floor(x1)) - 1, int(np.floor(y1)) - 1
    to_col = lambda sx: 0.5 + (sx - x0) / (x1 - x0) * (w - 1)  # noqa: E731
    to_row = lambda sy: 0.5 + (sy - y0) / (y1 - y0) * (h - 1)  # noqa: E731
    return pixels[cy0:cy1, cx0:cx1], (to_col(cx0), to_row(cy0), to_col(cx1), to_row(cy1))


def test_threejs_loads_and_renders_every_variant_without_errors(renders):
    assert renders["_summary"]["webgl"]["version"].startswith("WebGL 2.0"), renders["_summary"]["webgl"]
    for name in VARIANTS:
        _, report, pixels = renders[name]
        assert report["ok"], f"{name}: {report.get('error')} {report.get('pageErrors')}"
        assert pixels.shape == (RENDER_WH[1], RENDER_WH[0], 3)
        assert report["meshCount"] == 1


@pytest.mark.parametrize("name", UNLIT)
def test_threejs_render_shows_photo_upright(renders, name):
    """Each colour block's centroid in the screenshot sits where it is in the upright photo (no flip, no transpose)."""
    _, report, pixels = renders[name]
    crop, (left, top, right, bottom) = relief_crop(report, pixels)
    crop = crop.astype(np.int16)
    ch, cw = crop.shape[:2]
    h, w = PHOTO_HW
    for colour, ((r0, r1), (c0, c1), rgb) in BLOCKS.items():
        mask = np.all(np.abs(crop - np.array(rgb)) < 60, axis=2)
        rows, cols = np.nonzero(mask)
        # centroid in photo pixels, against the painted block's centre (pattern_photo's rounding)
        got_row = top + (rows.mean() + 0.5) / ch * (bottom - top) if rows.size else np.nan
        got_col = left + (cols.mean() + 0.5) / cw * (right - left) if cols.size else np.nan
        want_row, want_col = (round(r0 * h) + round(r1 * h)) / 2, (round(c0 * w) + round(c1 * w)) / 2
        assert abs(got_row - want_row) < 0.75 and abs(got_col - want_col) < 0.75, (
            f"{name}: {colour} block centred at photo (row, col) ({got_row:.1f}, {got_col:.1f}), "
            f"expected ({want_row:.1f}, {want_col:.1f})"
        )
        screen_px_per_photo_px = (cw / (right - left)) * (ch / (bottom - top))
        area = (round(r1 * h) - round(r0 * h)) * (round(c1 * w) - round(c0 * w)) * screen_px_per_photo_px
        assert 0.85 * area < mask.sum() < 1.15 * area, (
            f"{name}: {colour} block covers {mask.sum()} px, expected ~{area:.0f}"
        )


@pytest.mark.parametrize("name", UNLIT)
def test_threejs_unlit_render_matches_photo(renders, name):
    """The relief, against the photo resampled onto the same screen pixels: texture colours reach the screen as is."""
    _, report, pixels = renders[name]
    crop, box = relief_crop(report, pixels)
    size = (crop.shape[1], crop.shape[0])
    photo = Image.fromarray(renders["_photo"]).resize(size, Image.Resampling.BILINEAR, box=box)
    diff = np.abs(crop.astype(np.float32) - np.asarray(photo, np.float32))
    # measured 2.8 (JPEG texture; three.js filters in linear light, PIL in sRGB), 3.7 with a WebP texture;
    # a half-texel UV shift gives 4.3, a flipped image 80
    assert diff.mean() < (4.5 if name == "web_webp" else 3.5), f"{name}: mean |render - photo| = {diff.mean():.2f}/255"


@pytest.mark.parametrize(
    "name, reference, max_mean",
    [
        ("gltf", "glb", 0.01),      # same mesh and texture bytes: identical pixels
        ("exif", "glb", 3.0),       # JPEG re-encoded after rotation
        ("quantize", "glb", 0.5),
        ("meshopt", "glb", 0.5),
        ("draco", "glb", 0.5),
        ("web_webp", "glb", 3.0),   # adaptive mesh + lossy WebP texture
        ("lit_quantize", "lit", 0.5),
        ("lit_meshopt", "lit", 0.5),
    ],
)
def test_threejs_compressed_render_matches_float_render(renders, name, reference, max_mean):
    a = renders[name][2].astype(np.float32)
    b = renders[reference][2].astype(np.float32)
    diff = np.abs(a - b)
    assert diff.mean() <= max_mean, (
        f"{name} vs {reference}: mean |diff| {diff.mean():.3f}/255, p99 {np.percentile(diff, 99)}"
    )


def test_threejs_lit_render_is_shaded_by_the_relief(renders):
    """Lit and unlit renders differ, and the lit one varies across the dome: the normals reach the shader."""
    lit = relief_crop(renders["lit"][1], renders["lit"][2])[0].astype(np.float32)
    unlit = relief_crop(renders["glb"][1], renders["glb"][2])[0].astype(np.float32)
    shading = lit.mean(axis=2) / np.maximum(unlit.mean(axis=2), 1.0)
    h, w = shading.shape
    # the dome peaks at (0.6 h, 0.35 w); the light comes from the upper left: its upper-left slope is brighter
    upper_left = shading[int(0.35 * h) : int(0.45 * h), int(0.12 * w) : int(0.22 * w)]
    lower_right = shading[int(0.75 * h) : int(0.85 * h), int(0.48 * w) : int(0.58 * w)]
    assert upper_left.mean() > lower_right.mean() * 1.1, (upper_left.mean(), lower_right.mean())


@pytest.mark.parametrize("name", list(VARIANTS))
def test_threejs_counts_and_extent_match_mesh(renders, name):
    result, report, _ = renders[name]
    assert report["vertexCount"] == result.vertex_count
    assert report["triangleCount"] == result.triangle_count
    width = 1.0  # convert's default --width
    dx, dy = numpy_ops.grid_spacing(result.grid_size, result.image_size, width)
    half_h = (result.grid_size[0] - 1) * dy / 2
    lo, hi = np.array(report["bbox"]["min"]), np.array(report["bbox"]["max"])
    options = VARIANTS[name][1]
    float_grid = "compress" not in options and "preset" not in options  # else quantized or adaptive geometry
    tol = 1e-6 if float_grid else 1e-3
    np.testing.assert_allclose(lo, [-width / 2, -half_h, 0.0], atol=tol, err_msg=f"{name}: bbox min")
    np.testing.assert_allclose(hi, [width / 2, half_h, RELIEF * width], atol=tol, err_msg=f"{name}: bbox max")
