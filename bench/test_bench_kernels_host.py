"""CPU only, a side measure: the CUDA kernels run serially through the C++ host shim (g++ -O2
-ffp-contract=off, one core) against the numpy twins, 2049x2049 grid. Says nothing about the GPU.

Run: python3 -m pytest bench/test_bench_kernels_host.py --benchmark-only
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from kernel_host import compiler, host_ops  # noqa: E402

from gpurelief.backend import numpy_ops as N  # noqa: E402

pytestmark = pytest.mark.skipif(compiler() is None, reason="needs g++")

SHAPE = (2049, 2049)
KW = dict(dx=1 / 2048, dy=1 / 2048, relief=0.1)


@pytest.fixture(scope="module")
def kops(tmp_path_factory):
    ops = host_ops(tmp_path_factory.mktemp("bench-kernels-host"))
    ops.launch.asan = False
    return ops


@pytest.fixture(scope="module")
def heights():
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float32)
    return (0.5 + 0.4 * np.sin(x / 50) * np.cos(y / 30)).astype(np.float32)


@pytest.mark.parametrize("backend", ["numpy", "host_shim"])
@pytest.mark.parametrize("stage", ["grid_normals", "grid_positions", "grid_indices"])
def test_bench_kernel_host_vs_numpy(benchmark, kops, heights, backend, stage):
    ops = N if backend == "numpy" else kops
    fn = {
        "grid_normals": lambda: ops.grid_normals(heights, **KW),
        "grid_positions": lambda: ops.grid_positions(heights, **KW),
        "grid_indices": lambda: ops.grid_indices(SHAPE, np.uint32),
    }[stage]
    fn()
    benchmark.group = stage
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
