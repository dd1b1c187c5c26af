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


@pytest.mark.parametrize("shape", [(65, 65), (70, 101)])
@pytest.mark.parametrize("bound", [0.0, 0.004])
@pytest.mark.parametrize("quality", [False, "fast", "full"])
def test_the_device_mesh_path_builds_the_same_mesh_as_the_cpu(shim_launch, shape, bound, quality):
    """adaptive_mesh(device=...) as `--device cuda --mesh adaptive` runs it (padding, errors, triangles, vertex
    compaction, attributes; with a quality pass, the device's triangles go through it on the host), with
    numpy + the host-shim launcher standing in for CuPy + CUDA."""
    from gpurelief.backend import numpy_ops
    from gpurelief.mesh.adaptive import adaptive_mesh
    from gpurelief.types import Heightfield

    heights = step_edges(*shape, seed=7)
    hf = Heightfield(heights=heights, image_size=(shape[0], shape[1]))
    kw = dict(width=0.3, relief_frac=0.1, max_error_frac=bound, quality_pass=quality)
    cpu = adaptive_mesh(hf, **kw)
    dev = adaptive_mesh(hf, device=rtin_gpu.DeviceMesher(np, shim_launch, numpy_ops), **kw)
    assert dev.extras["threshold"] == cpu.extras["threshold"]
    assert dev.extras["max_error"] == (cpu.extras["max_error"] if quality else None)
    # the same vertices (ids ascending on both paths) with bit-identical attributes
    for name in ("positions", "normals", "uvs"):
        assert np.array_equal(getattr(dev, name), getattr(cpu, name)), name
    assert dev.indices.dtype == cpu.indices.dtype
    rot = lambda t: np.roll(t, -int(np.argmin(t)))  # noqa: E731 - same winding, any starting vertex
    tris = lambda m: sorted(tuple(rot(t)) for t in m.indices.reshape(-1, 3).astype(np.int64))  # noqa: E731
    assert len(dev.indices) == len(cpu.indices) and tris(dev) == tris(cpu)


def test_gpu_adaptive_covers_max_error_only():
    from gpurelief.backend.device import cpu_backend
    from gpurelief.pipeline import ConvertOptions, device_mesher, gpu_adaptive

    assert gpu_adaptive(ConvertOptions(mesh="adaptive", max_error="0.1%"))
    assert not gpu_adaptive(ConvertOptions(mesh="adaptive", max_triangles=1000))
    assert gpu_adaptive(ConvertOptions(mesh="adaptive", quality_pass="full"))  # RTIN on the GPU, the pass on the CPU
    assert not gpu_adaptive(ConvertOptions(mesh="grid"))
    assert device_mesher(cpu_backend(), ConvertOptions(mesh="adaptive")) is None
