"""--depth-map FILE: a depth or height map the user already has (8/16-bit PNG, float TIFF, .npy)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..decode import DEFAULT_MAX_PIXELS, open_image, read_input_bytes
from ..errors import ImageTooSmallError, InputError
from ..types import DepthMap


def load_depth_map(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DepthMap:
    """Depth/height file -> DepthMap (H, W) float32, larger = nearer/higher, NaN = no data.

    .npy: any real 2-D array (or (H, W, 1)). Images: one channel at full precision (16-bit PNG stays
    16-bit, float TIFF stays float); colour images use their luminance.
    """
    path, data = read_input_bytes(path)
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
        mode = img.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F", "L"):
            values = np.asarray(img, dtype=np.float32)
        elif mode in ("LA", "La", "PA", "P", "1"):
            values = np.asarray(img.convert("L"), dtype=np.float32)
        else:
            values = np.asarray(img.convert("RGB"), dtype=np.float32) @ np.array(
                [0.2126, 0.7152, 0.0722], dtype=np.float32
            )
    if values.shape[0] < 2 or values.shape[1] < 2:
        raise ImageTooSmallError(f"{path}: the depth map is {values.shape[1]}x{values.shape[0]}; it needs at least 2x2")
    if not np.isfinite(values).any():
        raise InputError(f"{path}: the depth map has no finite value (all NaN/inf)", path=path)
    return DepthMap(values=np.ascontiguousarray(values), source=str(Path(path)))
