"""End to end and per stage, --max-size full, against the raw-write floor and a trimesh export.

Run: python3 -m pytest bench/test_bench_pipeline.py --benchmark-only --benchmark-json=bench/results/pipeline.json
then python3 bench/report.py bench/results/pipeline.json for the README table.
"""
from __future__ import annotations

import os

import pytest
from PIL import Image as PILImage

import gpurelief
from gpurelief.backend import numpy_ops as ops
from gpurelief.condition import condition
from gpurelief.decode import load_image
from gpurelief.depth import estimate_depth
from gpurelief.mesh.grid import grid_mesh
from gpurelief.texture import make_texture
from gpurelief.writers.glb import write_glb

SIZES = ["1024x1024", "4096x3072"]

ROUNDS = 3


@pytest.fixture(scope="module")
def staged(photos):
    """Every stage's input, computed once per size so each stage is timed alone."""
    out = {}
    for name, path in photos.items():
        image = load_image(path)
        depth = estimate_depth(image)
        hf = condition(depth, image_size=(image.height, image.width), grid_size=(image.height, image.width),
                       clip_pct=(1.0, 99.0))
        mesh = grid_mesh(hf)
        texture, _ = make_texture(image)
        out[name] = dict(path=path, image=image, depth=depth, hf=hf, mesh=mesh, texture=texture)
    return out


def _run(benchmark, fn, setup=None):
    return benchmark.pedantic(fn, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("size", SIZES)
def test_end_to_end(benchmark, photos, bench_dir, size):
    benchmark.group = f"{size} pipeline"
    out = bench_dir / f"e2e_{size}.glb"

    def run():
        gpurelief.convert(photos[size], out, max_size=None)
        os.unlink(out)

    _run(benchmark, run)


@pytest.mark.parametrize("size", SIZES)
def test_peer_numpy_mesh_trimesh_export(benchmark, photos, staged, bench_dir, size):
    """What a user would otherwise write: the same numpy stages, then trimesh builds and exports the GLB."""
    trimesh = pytest.importorskip("trimesh")
    benchmark.group = f"{size} pipeline"
    out = bench_dir / f"peer_{size}.glb"

    def run():
        image = load_image(photos[size])
        depth = estimate_depth(image)
        hf = condition(depth, image_size=(image.height, image.width), grid_size=(image.height, image.width),
                       clip_pct=(1.0, 99.0))
        mesh = grid_mesh(hf)
        _trimesh_export(trimesh, mesh, image, out)
        os.unlink(out)

    _run(benchmark, run)


def _trimesh_export(trimesh, mesh, image, out):
    uv = mesh.uvs.copy()
    uv[:, 1] = 1.0 - uv[:, 1]  # trimesh takes OpenGL UVs (v up) and flips them on export
    tm = trimesh.Trimesh(
        vertices=mesh.positions,
        faces=mesh.indices.reshape(-1, 3),
        vertex_normals=mesh.normals,
        visual=trimesh.visual.TextureVisuals(uv=uv, image=PILImage.fromarray(image.pixels)),
    )
    tm.export(str(out), file_type="glb")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stage", ["decode", "depth", "condition", "mesh", "texture"])
def test_stage(benchmark, staged, size, stage):
    benchmark.group = f"{size} stages"
    s = staged[size]
    image_size = (s["image"].height, s["image"].width)
    fns = {
        "decode": lambda: load_image(s["path"]),
        "depth": lambda: estimate_depth(s["image"]),
        "condition": lambda: condition(s["depth"], image_size=image_size, grid_size=image_size, clip_pct=(1.0, 99.0)),
        "mesh": lambda: grid_mesh(s["hf"]),
        "texture": lambda: make_texture(s["image"]),
    }
    _run(benchmark, fns[stage])


@pytest.mark.parametrize("size", SIZES)
def test_write_glb(benchmark, staged, bench_dir, size):
    benchmark.group = f"{size} write"
    s = staged[size]
    out = bench_dir / f"ours_{size}.glb"

    def run():
        write_glb(out, s["mesh"], s["texture"])
        os.unlink(out)

    _run(benchmark, run)


@pytest.mark.parametrize("size", SIZES)
def test_write_raw_floor(benchmark, staged, bench_dir, size):
    """The floor: the very bytes our writer produces, written with one write() to a fresh file."""
    benchmark.group = f"{size} write"
    s = staged[size]
    ref = bench_dir / f"ref_{size}.glb"
    write_glb(ref, s["mesh"], s["texture"])
    data = ref.read_bytes()
    os.unlink(ref)
    out = bench_dir / f"raw_{size}.glb"

    def run():
        with open(out, "wb", buffering=0) as f:
            f.write(data)
        os.unlink(out)

    _run(benchmark, run)


@pytest.mark.parametrize("size", SIZES)
def test_write_trimesh(benchmark, staged, bench_dir, size):
    trimesh = pytest.importorskip("trimesh")
    benchmark.group = f"{size} write"
    s = staged[size]
    out = bench_dir / f"trimesh_{size}.glb"

    def run():
        _trimesh_export(trimesh, s["mesh"], s["image"], out)
        os.unlink(out)

    _run(benchmark, run)
