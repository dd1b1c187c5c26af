"""kernels/rtin.cu (the GPU twin of the numba RTIN) compiled for the CPU behind a small shim and driven by the
same host code as on CuPy (mesh/rtin_gpu.py, with xp = numpy): its errors and triangles must equal numba's.

This checks the kernels' logic and the count -> scan -> emit driver without a GPU; it cannot check
GPU-only behaviour (launch limits, memory), which needs a CUDA device.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("numba")

from gpurelief.mesh import rtin_gpu
from gpurelief.mesh import rtin_kernels as rk
from gpurelief.mesh.adaptive import _padded

from heightmaps import fractal, step_edges

SHIM = r"""
#define RTIN_HOST_SHIM
#include <cmath>
#include <cstdlib>
#include <algorithm>
using std::min; using std::max; using std::abs;
struct rtin_dim3 { unsigned int x; };
static rtin_dim3 blockIdx, threadIdx, blockDim;
#define RTIN_INF HUGE_VAL
#define __global__
#define __device__ static inline
#include "KERNEL"
#define LOOP(call) blockDim.x = 1; threadIdx.x = 0; for (long long i = 0; i < n; ++i) { blockIdx.x = (unsigned int)i; call; }
extern "C" {
void launch_rtin_edge_level(long long n, const float* h, double* e, int s, int size, int rc, int rr, double lim, double tol) { LOOP(rtin_edge_level(h, e, s, size, rc, rr, lim, tol)) }
void launch_rtin_square_level(long long n, const float* h, double* e, int s, int size, int rc, int rr, double lim, double tol) { LOOP(rtin_square_level(h, e, s, size, rc, rr, lim, tol)) }
void launch_rtin_classify(long long n, const double* e, int size, const int* t, long long m, int rc, int rr, double th, int* st) { LOOP(rtin_classify(e, size, t, m, rc, rr, th, st)) }
void launch_rtin_emit(long long n, const int* t, const int* st, const long long* sr, const long long* lr, long long m, int gc, int* nx, long long* o) { LOOP(rtin_emit(t, st, sr, lr, m, gc, nx, o)) }
}
"""


@pytest.fixture(scope="module")
def shim_launch(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is needed to compile kernels/rtin.cu for the CPU")
    d = tmp_path_factory.mktemp("rtin_shim")
    src = d / "shim.cpp"
    src.write_text(SHIM.replace("KERNEL", str(rtin_gpu.KERNEL_FILE)))
    lib_path = d / "librtin.so"
    subprocess.run([gxx, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-x", "c++", str(src), "-o", str(lib_path)],
                   check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))

    def launch(name, n, *args):
        cargs = [ctypes.c_longlong(n)]
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, np.float64):
                cargs.append(ctypes.c_double(a))
            elif isinstance(a, np.int64):
                cargs.append(ctypes.c_longlong(a))
            else:
                cargs.append(ctypes.c_int(a))
        getattr(lib, "launch_" + name)(*cargs)

    return launch


@pytest.mark.parametrize("shape", [(65, 65), (70, 101), (129, 40)])
@pytest.mark.parametrize("kind", ["fractal", "steps"])
@pytest.mark.parametrize("limit", [np.inf, 0.002, 0.02])
def test_cuda_rtin_kernels_match_numba(shim_launch, shape, kind, limit):
    heights = (fractal if kind == "fractal" else step_edges)(*shape, seed=4)
    padded = _padded(heights)
    rows, cols = shape[0] - 1, shape[1] - 1
    ref = rk.build_errors(padded, rows, cols, limit)
    got = rtin_gpu.build_errors(np, shim_launch, padded, rows, cols, limit)
    assert np.array_equal(got, ref)
    # a finite limit leaves upper bounds below it: only "errors > limit" is exact, so emit at the limit itself
    for threshold in (0.002, 0.01) if np.isinf(limit) else (limit,):
        want = rk.emit_triangles(ref, rows, cols, threshold)
        tris = rtin_gpu.emit_triangles(np, shim_launch, got, rows, cols, threshold)
        # same set of triangles (each with the same rotation of its vertices), any order
        key = lambda t: np.sort(t.view([("a", np.int64), ("b", np.int64), ("c", np.int64)]).reshape(-1), order=["a", "b", "c"])
        assert len(tris) == len(want)
        assert np.array_equal(key(np.ascontiguousarray(tris)), key(np.ascontiguousarray(want)))


def test_cupy_launcher_needs_a_device_or_says_so():
    """Where CuPy sees a GPU the launcher compiles rtin.cu; elsewhere it fails with an error, not silently."""
    cp = pytest.importorskip("cupy")
    try:
        available = cp.cuda.is_available()
    except Exception:
        available = False
    if not available:
        with pytest.raises(Exception):
            rtin_gpu.CupyLauncher()
        return
    heights = fractal(130, 97, seed=2)
    tris = rtin_gpu.rtin_triangles_gpu(heights, max_error=0.003)
    from gpurelief.mesh.adaptive import rtin_triangles

    want, _ = rtin_triangles(heights, max_error=0.003)
    assert len(tris) == len(want)
