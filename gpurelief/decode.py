"""file -> Image: (H, W, 3|4) uint8, EXIF orientation applied, every Pillow mode mapped to RGB(A)."""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from .errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    InputError,
    InputMissingError,
    OptionError,
)
from .types import Image

SUPPORTED = "JPEG, PNG, BMP, GIF, TIFF, WebP"
DEFAULT_MAX_PIXELS = 250_000_000  # ~16k x 16k; larger needs --max-pixels (decompression-bomb guard)
EXIF_ORIENTATION = 0x0112


def read_input_bytes(path: str | os.PathLike) -> tuple[Path, bytes]:
    """Read a whole input file; missing paths, folders and empty files become InputMissingError."""
    path = Path(path)
    if not path.exists():
        raise InputMissingError(f"{path}: no such file; check the path and spelling", path=path)
    if path.is_dir():
        raise InputMissingError(
            f"{path}: is a folder, not an image file; give one image (or use 'gpurelief batch' for folders)",
            path=path,
        )
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise InputMissingError(f"{path}: cannot be read ({exc.strerror}); check its permissions", path=path) from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})", path=path) from exc
    if not data:
        raise InputMissingError(f"{path}: the file is empty (0 bytes); re-export or re-download it", path=path)
    return path, data


def _describe_head(data: bytes) -> str:
    head = data[:16]
    try:
        text = head.decode("ascii")
        if text.isprintable() or text.strip().isprintable():
            return f"text {text[:12]!r}"
    except UnicodeDecodeError:
        pass
    return f"bytes {head[:8].hex(' ')}"


def open_image(path: Path, data: bytes, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> PILImage.Image:
    """Identify the image (header only) and apply the pixel limit before any pixel is decoded."""
    saved = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = None  # our own guard below replaces Pillow's (which warns, then fails)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            img = PILImage.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise InputError(
            f"{path}: not an image Pillow can read (got {_describe_head(data)}); supported: {SUPPORTED}",
            path=path,
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(
            f"{path}: the image is truncated or corrupt ({exc}); re-export or re-download the file", path=path
        ) from exc
    finally:
        PILImage.MAX_IMAGE_PIXELS = saved
    w, h = img.size
    if max_pixels and w * h > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {w}x{h} = {w * h / 1e6:.0f} Mpx is over the {max_pixels / 1e6:.0f} Mpx safety limit "
            f"(decompression-bomb guard); if you trust the file pass --max-pixels {w * h} (or 0 for no limit)",
            path=path,
        )
    return img


# single-channel modes with more than 8 bits (16-bit and 32-bit integer, float): what elevation exports look like
HIGH_PRECISION_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_rgb_or_rgba(img: PILImage.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) or (H, W, 4) uint8. 16-bit and float greys are scaled, not clipped."""
    mode = img.mode
    if mode in HIGH_PRECISION_GREY:
        a = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535):
            grey = np.round(a / 257.0)
        else:
            finite = a[np.isfinite(a)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            grey = np.round((np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-30) * 255.0)
        g = np.clip(grey, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info) or (
        mode in ("RGB", "L") and "transparency" in img.info
    ):
        out = np.asarray(img.convert("RGBA"))
    else:
        out = np.asarray(img.convert("RGB"))  # 1, L, P, CMYK (Adobe inversion handled by Pillow), YCbCr, LAB, HSV
    if out.shape[2] == 4 and bool((out[..., 3] == 255).all()):
        out = out[..., :3]
    return np.ascontiguousarray(out)


def load_image(
    path: str | os.PathLike,
    *,
    frame: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image:
    """Image file -> Image with (H, W, 3|4) uint8 pixels, EXIF orientation applied.

    frame picks the frame of an animated GIF / multi-page TIFF. Raises InputError subclasses with a
    one-line message naming the file and the fix.
    """
    path, data = read_input_bytes(path)
    return decode_image(path, data, frame=frame, max_pixels=max_pixels)


def decode_image(
    path: str | os.PathLike,
    data: bytes,
    *,
    frame: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image:
    """Encoded bytes of the file `path` (already read, e.g. from an object store) -> Image, as load_image."""
    path = Path(path)
    img = open_image(path, data, max_pixels=max_pixels)
    fmt = img.format
    n_frames = int(getattr(img, "n_frames", 1) or 1)
    if frame < 0 or frame >= n_frames:
        raise OptionError(f"{path}: has {n_frames} frame(s); --frame must be between 0 and {n_frames - 1}", path=path)
    try:
        if frame:
            img.seek(frame)
        img.load()
        orientation = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
        source_mode = img.mode
        oriented = ImageOps.exif_transpose(img)
        pixels = _to_rgb_or_rgba(oriented if oriented is not None else img)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise InputError(
            f"{path}: the image data is truncated or corrupt ({exc}); re-export or re-download the file",
            path=path,
        ) from exc
    h, w = pixels.shape[:2]
    if h < 2 or w < 2:
        raise ImageTooSmallError(
            f"{path}: the image is {w}x{h} pixels; a relief needs at least 2x2 (resize or pad the image)",
            path=path,
        )
    return Image(
        pixels=pixels,
        path=path,
        source_bytes=data,
        source_format=fmt,
        source_mode=source_mode,
        raw_orientation=orientation if orientation in range(1, 9) else 1,
    )


def image_from_array(pixels: np.ndarray) -> Image:
    """(H, W), (H, W, 3) or (H, W, 4) uint8 array -> Image (no source bytes: the texture is encoded)."""
    a = np.asarray(pixels)
    if a.dtype != np.uint8:
        raise InputError(f"<array>: expected uint8 pixels, got {a.dtype}; convert with (x * 255).astype(np.uint8)")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"<array>: expected shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise ImageTooSmallError(f"<array>: the image is {a.shape[1]}x{a.shape[0]}; a relief needs at least 2x2")
    return Image(pixels=np.ascontiguousarray(a))
