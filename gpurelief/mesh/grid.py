"""Heightfield -> Mesh: one vertex per grid sample, two counter-clockwise triangles per cell."""
from __future__ import annotations

import numpy as np

from ..backend import numpy_ops
from ..errors import OptionError
from ..types import Heightfield, Mesh


def grid_mesh(
    hf: Heightfield, *, width: float = 1.0, relief_frac: float = 0.1, units: str = "m", array_ops=None
) -> Mesh:
    """Heightfield (GH, GW) -> Mesh with GH*GW vertices and 2*(GH-1)*(GW-1) triangles.

    The relief spans `width` along X (image up = +Y), is centred at the origin in XY, and rises
    from Z = 0 to Z = relief_frac * width. Cells whose four corners are all cut (hf.valid False)
    are dropped and the remaining vertices renumbered. array_ops: numpy_ops (default) or cupy_ops,
    whose arrays the Mesh then holds.
    """
    ops = array_ops or numpy_ops
    if not width > 0:
        raise OptionError(f"--width: expected a positive size, got {width}")
    if relief_frac < 0:
        raise OptionError(f"--relief: expected >= 0 (fraction of the width), got {relief_frac}")
    heights = hf.heights
    grid_size = hf.grid_size
    dx, dy = numpy_ops.grid_spacing(grid_size, hf.image_size, width)
    relief = relief_frac * width
    positions = ops.grid_positions(heights, dx=dx, dy=dy, relief=relief)
    normals = ops.grid_normals(heights, dx=dx, dy=dy, relief=relief)
    uvs = ops.grid_uvs(grid_size)
    if hf.valid is not None and not bool(np.all(hf.valid)):
        keep = ops.cut_cells(hf.valid)
        if not keep.any():
            raise OptionError("--cut-transparent: every cell is transparent; nothing is left to mesh")
        vertex_ids, indices = ops.compact_grid(keep, grid_size)
        positions, normals, uvs = positions[vertex_ids], normals[vertex_ids], uvs[vertex_ids]
        extras = {}
    else:
        indices = ops.grid_indices(grid_size)
        extras = {"position_bounds": _grid_bounds(positions, heights, grid_size, relief)}
    return Mesh(positions=positions, normals=normals, uvs=uvs, indices=indices, units=units, extras=extras)


def _grid_bounds(positions, heights, grid_size: tuple[int, int], relief: float) -> tuple[list[float], list[float]]:
    """Exact POSITION min/max of a full grid without scanning the (N, 3) array: x and y come from the
    corner vertices; z = height * relief is monotonic in height, so its extremes are those of the
    (contiguous, 3x smaller) heights times relief in float32, as grid_positions computes them."""
    gh, gw = grid_size
    r = np.float32(relief)
    z_lo, z_hi = np.float32(float(heights.min())) * r, np.float32(float(heights.max())) * r
    lo = [float(positions[0, 0]), float(positions[(gh - 1) * gw, 1]), float(z_lo)]
    hi = [float(positions[gw - 1, 0]), float(positions[0, 1]), float(z_hi)]
    return lo, hi
