"""decode.load_image: every input format and mode becomes (H, W, 3|4) uint8, EXIF-oriented."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gpurelief.decode import load_image
from gpurelief.errors import ImageTooLargeError, ImageTooSmallError, InputError, InputMissingError, OptionError

from conftest import photo_like


def _save(tmp_path, name, img, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("WEBP", ".webp")])
def test_decode_lossless_formats_keep_pixels(tmp_path, fmt, suffix):
    rgb = photo_like(20, 30)
    kw = {"lossless": True} if fmt == "WEBP" else {}
    img = load_image(_save(tmp_path, "a" + suffix, Image.fromarray(rgb), format=fmt, **kw))
    assert img.pixels.shape == (20, 30, 3) and img.pixels.dtype == np.uint8
    np.testing.assert_array_equal(img.pixels, rgb)
    assert img.source_format == fmt


def test_decode_jpeg_keeps_source_bytes(photo_jpeg):
    img = load_image(photo_jpeg)
    assert img.source_format == "JPEG" and img.source_bytes == photo_jpeg.read_bytes()
    assert img.pixels.shape == (48, 64, 3)


def test_decode_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 40 * 10).reshape(10, 40).astype(np.uint16)
    path = _save(tmp_path, "g16.png", Image.fromarray(ramp))
    img = load_image(path)
    assert img.pixels.shape == (10, 40, 3)
    np.testing.assert_array_equal(img.pixels[..., 0], np.round(ramp / 257.0).astype(np.uint8))
    assert img.pixels.max() == 255 and img.pixels.min() == 0


def test_decode_palette_png_with_transparency_gets_alpha(tmp_path):
    p = Image.new("P", (8, 6))
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    px = np.zeros((6, 8), np.uint8)
    px[:, 4:] = 1
    p = Image.fromarray(px, mode="P")
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.info["transparency"] = 0
    path = tmp_path / "pal.png"
    p.save(path, transparency=0)
    img = load_image(path)
    assert img.has_alpha
    assert (img.alpha[:, :4] == 0).all() and (img.alpha[:, 4:] == 255).all()
    assert (img.pixels[:, 4:, :3] == [0, 255, 0]).all()


def test_decode_grey_and_la_modes(tmp_path):
    grey = (np.arange(12 * 9) % 256).astype(np.uint8).reshape(9, 12)
    img = load_image(_save(tmp_path, "l.png", Image.fromarray(grey)))
    assert img.pixels.shape == (9, 12, 3) and (img.pixels[..., 1] == grey).all()
    la = np.stack([grey, np.where(grey > 50, 255, 0).astype(np.uint8)], -1)
    img = load_image(_save(tmp_path, "la.png", Image.fromarray(la, mode="LA")))
    assert img.has_alpha and (img.alpha == la[..., 1]).all()


def test_decode_opaque_alpha_channel_is_dropped(tmp_path):
    rgba = np.dstack([photo_like(8, 8), np.full((8, 8), 255, np.uint8)])
    img = load_image(_save(tmp_path, "o.png", Image.fromarray(rgba)))
    assert not img.has_alpha


def test_decode_cmyk_jpeg_converts_to_rgb(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = [200, 30, 30]
    path = _save(tmp_path, "c.jpg", Image.fromarray(rgb).convert("CMYK"), quality=95)
    img = load_image(path)
    assert img.source_mode == "CMYK" and img.pixels.shape == (16, 16, 3)
    assert abs(int(img.pixels[4, 2, 0]) - 200) < 12 and img.pixels[4, 2, 1] < 60
    assert img.pixels[4, 12].max() < 20


def test_decode_gif_first_frame_by_default_and_frame_option(tmp_path):
    frames = [Image.fromarray(np.full((6, 6, 3), v, np.uint8)) for v in (10, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert load_image(path).pixels.mean() < 50
    assert load_image(path, frame=1).pixels.mean() > 150
    with pytest.raises(OptionError, match="--frame"):
        load_image(path, frame=2)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_decode_applies_exif_orientation(tmp_path, orientation):
    raw = photo_like(12, 20)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path, f"o{orientation}.png", Image.fromarray(raw), exif=exif)
    img = load_image(path)
    expected = {1: raw, 2: raw[:, ::-1], 3: raw[::-1, ::-1], 4: raw[::-1], 5: raw.transpose(1, 0, 2),
                6: np.rot90(raw, -1), 7: np.rot90(raw, -1)[::-1], 8: np.rot90(raw, 1)}
    np.testing.assert_array_equal(img.pixels, expected[orientation])
    assert img.raw_orientation == orientation


def test_decode_rejects_missing_folder_empty_text_truncated(tmp_path, photo_jpeg):
    with pytest.raises(InputMissingError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InputMissingError, match="is a folder"):
        load_image(tmp_path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputMissingError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "text.jpg").write_text("hello, I am not a picture\n")
    with pytest.raises(InputError, match="not an image.*text 'hello"):
        load_image(tmp_path / "text.jpg")
    data = photo_jpeg.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(tmp_path / "cut.jpg")


def test_decode_pixel_limit_and_override(tmp_path):
    path = _save(tmp_path, "big.png", Image.new("RGB", (300, 200)))
    with pytest.raises(ImageTooLargeError, match="--max-pixels 60000"):
        load_image(path, max_pixels=50_000)
    assert load_image(path, max_pixels=60_000).pixels.shape == (200, 300, 3)


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1)])
def test_decode_rejects_images_under_2x2(tmp_path, size):
    path = _save(tmp_path, "tiny.png", Image.new("RGB", size))
    with pytest.raises(ImageTooSmallError, match="at least 2x2"):
        load_image(path)
