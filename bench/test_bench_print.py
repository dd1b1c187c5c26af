"""Print path benchmarks on a 1025 x 1025 grid (2.1M top triangles): solid building and each print writer.

Run: python3 -m pytest bench/test_bench_print.py --benchmark-only --benchmark-columns=median,min,rounds
The trimesh STL export is the independent baseline for the STL writer (same triangles, same bytes count).
"""
from __future__ import annotations

import numpy as np
import pytest

from gpurelief.mesh.grid import grid_mesh
from gpurelief.mesh.solid import solid_mesh
from gpurelief.types import Heightfield
from gpurelief.writers.obj import write_obj
from gpurelief.writers.ply import write_ply
from gpurelief.writers.stl import write_stl
from gpurelief.writers.threemf import write_3mf

N = 1025


@pytest.fixture(scope="module")
def top():
    y, x = np.mgrid[0:N, 0:N].astype(np.float32) / (N - 1)
    heights = 0.5 + 0.5 * np.sin(6 * x) * np.cos(5 * y)
    return grid_mesh(Heightfield(heights=heights.astype(np.float32), image_size=(N, N)), width=150.0,
                     relief_frac=5 / 150, units="mm")


@pytest.fixture(scope="module")
def solid(top):
    return solid_mesh(top, base=2.0)


def test_bench_solid_mesh(benchmark, top):
    out = benchmark.pedantic(solid_mesh, args=(top,), kwargs=dict(base=2.0), rounds=3, iterations=1)
    assert out.triangle_count == top.triangle_count + 3 * 4 * (N - 1)


def test_bench_write_stl(benchmark, solid, tmp_path):
    size = benchmark.pedantic(write_stl, args=(tmp_path / "a.stl", solid), kwargs=dict(allow_large=True),
                              rounds=3, iterations=1)
    assert size == 84 + 50 * solid.triangle_count


def test_bench_trimesh_stl_export_baseline(benchmark, solid, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    path = tmp_path / "b.stl"
    faces = solid.indices.reshape(-1, 3)

    def export():  # a fresh Trimesh each round: its cached normals/triangles must not carry over
        trimesh.Trimesh(solid.positions, faces, process=False).export(path)

    benchmark.pedantic(export, rounds=3, iterations=1)
    assert path.stat().st_size == 84 + 50 * solid.triangle_count


def test_bench_write_3mf_with_colours(benchmark, solid, tmp_path):
    colors = np.full((solid.vertex_count, 3), 128, np.uint8)
    benchmark.pedantic(write_3mf, args=(tmp_path / "a.3mf", solid), kwargs=dict(colors=colors), rounds=1, iterations=1)


def test_bench_write_ply_with_colours(benchmark, solid, tmp_path):
    colors = np.full((solid.vertex_count, 3), 128, np.uint8)
    benchmark.pedantic(write_ply, args=(tmp_path / "a.ply", solid), kwargs=dict(colors=colors), rounds=3, iterations=1)


def test_bench_write_obj(benchmark, solid, tmp_path):
    benchmark.pedantic(write_obj, args=(tmp_path / "a.obj", solid, None), rounds=1, iterations=1)
