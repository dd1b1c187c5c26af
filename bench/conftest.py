"""Benchmark fixtures: photo-like JPEGs made once per session, machine facts recorded with the results.

Height maps for the mesher benchmarks come from tests/heightmaps.py (tests/ is put on sys.path).
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# numba compiles into a fresh cache for every benchmark session: a cached function does not see changes to the
# functions it inlined from other files. (A cache left by another run once made the RTIN pyramid up to 1.5x
# slower: its parallel and serial level kernels shared one cache entry, so whichever compiled first served
# both; now each is compiled once.) Set NUMBA_CACHE_DIR to keep one.
if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="gpurelief-bench-numba-")
    atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], True)

import platform
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpurelief.synthetic import photo_like

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SIZES = {"1024x1024": (1024, 1024), "4096x3072": (3072, 4096)}


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="session")
def photos(bench_dir) -> dict[str, Path]:
    out = {}
    for name, (h, w) in SIZES.items():
        path = bench_dir / f"photo_{name}.jpg"
        Image.fromarray(photo_like(h, w, seed=7)).save(path, quality=90)
        out[name] = path
    return out


def pytest_benchmark_update_machine_info(config, machine_info):
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    import os

    import PIL

    machine_info["cpu_model"] = model
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["numpy"] = np.__version__
    machine_info["pillow"] = PIL.__version__
    try:
        import trimesh

        machine_info["trimesh"] = trimesh.__version__
    except ImportError:
        pass
