"""--depth-map FILE: a depth or height map the user already has (8/16-bit PNG, float TIFF, .npy)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..decode import DEFAULT_MAX_PIXELS, HIGH_PRECISION_GREY, open_image, read_input_bytes
from ..errors import ImageTooSmallError, InputError
from ..types import DepthMap


GDAL_NODATA_TAG = 42113  # TIFF tag GDAL writes a raster's no-data value into (ASCII), e.g. "-32768"
# values elevation exports use for "no data"; one left in a map as a height squashes the real relief into a
# sliver at the top of the range, so a map whose minimum is one of them, far below the rest, gets a note
LIKELY_NODATA = (-32768.0, -32767.0, -9999.0, -99999.0, float(np.finfo(np.float32).min))


def load_depth_map(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                   nodata: float | None = None) -> DepthMap:
    """Depth/height file -> DepthMap (H, W) float32, larger = nearer/higher, NaN = no data.

    .npy: any real 2-D array (or (H, W, 1)). Images: one channel at full precision (16-bit PNG stays
    16-bit, float TIFF stays float); colour images use their luminance. nodata: samples equal to it become NaN
    (--nodata); without it a TIFF's GDAL_NODATA tag is used when present.
    """
    path, data = read_input_bytes(path)
    tagged = None
    if path.suffix.lower() == ".npy" or data[:6] == b"\x93NUMPY":
        try:
            a = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path}: not a readable .npy array ({exc}); save it with numpy.save", path=path) from exc
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.ndim != 2 or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise InputError(
                f"{path}: expected a 2-D real array (H, W), got shape {a.shape} dtype {a.dtype}", path=path
            )
        values = a.astype(np.float32)
    else:
        img = open_image(path, data, max_pixels=max_pixels)
        try:
            img.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InputError(f"{path}: the depth map is truncated or corrupt ({exc}); re-export it", path=path) from exc
        tagged = _gdal_nodata(img)
        mode = img.mode
        if mode in HIGH_PRECISION_GREY or mode == "L":
            values = np.asarray(img, dtype=np.float32)
        elif mode in ("LA", "La", "PA", "P", "1"):
            values = np.asarray(img.convert("L"), dtype=np.float32)
        else:
            values = np.asarray(img.convert("RGB"), dtype=np.float32) @ np.array(
                [0.2126, 0.7152, 0.0722], dtype=np.float32
            )
    notes = []
    missing = nodata if nodata is not None else tagged
    if missing is not None:
        values = np.where(values == np.float32(missing), np.float32(np.nan), values)  # images decode read-only
    else:
        hint = _likely_nodata(values)
        if hint is not None:
            value, count, lo, hi = hint
            notes.append(f"{path}: {count:,} samples are {value:g}, far below the rest ({lo:g} to {hi:g}); if that "
                         f"is the map's no-data value, pass --nodata {value:g}")
    if values.shape[0] < 2 or values.shape[1] < 2:
        raise ImageTooSmallError(f"{path}: the depth map is {values.shape[1]}x{values.shape[0]}; it needs at least 2x2")
    if not np.isfinite(values).any():
        raise InputError(f"{path}: the depth map has no finite value (all NaN/inf)", path=path)
    return DepthMap(values=np.ascontiguousarray(values), source=str(Path(path)), notes=notes)


def _gdal_nodata(img) -> float | None:
    """A TIFF's GDAL_NODATA tag as a float, or None (no tag, not a TIFF, or not a number: "nan" is NaN already)."""
    tags = getattr(img, "tag_v2", None)
    text = tags.get(GDAL_NODATA_TAG) if tags is not None else None
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    try:
        value = float(str(text).strip().rstrip("\x00")) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) else None


def _likely_nodata(values: np.ndarray):
    """-> (value, count, lo, hi) when the map's minimum is a common no-data value (LIKELY_NODATA) lying farther
    below the next value than the rest of the map spans ([lo, hi]), else None."""
    finite_mask = np.isfinite(values)
    low = float(np.min(values, where=finite_mask, initial=np.inf))
    if not any(np.float32(low) == np.float32(v) for v in LIKELY_NODATA):
        return None  # (the usual case: no copy of the map made)
    finite = values[finite_mask]
    rest = finite[finite != low]
    if rest.size == 0:
        return None
    lo, hi = float(rest.min()), float(rest.max())
    if lo - low <= hi - lo:
        return None
    return low, int(finite.size - rest.size), lo, hi
