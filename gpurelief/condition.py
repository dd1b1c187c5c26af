"""DepthMap -> Heightfield: resample to the mesh grid, clamp, normalise, invert, smooth, shape."""
from __future__ import annotations

import numpy as np

from .backend import is_device_array
from .backend import numpy_ops as ops
from .errors import OptionError
from .types import DepthMap, Heightfield


def condition(
    depth: DepthMap,
    *,
    image_size: tuple[int, int],
    grid_size: tuple[int, int],
    clip_pct: tuple[float, float] = (0.0, 100.0),
    invert: bool = False,
    smooth_px: float = 0.0,
    gamma: float = 1.0,
    contrast: float = 1.0,
    alpha: np.ndarray | None = None,
    cut_transparent: bool = False,
    array_ops=None,
) -> Heightfield:
    """DepthMap (any H, W) -> Heightfield (GH, GW) heights in [0, 1], 1 = nearest.

    smooth_px is a Gaussian sigma in grid samples. alpha (H, W) uint8 is used only to mark samples
    fully transparent when cut_transparent is set; it never changes heights.
    array_ops: the backend of the per-sample conditioning (numpy_ops by default, cupy_ops puts the
    heights on the GPU); resampling always runs on the host.
    """
    lo, hi = clip_pct
    if not (0.0 <= lo < hi <= 100.0):
        raise OptionError(f"--clip: expected 0 <= LOW < HIGH <= 100 (percentiles), got {lo} {hi}")
    if not gamma > 0:
        raise OptionError(f"--gamma: expected a positive number, got {gamma}")
    if not contrast > 0:
        raise OptionError(f"--contrast: expected a positive number, got {contrast}")
    if smooth_px < 0:
        raise OptionError(f"--smooth: expected >= 0 grid samples, got {smooth_px}")
    values = depth.values
    if is_device_array(values) and tuple(values.shape) != tuple(grid_size):
        values = values.get()  # resampling runs on the host
    if not is_device_array(values):  # a device map of the grid's size stays where it is
        values = np.asarray(values, dtype=np.float32)
    if values.shape != tuple(grid_size):
        values = ops.resize(ops.fill_no_data(values), grid_size)  # resampling would spread NaN and inf
    heights = (array_ops or ops).condition_heights(
        values,
        clip_lo_pct=lo,
        clip_hi_pct=hi,
        invert=invert,
        smooth_px=smooth_px,
        gamma=gamma,
        contrast=contrast,
    )
    valid = None
    if cut_transparent and alpha is not None:
        a = ops.resize(alpha.astype(np.float32), grid_size) if alpha.shape != tuple(grid_size) else alpha
        valid = np.asarray(a) > 0
    return Heightfield(heights=heights, image_size=image_size, valid=valid)
