"""The GPU twin of numpy_ops: same names, same signatures, CuPy arrays in and out.

Each stage runs one of the hand-written kernels in gpurelief/kernels/*.cu, compiled by NVRTC
with backend.kernels.COMPILE_OPTIONS (--fmad=false, -ftz=false: results match numpy bit for bit
except where README says otherwise) for the device's architecture, cached on disk, and loaded
with cupy.RawModule once per device and process. The glue around the kernels is
backend.kernel_ops, which the CPU tests run through a C++ host shim.

Importing this module imports CuPy; a missing CuPy raises DependencyError naming the `gpu` extra.
"""
from __future__ import annotations

from typing import Any

from ..errors import require
from . import kernels as K
from .kernel_ops import KernelOps
from .numpy_ops import grid_shape, grid_spacing, index_dtype  # noqa: F401  (host-only: shared, not twinned)

cupy = require("cupy", "gpu", purpose="the GPU backend (--device cuda)")

_functions: dict[tuple[int, str, str], Any] = {}
_modules: dict[tuple[int, str], Any] = {}


def _function(family: str, kernel: str):
    """-> the compiled kernel for the current device; builds/loads its family at most once per device."""
    dev = int(cupy.cuda.runtime.getDevice())
    key = (dev, family, kernel)
    fn = _functions.get(key)
    if fn is not None:
        return fn
    module = _modules.get((dev, family))
    if module is None:
        arch = cupy.cuda.Device(dev).compute_capability  # e.g. "90"
        from cupy_backends.cuda.libs import nvrtc

        path = K.cached_cubin(family, arch, nvrtc_version=".".join(map(str, nvrtc.getVersion())))
        module = cupy.RawModule(path=str(path))
        _modules[(dev, family)] = module
    fn = module.get_function(kernel)
    _functions[key] = fn
    return fn


def _launch(family: str, kernel: str, grid: tuple, block: tuple, args) -> None:
    _function(family, kernel)(tuple(grid), tuple(block), tuple(args))


_ops = KernelOps(cupy, _launch, to_host=cupy.asnumpy)


def condition_heights(
    depth,
    *,
    clip_lo_pct: float = 0.0,
    clip_hi_pct: float = 100.0,
    invert: bool = False,
    smooth_px: float = 0.0,
    gamma: float = 1.0,
    contrast: float = 1.0,
):
    """(GH, GW) float32 depth (host or device), larger = nearer -> (GH, GW) float32 device heights in [0, 1]."""
    return _ops.condition_heights(
        depth, clip_lo_pct=clip_lo_pct, clip_hi_pct=clip_hi_pct, invert=invert, smooth_px=smooth_px,
        gamma=gamma, contrast=contrast,
    )


def box_blur(values, radius: int):
    """(H, W) float32 -> (H, W) float32 box mean on the device (agrees with numpy to float32 rounding)."""
    return _ops.box_blur(values, radius)


def gaussian_blur(values, sigma_px: float):
    """(H, W) float32 -> (H, W) float32, three box passes on the device."""
    return _ops.gaussian_blur(values, sigma_px)


def grid_positions(heights, *, dx: float, dy: float, relief: float):
    """(GH, GW) float32 heights in [0, 1] -> (GH*GW, 3) float32 device positions (kernels/grid.cu)."""
    return _ops.grid_positions(heights, dx=dx, dy=dy, relief=relief)


def grid_normals(heights, *, dx: float, dy: float, relief: float):
    """(GH, GW) float32 heights -> (GH*GW, 3) float32 device unit normals (kernels/normals.cu)."""
    return _ops.grid_normals(heights, dx=dx, dy=dy, relief=relief)


def grid_uvs(grid_size: tuple[int, int]):
    """(GH, GW) -> (GH*GW, 2) float32 device UVs at sample centres (kernels/grid.cu)."""
    return _ops.grid_uvs(grid_size)


def grid_indices(grid_size: tuple[int, int], dtype=None):
    """(GH, GW) -> (6*(GH-1)*(GW-1),) uint16|uint32 device indices (kernels/indices.cu)."""
    return _ops.grid_indices(grid_size, dtype)


def cut_cells(valid):
    """(GH, GW) bool mask (host or device) -> (GH-1, GW-1) bool device cells to keep (kernels/compact.cu)."""
    return _ops.cut_cells(valid)


def compact_grid(keep_cells, grid_size: tuple[int, int]):
    """(GH-1, GW-1) bool cells -> (vertex_ids (K,) uint32, indices (6*C,)) on the device (count -> scan -> emit)."""
    return _ops.compact_grid(keep_cells, grid_size)


def column_bounds(table):
    """(N, C) float32 device table -> per-column (min, max) of the finite values as Python floats (kernels/condition.cu)."""
    return _ops.column_bounds(table)


def quantization_transform(positions):
    """(N, 3) float32 device positions -> (centre (3,), half_extent (3,)) float64 host arrays."""
    return _ops.quantization_transform(positions)


def quantize_positions(positions, centre, half_extent):
    """(N, 3) float32 -> (N, 4) int16 device normalized SHORT positions (kernels/quantize.cu)."""
    return _ops.quantize_positions(positions, centre, half_extent)


def quantize_normals(normals, half_extent):
    """(N, 3) float32 unit normals -> (N, 4) int8 device normalized BYTE normals (kernels/quantize.cu)."""
    return _ops.quantize_normals(normals, half_extent)


def quantize_uvs(uvs):
    """(N, 2) float32 UVs -> (N, 2) uint16 device normalized UVs (kernels/quantize.cu)."""
    return _ops.quantize_uvs(uvs)
