"""GLB size and write time per --compress mode on a full 2049^2 grid (8.4M triangles) with a 2048^2 JPEG.

    python3 -m pytest bench/test_compress_size.py --benchmark-only

Target (issue 5): meshopt output at most 15% of the plain float GLB. Written to bench/results/compress-size.md.
"""
from __future__ import annotations

import io
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heightmaps import fractal, step_edges

pytest.importorskip("meshopt")

from gpurelief.mesh.grid import grid_mesh  # noqa: E402
from gpurelief.types import Heightfield, Texture  # noqa: E402
from gpurelief.writers.glb import write_glb  # noqa: E402

def photo_like(h, w):
    """tests/conftest.py's photo maker, loaded by path (bench/ has its own conftest module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_tests_conftest", Path(__file__).parents[1] / "tests" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.photo_like(h, w)


N = int(os.environ.get("GPURELIEF_BENCH_GRID", "2049"))
MODES = ["none", "quantize", "meshopt"] + (["draco"] if os.environ.get("GPURELIEF_BENCH_DRACO") else [])
SIZES: dict = {}
_CACHE: dict = {}


def case(kind):
    if kind not in _CACHE:
        heights = {"fractal": fractal, "photo": step_edges}[kind](N, N, seed=1)
        mesh = grid_mesh(Heightfield(heights, image_size=(N, N)), width=1.0, relief_frac=0.1)
        buf = io.BytesIO()
        Image.fromarray(photo_like(N - 1, N - 1)).save(buf, "JPEG", quality=90)
        _CACHE[kind] = (mesh, Texture(buf.getvalue(), "image/jpeg", N - 1, N - 1))
    return _CACHE[kind]


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    if not SIZES:
        return
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"], capture_output=True, text=True).stdout
    lines = [
        f"# GLB size per --compress mode, {N}^2 full grid + {N - 1}^2 JPEG q90 (one run)", "",
        f"Machine: {cpu.strip()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f}.", "",
        "| map | mode | bytes | / plain | write time |", "|---|---|---:|---:|---:|",
    ]
    for (kind, mode), (size, t) in SIZES.items():
        plain = SIZES[(kind, "none")][0]
        lines.append(f"| {kind} | {mode} | {size:,} | {size / plain:.3f} | {t:.2f} s |")
    out = Path(__file__).parent / "results" / "compress-size.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["photo", "fractal"])
def test_glb_size(benchmark, tmp_path, kind, mode):
    mesh, texture = case(kind)
    path = tmp_path / f"{kind}-{mode}.glb"
    size = benchmark.pedantic(write_glb, args=(path, mesh, texture), kwargs={"compress": mode}, rounds=1, iterations=1)
    SIZES[(kind, mode)] = (size, benchmark.stats.stats.median)
    benchmark.extra_info.update(bytes=size)
    if mode == "meshopt":
        assert size <= 0.15 * SIZES[(kind, "none")][0]
