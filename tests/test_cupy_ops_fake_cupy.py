"""cupy_ops' own Python code, run on the CPU with a stand-in `cupy` module. Not a GPU test.

The stand-in is numpy under CuPy's names; its RawModule runs each kernel through the C++ host shim
(tests/kernel_host.py) instead of the GPU. What this checks that test_kernels_host.py does not:
every cupy_ops wrapper forwards its arguments correctly, the kernels are compiled (real NVRTC,
the run-time path) and loaded once per device and family, and the CuPy branch of the Gaussian
smoothing (numpy's sequential scan here, so exact) matches numpy_ops. What it cannot check:
CuPy itself, the CUDA launch, device memory; that is tests/test_cupy_ops_gpu.py's job on a GPU.
"""
from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gpurelief.backend import numpy_ops as N

from kernel_host import HostKernels, compiler

if os.environ.get("GPURELIEF_REQUIRE_CUPY") != "1":
    pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="needs the gpu extra (CuPy's NVRTC binding)")
pytestmark = pytest.mark.skipif(compiler() is None, reason="needs g++ for the kernel host shim")

DX, DY, RELIEF = 0.0123, 0.0117, 0.173


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """-> (cupy_ops imported against the stand-in, record of module loads)."""
    host = HostKernels(tmp_path_factory.mktemp("fake-cupy-host"))
    loads: list[tuple[int, str]] = []
    state = {"device": 0}

    class RawModule:
        def __init__(self, code=None, *, path=None, options=()):
            assert code is None and path is not None, "cupy_ops must load the cubin it compiled"
            cubin = Path(path).read_bytes()
            self.family = Path(path).name.split("-sm_")[0]
            assert cubin[:4] == b"\x7fELF"  # a real NVRTC cubin
            loads.append((state["device"], self.family))

        def get_function(self, name):
            family = self.family

            def launch(grid, block, args):
                host(family, name, grid, block, list(args))

            return launch

    cupy = types.ModuleType("cupy")
    cupy.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    cupy.__version__ = "stand-in"
    cupy.asnumpy = np.asarray
    cupy.RawModule = RawModule
    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDevice=lambda: state["device"]),
        Device=lambda index: types.SimpleNamespace(compute_capability="90"),
    )
    # load the real NVRTC binding (it needs the real CuPy once) before the stand-in takes the name
    importlib.import_module("cupy")
    real_nvrtc = importlib.import_module("cupy_backends.cuda.libs.nvrtc")
    real_nvrtc.getVersion(), real_nvrtc.getSupportedArchs()
    saved = {k: sys.modules.get(k) for k in ("cupy", "gpurelief.backend.cupy_ops")}
    cache = tmp_path_factory.mktemp("kernel-cache")
    old_env = os.environ.get("GPURELIEF_CACHE_DIR")
    os.environ["GPURELIEF_CACHE_DIR"] = str(cache)
    sys.modules["cupy"] = cupy
    sys.modules.pop("gpurelief.backend.cupy_ops", None)
    try:
        ops = importlib.import_module("gpurelief.backend.cupy_ops")
        yield ops, loads, state
    finally:
        import gpurelief.backend as backend_pkg

        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        # `from gpurelief.backend import cupy_ops` reads the package attribute first: restore it too
        if saved["gpurelief.backend.cupy_ops"] is None:
            backend_pkg.__dict__.pop("cupy_ops", None)
        else:
            backend_pkg.cupy_ops = saved["gpurelief.backend.cupy_ops"]
        if old_env is None:
            os.environ.pop("GPURELIEF_CACHE_DIR", None)
        else:
            os.environ["GPURELIEF_CACHE_DIR"] = old_env


def heights_like(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(0.5 + 0.2 * rng.standard_normal(shape), 0, 1).astype(np.float32)


def same_bits(got, want) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("shape", [(2, 2), (33, 17), (130, 259)])
def test_cupy_ops_wrappers_forward_to_the_kernels_and_match_numpy(fake, shape):
    C, _, _ = fake
    h = heights_like(shape)
    same_bits(C.grid_positions(h, dx=DX, dy=DY, relief=RELIEF), N.grid_positions(h, dx=DX, dy=DY, relief=RELIEF))
    same_bits(C.grid_normals(h, dx=DX, dy=DY, relief=RELIEF), N.grid_normals(h, dx=DX, dy=DY, relief=RELIEF))
    same_bits(C.grid_uvs(shape), N.grid_uvs(shape))
    same_bits(C.grid_indices(shape), N.grid_indices(shape))
    same_bits(C.grid_indices(shape, np.uint32), N.grid_indices(shape, np.uint32))
    depth = (np.random.default_rng(1).standard_normal(shape) * 3).astype(np.float32)
    for case in ({}, {"clip_lo_pct": 1.0, "clip_hi_pct": 99.0, "invert": True, "contrast": 1.4},
                 {"smooth_px": 1.2, "clip_lo_pct": 2.0}):
        same_bits(C.condition_heights(depth, **case), N.condition_heights(depth, **case))
    same_bits(C.gaussian_blur(depth, 2.0), N.gaussian_blur(depth, 2.0))
    same_bits(C.box_blur(depth, 3), N.box_blur(depth, 3))
    valid = np.random.default_rng(2).random(shape) < 0.5
    keep = C.cut_cells(valid)
    same_bits(keep, N.cut_cells(valid))
    if keep.any():
        for got, want in zip(C.compact_grid(keep, shape), N.compact_grid(keep, shape)):
            same_bits(got, want)
    p, n = N.grid_positions(h, dx=DX, dy=DY, relief=RELIEF), N.grid_normals(h, dx=DX, dy=DY, relief=RELIEF)
    centre, half = C.quantization_transform(p)
    same_bits(C.quantize_positions(p, centre, half), N.quantize_positions(p, centre, half))
    same_bits(C.quantize_normals(n, half), N.quantize_normals(n, half))
    same_bits(C.quantize_uvs(N.grid_uvs(shape)), N.quantize_uvs(N.grid_uvs(shape)))
    assert C.grid_shape is N.grid_shape and C.index_dtype is N.index_dtype


def test_cupy_ops_loads_each_family_once_per_device(fake):
    C, loads, state = fake
    h = heights_like((9, 11))
    for _ in range(3):
        C.grid_positions(h, dx=DX, dy=DY, relief=RELIEF)
        C.grid_uvs((9, 11))
        C.grid_normals(h, dx=DX, dy=DY, relief=RELIEF)
    assert loads.count((0, "grid")) == 1 and loads.count((0, "normals")) == 1
    state["device"] = 1  # a second GPU gets its own module
    try:
        C.grid_uvs((9, 11))
        C.grid_uvs((9, 11))
    finally:
        state["device"] = 0
    assert loads.count((1, "grid")) == 1
