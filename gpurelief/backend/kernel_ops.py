"""The array stages run through the CUDA kernels, independent of where the kernels execute.

`KernelOps(xp, launcher)` holds the glue around gpurelief/kernels/*.cu: output sizing, argument
rounding, launch shapes, the scans between count and emit. cupy_ops binds it to CuPy and NVRTC;
the CPU tests bind the very same glue to numpy and the C++ host shim, so what the GPU runs is
what CI checks (only CuPy's own calls differ). Every method has the name, signature and result
of its numpy_ops twin.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np

from . import kernels as K
from . import numpy_ops


class Launcher(Protocol):
    def __call__(self, family: str, kernel: str, grid: tuple, block: tuple, args: Sequence[Any]) -> None: ...


def percentiles_from_sorted(sorted_values, pcts: Sequence[float], take: Callable[[Any, list[int]], np.ndarray]) -> list[float]:
    """Ascending (N,) float32 values, percentiles -> numpy.percentile(values, pcts) (method 'linear').

    Only the two order statistics around each percentile are read (`take(sorted, indices)` -> host
    numpy array), and they are combined exactly as numpy's _lerp does (float32 difference,
    float64 weight), so the result matches numpy to the last bit; tests/test_kernels_host.py
    checks that against numpy.percentile itself.
    """
    n = int(sorted_values.shape[0])
    q = np.true_divide(np.asarray(pcts, dtype=np.float64), 100)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    prev = prev.astype(np.intp)
    nxt = nxt.astype(np.intp)
    t = np.asarray(virtual - prev, dtype=np.float64)
    values = take(sorted_values, [int(i) % n for i in np.concatenate([prev, nxt])])
    a, b = values[: len(q)], values[len(q):]
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5, casting="unsafe", dtype=out.dtype)
    return [out[i] for i in range(len(q))]


class KernelOps:
    """numpy_ops' array stages through the kernels. xp: numpy or cupy; launcher runs one kernel."""

    def __init__(self, xp, launcher: Launcher, *, to_host: Callable[[Any], np.ndarray] = np.asarray):
        self.xp = xp
        self.launch = launcher
        self.to_host = to_host

    def _run(self, family: str, kernel: str, launch: tuple, *args) -> None:
        grid, block = launch
        self.launch(family, kernel, grid, block, K.scalar_args(family, kernel, args))

    @staticmethod
    def _pieces(out, per_thread: int = 1) -> tuple:
        """The 1-D launch of a kernel that writes `out` in 16-byte pieces, `per_thread` to a thread (kernels/common.h)."""
        return K.launch_1d(K.groups(int(out.nbytes), per_thread * K.STORE_BYTES))

    def _aligned(self, out):
        """An output the kernel writes with 16-byte stores: check that it starts on a 16-byte boundary (CuPy's and
        numpy's allocators give 256 and 16 bytes; a view could break it)."""
        ptr = out.data.ptr if hasattr(out.data, "ptr") else out.ctypes.data
        if ptr % 16:
            raise ValueError("kernel output not 16-byte aligned")
        return out

    def _range_reduced(self, values, n: int, stride: int, offset: int):
        """values[offset + i * stride], i < n -> (3,) float32 device array: min of the finite values, -(their max),
        -1 if any value is not finite else 0 (kernels/condition.cu range_partials_f32).
        One kernel over the samples and one row-wise min of its partials: no host sync."""
        threads = max(1, min(n, K.RANGE_THREADS))
        parts = self.xp.empty((3, threads), dtype=self.xp.float32)
        self._run("condition", "range_partials_f32", K.launch_1d(threads), values, n, stride, offset, threads, parts)
        return self.xp.ascontiguousarray(parts.min(axis=1))

    def column_bounds(self, table) -> tuple[list[float], list[float]]:
        """(N, C) float32 -> per-column min and max of the finite values (numpy_ops.column_bounds): glTF accessor
        bounds of a device array without CuPy's strided reductions (40 ms for 8 M positions on an H200)."""
        t = self._f32(table)
        rows, cols = t.shape
        if rows == 0:
            return [0.0] * cols, [0.0] * cols
        reduced = np.asarray(self.to_host(self.xp.stack([self._range_reduced(t, rows, cols, k) for k in range(cols)])))
        return [float(r[0]) for r in reduced], [float(-r[1]) for r in reduced]

    def _f32(self, a):
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=self.xp.float32))

    # ---- heightfield conditioning ---------------------------------------------------------------
    def condition_heights(
        self,
        depth,
        *,
        clip_lo_pct: float = 0.0,
        clip_hi_pct: float = 100.0,
        invert: bool = False,
        smooth_px: float = 0.0,
        gamma: float = 1.0,
        contrast: float = 1.0,
    ):
        """(GH, GW) float32 depth, larger = nearer (NaN = no data) -> (GH, GW) float32 heights in [0, 1]."""
        xp = self.xp
        d = self._f32(depth)
        n = d.size
        # lo, span, fill, flat, bad, scale on the device (range_params_f32): one read of the map, nothing waits on
        # the host
        params = xp.empty(K.PARAM_COUNT, dtype=xp.float32)
        self._run("condition", "range_params_f32", K.launch_1d(1), self._range_reduced(d.reshape(-1), n, 1, 0), params)
        if clip_lo_pct > 0.0 or clip_hi_pct < 100.0:  # the percentile clamp is computed on the host
            host = np.asarray(self.to_host(params))
            fill = np.float32(host[K.PARAM_FILL])
            if host[K.PARAM_BAD]:  # no data takes the finite minimum, as in numpy_ops.fill_no_data
                d = xp.where(xp.isfinite(d), d, fill).astype(xp.float32)
            lo, hi = percentiles_from_sorted(
                xp.sort(d.reshape(-1)), [clip_lo_pct, clip_hi_pct],
                lambda s, idx: self.to_host(s[xp.asarray(idx)]),
            )
            lo, span, scale = numpy_ops.normalization(lo, hi)
            params = xp.asarray(np.array([lo, span, fill, 0.0 if span > 0 else 1.0, 0.0, scale], dtype=np.float32))
        flags = K.CONDITION_NORMALIZE
        if invert:
            flags |= K.CONDITION_INVERT
        shape_flags = (K.CONDITION_GAMMA if gamma != 1.0 else 0) | (K.CONDITION_CONTRAST if contrast != 1.0 else 0)
        out = xp.empty_like(d)
        if smooth_px > 0:
            # smoothing sits between normalise/invert and gamma/contrast: two launches around it
            self._run("condition", "condition_heights_f32", K.launch_1d(n), d, out, n, params, gamma, contrast, flags)
            smoothed = self._f32(self.gaussian_blur(out, smooth_px))
            if shape_flags:
                self._run(
                    "condition", "condition_heights_f32", K.launch_1d(n), smoothed, out, n, params, gamma, contrast,
                    shape_flags,
                )
            else:
                out = smoothed
        else:
            self._run(
                "condition", "condition_heights_f32", K.launch_1d(n), d, out, n, params, gamma, contrast,
                flags | shape_flags,
            )
        return out

    def box_blur(self, values, radius: int):
        """(H, W) float32 -> (H, W) float32 box mean, edges clamped (numpy_ops.box_blur on xp).

        The float64 prefix sums run in CuPy's parallel order on the GPU, so this stage agrees with
        numpy to float32 rounding (a few ulp), not bit for bit; see README.
        """
        return numpy_ops._box_blur(self._f32(values), radius, self.xp)

    def gaussian_blur(self, values, sigma_px: float):
        """(H, W) float32 -> (H, W) float32, three box passes (numpy_ops.gaussian_blur on xp)."""
        if self.xp is np:
            return numpy_ops.gaussian_blur(values, sigma_px)
        if sigma_px <= 0:
            return self._f32(values).copy()
        r = max(1, int(round((np.sqrt(4.0 * sigma_px**2 + 1.0) - 1.0) / 2.0)))
        out = values
        for _ in range(3):
            out = self.box_blur(out, r)
        return out

    # ---- grid geometry --------------------------------------------------------------------------
    def grid_positions(self, heights, *, dx: float, dy: float, relief: float):
        """(GH, GW) float32 heights in [0, 1] -> (GH*GW, 3) float32 positions (numpy_ops.grid_positions)."""
        h = self._f32(heights)
        gh, gw = h.shape
        out = self.xp.empty((gh * gw, 3), dtype=self.xp.float32)
        self._run(
            "grid", "grid_positions_f32", self._pieces(out), h, self._aligned(out), gh, gw,
            np.float32((gw - 1) * 0.5), np.float32((gh - 1) * 0.5), np.float32(dx), np.float32(dy), np.float32(relief),
        )
        return out

    def grid_normals(self, heights, *, dx: float, dy: float, relief: float):
        """(GH, GW) float32 heights -> (GH*GW, 3) float32 unit normals (numpy_ops.grid_normals)."""
        h = self._f32(heights)
        gh, gw = h.shape
        out = self.xp.empty((gh * gw, 3), dtype=self.xp.float32)
        self._run(
            "normals", "grid_normals_f32", self._pieces(out, 3), h, self._aligned(out), gh, gw, np.float32(relief),
            np.float32(dx), np.float32(2.0 * dx), np.float32(dy), np.float32(2.0 * dy),
        )
        return out

    def grid_uvs(self, grid_size: tuple[int, int]):
        """(GH, GW) -> (GH*GW, 2) float32 glTF UVs at sample centres (numpy_ops.grid_uvs)."""
        gh, gw = grid_size
        out = self.xp.empty((gh * gw, 2), dtype=self.xp.float32)
        self._run("grid", "grid_uvs_f32", self._pieces(out), self._aligned(out), gh, gw)
        return out

    def grid_indices(self, grid_size: tuple[int, int], dtype=None):
        """(GH, GW) -> (6*(GH-1)*(GW-1),) uint16|uint32 indices, CCW from +Z (numpy_ops.grid_indices)."""
        gh, gw = grid_size
        dtype = np.dtype(dtype) if dtype is not None else numpy_ops.index_dtype(gh * gw)
        kernel = {np.dtype(np.uint16): "grid_indices_u16", np.dtype(np.uint32): "grid_indices_u32"}.get(dtype)
        if kernel is None:
            raise ValueError(f"grid_indices: the kernels write uint16 or uint32 indices, got dtype {dtype}")
        out = self.xp.empty(6 * (gh - 1) * (gw - 1), dtype=dtype)
        self._run("indices", kernel, self._pieces(out), self._aligned(out), gh, gw)
        return out

    # ---- compaction (alpha cut) -----------------------------------------------------------------
    def cut_cells(self, valid):
        """(GH, GW) bool sample mask -> (GH-1, GW-1) bool: keep a cell unless all four corners are invalid."""
        xp = self.xp
        v = xp.ascontiguousarray(xp.asarray(valid, dtype=bool))
        gh, gw = v.shape
        keep = xp.empty((gh - 1, gw - 1), dtype=bool)
        self._run("compact", "cut_cells_u8", K.launch_2d(gw - 1, gh - 1), v.view(xp.uint8), keep.view(xp.uint8), gh, gw)
        return keep

    def compact_grid(self, keep_cells, grid_size: tuple[int, int]):
        """(GH-1, GW-1) bool cells -> (vertex_ids (K,) uint32, indices (6*C,)) (numpy_ops.compact_grid).

        count (used_vertices_u8) -> scan (xp.cumsum; integer, so exact in any order) -> emit.
        """
        xp = self.xp
        gh, gw = grid_size
        keep = xp.ascontiguousarray(xp.asarray(keep_cells, dtype=bool)).view(xp.uint8)
        used = xp.empty((gh, gw), dtype=xp.uint8)
        self._run("compact", "used_vertices_u8", K.launch_2d(gw, gh), keep, used, gh, gw)
        vertex_scan = xp.cumsum(used.reshape(-1), dtype=xp.uint32)
        cell_scan = xp.cumsum(keep.reshape(-1), dtype=xp.uint32)
        vertex_count = int(self.to_host(vertex_scan[-1]))
        cell_count = int(self.to_host(cell_scan[-1])) if cell_scan.size else 0
        vertex_ids = xp.empty(vertex_count, dtype=xp.uint32)
        n = gh * gw
        self._run("compact", "compact_vertex_ids", K.launch_1d(n), used, vertex_scan, vertex_ids, n)
        dtype = numpy_ops.index_dtype(vertex_count)
        indices = xp.empty(6 * cell_count, dtype=dtype)
        kernel = "compact_indices_u16" if dtype == np.uint16 else "compact_indices_u32"
        self._run("compact", kernel, K.launch_2d(gw - 1, gh - 1), keep, cell_scan, vertex_scan, indices, gh, gw)
        return vertex_ids, indices

    # ---- KHR_mesh_quantization ------------------------------------------------------------------
    def quantization_transform(self, positions):
        """(N, 3) float32 positions -> (centre (3,), half_extent (3,)) float64 host arrays."""
        return numpy_ops.quantization_from_bounds(*self.column_bounds(positions))

    def quantize_positions(self, positions, centre, half_extent):
        """(N, 3) float32 -> (N, 4) int16 normalized SHORT, zero pad (numpy_ops.quantize_positions)."""
        p = self._f32(positions)
        c = np.asarray(self.to_host(centre)).astype(np.float32)
        inv = (np.float32(32767.0) / np.asarray(self.to_host(half_extent)).astype(np.float32)).astype(np.float32)
        n = p.shape[0]
        out = self.xp.empty((n, 4), dtype=self.xp.int16)
        self._run("quantize", "quantize_positions_i16", K.launch_1d(n), p, out, n, c[0], c[1], c[2], inv[0], inv[1], inv[2])
        return out

    def quantize_normals(self, normals, half_extent):
        """(N, 3) float32 unit normals -> (N, 4) int8 normalize(S * n), zero pad (numpy_ops.quantize_normals)."""
        v = self._f32(normals)
        s = np.asarray(self.to_host(half_extent)).astype(np.float32)
        n = v.shape[0]
        out = self.xp.empty((n, 4), dtype=self.xp.int8)
        self._run("quantize", "quantize_normals_i8", K.launch_1d(n), v, out, n, s[0], s[1], s[2])
        return out

    def quantize_uvs(self, uvs):
        """(N, 2) float32 UVs -> (N, 2) uint16 normalized (numpy_ops.quantize_uvs)."""
        u = self._f32(uvs)
        out = self.xp.empty(u.shape, dtype=self.xp.uint16)
        count = u.size
        self._run("quantize", "quantize_uvs_u16", K.launch_1d(count), u, out, count)
        return out
