"""The GPU twin of rtin_kernels: kernels/rtin.cu launched through CuPy, one launch per level / depth.

Error pyramid: fine -> coarse, one thread per vertex of a level (rtin_edge_level, rtin_square_level).
Extraction: top-down, one depth per step over the frontier of triangles: classify -> exclusive scans ->
emit children and leaves (count -> scan -> emit). The driver code below is written against an array
module `xp` and a `launch(name, n, *args)` callable, so the same code runs on CuPy (CupyLauncher) and, in
the tests, on numpy with the .cu file compiled for the CPU behind a small shim (tests/test_rtin_gpu.py).

`--device cuda --mesh adaptive --max-error E` runs it (pipeline -> adaptive_mesh(device=DeviceMesher)): errors,
triangles, vertex compaction and attributes stay on the device and stream into the GLB writer.

Status: the kernels' logic and that whole device path are tested on the CPU that way against the numba
reference, and the .cu file compiles under NVRTC. On an H200 (2026-11-26) it gave numba's triangles (bench/results).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

KERNEL_FILE = Path(__file__).resolve().parents[1] / "kernels" / "rtin.cu"
KERNELS = ("rtin_edge_level", "rtin_square_level", "rtin_classify", "rtin_emit")
THREADS = 256


class CupyLauncher:
    """launch(name, n, *args) -> the kernel on n threads (1D), compiled once per process by CuPy."""

    def __init__(self):
        from ..errors import require

        self.cp = require("cupy", "gpu", purpose="the GPU adaptive mesher")
        self.module = self.cp.RawModule(code=KERNEL_FILE.read_text(), options=("-std=c++17",))
        self.functions = {name: self.module.get_function(name) for name in KERNELS}

    def __call__(self, name: str, n: int, *args) -> None:
        if n:
            self.functions[name](((n + THREADS - 1) // THREADS,), (THREADS,), args)


def build_errors(xp, launch, heights, real_rows: int, real_cols: int, limit: float):
    """Padded (S+1, S+1) float32 heights (xp array) -> (S+1, S+1) float64 vertex errors. Twin of
    rtin_kernels.build_errors."""
    from .rtin_kernels import bound_slack

    size = heights.shape[0] - 1
    errors = xp.zeros(heights.shape, dtype=xp.float64)
    real = heights[:real_rows + 1, :real_cols + 1]  # the padding holds no height of the map (zeros)
    tol = bound_slack(max(abs(float(real.max())), abs(float(real.min()))))
    s = 1
    i32, f64 = np.int32, np.float64
    while s < size:
        n_odd = size // (2 * s)
        launch("rtin_edge_level", 2 * n_odd * (n_odd + 1), heights, errors, i32(s), i32(size), i32(real_cols),
               i32(real_rows), f64(limit), f64(tol))
        launch("rtin_square_level", n_odd * n_odd, heights, errors, i32(s), i32(size), i32(real_cols),
               i32(real_rows), f64(limit), f64(tol))
        s *= 2
    return errors


def emit_triangles(xp, launch, errors, real_rows: int, real_cols: int, threshold: float):
    """-> (M, 3) int64 vertex ids, the same triangles as rtin_kernels.emit_triangles (order may differ)."""
    size = errors.shape[0] - 1
    frontier = xp.asarray(np.array([[0, 0, size, size, size, 0], [size, size, 0, 0, 0, size]], dtype=np.int32))
    leaves = []
    i32, i64, f64 = np.int32, np.int64, np.float64
    while frontier.shape[0]:
        n = frontier.shape[0]
        state = xp.empty(n, dtype=xp.int32)
        launch("rtin_classify", n, errors, i32(size), frontier, i64(n), i32(real_cols), i32(real_rows), f64(threshold), state)
        split = (state == 1).astype(xp.int64)
        leaf = (state == 0).astype(xp.int64)
        split_rank = xp.cumsum(split) - split
        leaf_rank = xp.cumsum(leaf) - leaf
        n_split = int(split.sum())
        n_leaf = int(leaf.sum())
        nxt = xp.empty((2 * n_split, 6), dtype=xp.int32)
        out = xp.empty((n_leaf, 3), dtype=xp.int64)
        launch("rtin_emit", n, frontier, state, split_rank, leaf_rank, i64(n), i32(real_cols + 1), nxt, out)
        leaves.append(out)
        frontier = nxt
    return xp.concatenate(leaves) if leaves else xp.empty((0, 3), dtype=xp.int64)


class DeviceMesher:
    """What adaptive_mesh needs to run RTIN on a device: the array module, a kernel launcher, the backend ops
    (grid_normals). On CUDA: (cupy, CupyLauncher(), cupy_ops); the tests use (numpy, host-shim launcher,
    numpy_ops) to drive the same code path on the CPU."""

    def __init__(self, xp, launch, ops):
        self.xp, self.launch, self.ops = xp, launch, ops

    @classmethod
    def for_backend(cls, backend) -> "DeviceMesher":
        return cls(backend.ops.cupy, CupyLauncher(), backend.ops)


def rtin_triangles_gpu(heights, *, max_error: float, xp=None, launch=None):
    """(GH, GW) float32 heights (numpy or CuPy) -> (M, 3) int64 vertex ids on the device; --max-error only.
    xp / launch default to CuPy and CupyLauncher."""
    from .adaptive import _padded

    if launch is None:
        launch = CupyLauncher()
        xp = launch.cp
    gh, gw = heights.shape
    padded = _padded(heights, xp)
    errors = build_errors(xp, launch, padded, gh - 1, gw - 1, float(max_error))
    return emit_triangles(xp, launch, errors, gh - 1, gw - 1, float(max_error))
