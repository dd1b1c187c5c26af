"""Image -> Texture: the photo's own bytes when they can be embedded as they are, else one encode.

A JPEG input is stored byte-for-byte (pixels never re-encoded). If its EXIF orientation is not 1,
the tag is rewritten to 1 in place (viewers disagree on honouring EXIF in textures) and the UVs are
mapped onto the stored, un-rotated pixels instead (see raw_uvs).
"""
from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image as PILImage

from .backend import array_module
from .errors import OptionError
from .types import Image, Texture

TEXTURE_FORMATS = ("auto", "jpeg", "png", "webp")
DEFAULT_TEXTURE_MAX = 8192  # larger textures fail on many GPUs (WebGL MAX_TEXTURE_SIZE is often 8192)


def _set_exif_orientation_to_1(jpeg: bytes) -> bytes | None:
    """Rewrite the EXIF Orientation tag of a JPEG to 1 without touching image data; None if not found."""
    pos = 2
    n = len(jpeg)
    while pos + 4 <= n and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        seg_len = struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        if marker == 0xDA:  # start of scan: no more metadata
            return None
        body = pos + 4
        if marker == 0xE1 and jpeg[body : body + 6] == b"Exif\x00\x00":
            tiff = body + 6
            order = jpeg[tiff : tiff + 2]
            end = "<" if order == b"II" else ">"
            ifd = tiff + struct.unpack(end + "I", jpeg[tiff + 4 : tiff + 8])[0]
            count = struct.unpack(end + "H", jpeg[ifd : ifd + 2])[0]
            for i in range(count):
                entry = ifd + 2 + 12 * i
                tag, typ = struct.unpack(end + "HH", jpeg[entry : entry + 4])
                if tag == 0x0112 and typ == 3:
                    out = bytearray(jpeg)
                    out[entry + 8 : entry + 10] = struct.pack(end + "H", 1)
                    return bytes(out)
            return None
        pos += 2 + seg_len
    return None


def raw_uvs(uvs: np.ndarray, orientation: int) -> np.ndarray:
    """(N, 2) UVs on the displayed (EXIF-rotated) photo -> UVs on the stored pixels of orientation 1..8."""
    u, v = uvs[:, 0], uvs[:, 1]
    one = np.float32(1.0)
    pairs = {
        1: (u, v),
        2: (one - u, v),
        3: (one - u, one - v),
        4: (u, one - v),
        5: (v, u),
        6: (v, one - u),
        7: (one - v, one - u),
        8: (one - v, u),
    }
    a, b = pairs[orientation]
    xp = array_module(uvs)  # device UVs stay on the device
    return xp.ascontiguousarray(xp.stack([a, b], axis=1), dtype=xp.float32)


def _encode(pixels: np.ndarray, fmt: str, quality: int) -> Texture:
    img = PILImage.fromarray(pixels)
    buf = io.BytesIO()
    if fmt == "jpeg":
        rgb = img.convert("RGB")
        subsampling = 0 if quality >= 90 else 2
        try:
            # optimized Huffman tables: a few % smaller, but Pillow then encodes into one buffer it sizes at a guess
            # of 1 byte per pixel (2 at quality >= 95), which detailed or grainy photos at 4:4:4 exceed
            rgb.save(buf, "JPEG", quality=quality, subsampling=subsampling, optimize=True)
        except OSError:
            buf = io.BytesIO()
            rgb.save(buf, "JPEG", quality=quality, subsampling=subsampling)  # streamed: no size limit
        mime = "image/jpeg"
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=4)
        mime = "image/webp"
    else:
        img.save(buf, "PNG", compress_level=6)
        mime = "image/png"
    return Texture(data=buf.getvalue(), mime=mime, width=img.width, height=img.height)


def make_texture(
    image: Image,
    *,
    texture_format: str = "auto",
    texture_max: int | None = DEFAULT_TEXTURE_MAX,
    quality: int = 90,
) -> tuple[Texture, int]:
    """Image -> (Texture, orientation of its stored pixels relative to the displayed photo, 1 = same).

    auto: the source bytes when JPEG (alpha-free, YCbCr or grey) or PNG and within texture_max; PNG when there is
    alpha or the source is palette/lossless-graphic (GIF); JPEG otherwise.
    """
    if texture_format not in TEXTURE_FORMATS:
        raise OptionError(f"--texture-format: expected one of {', '.join(TEXTURE_FORMATS)}, got {texture_format!r}")
    if not 1 <= quality <= 100:
        raise OptionError(f"--texture-quality: expected 1..100, got {quality}")
    h, w = image.height, image.width
    too_big = bool(texture_max) and max(h, w) > texture_max
    src = image.source_bytes
    if texture_format == "auto" and not too_big and src is not None:
        # glTF viewers decode baseline JPEG as YCbCr or greyscale only: a CMYK / YCCK JPEG is re-encoded
        if image.source_format == "JPEG" and not image.has_alpha and image.source_mode in ("RGB", "L", None):
            if image.raw_orientation == 1:
                return Texture(src, "image/jpeg", w, h), 1
            patched = _set_exif_orientation_to_1(src)
            if patched is not None:
                rh, rw = (w, h) if image.raw_orientation >= 5 else (h, w)
                return Texture(patched, "image/jpeg", rw, rh), image.raw_orientation
        if image.source_format == "PNG" and image.raw_orientation == 1:
            return Texture(src, "image/png", w, h), 1
    pixels = image.pixels
    if too_big:
        s = texture_max / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        pixels = np.asarray(PILImage.fromarray(pixels).resize(size, PILImage.Resampling.LANCZOS))
    fmt = texture_format
    if fmt == "auto":
        lossless_source = image.source_format in ("GIF", "PNG") or (image.source_mode or "").startswith("P")
        fmt = "png" if image.has_alpha or lossless_source else "jpeg"
    if fmt == "jpeg" and image.has_alpha:
        raise OptionError(
            f"{image.name}: has transparency, which JPEG cannot store; use --texture-format png or webp"
        )
    return _encode(pixels, fmt, quality), 1
