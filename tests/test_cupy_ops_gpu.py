"""cupy_ops on a real GPU: the same call gives the same arrays (and the same GLB bytes) as numpy_ops.

Marked `gpu` and skipped where CuPy sees no CUDA device, i.e. on the dev/CI machines; run on an H200 by
bench/gpu_session.sh (bench/results/README.md). The CPU twin of every comparison is tests/test_kernels_host.py.
Run on a GPU machine with: python3 -m pytest -m gpu tests/test_cupy_ops_gpu.py
"""
from __future__ import annotations

import io

import numpy as np
import pytest

from gpurelief.backend import numpy_ops as N
from gpurelief.backend.device import select_backend

from heightmaps import heights_like

# the product's own probe (--device auto): a device CuPy can use, or the CPU
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not select_backend("auto").is_gpu, reason="needs a CUDA device visible to CuPy"),
]

SHAPES = [(2, 2), (3, 5), (17, 33), (257, 129), (1201, 1999)]
DX, DY, RELIEF = 0.0123, 0.0117, 0.173


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


@pytest.fixture(scope="module")
def C():
    from gpurelief.backend import cupy_ops

    return cupy_ops



def same_bits(device_array, host_array) -> None:
    got = device_array.get()
    assert got.dtype == host_array.dtype and got.shape == host_array.shape
    assert np.array_equal(got.view(np.uint8), host_array.view(np.uint8))


@pytest.mark.parametrize("shape", SHAPES)
def test_gpu_grid_arrays_match_numpy_bit_for_bit(cp, C, shape):
    h = heights_like(shape)
    d = cp.asarray(h)
    same_bits(C.grid_positions(d, dx=DX, dy=DY, relief=RELIEF), N.grid_positions(h, dx=DX, dy=DY, relief=RELIEF))
    same_bits(C.grid_normals(d, dx=DX, dy=DY, relief=RELIEF), N.grid_normals(h, dx=DX, dy=DY, relief=RELIEF))
    same_bits(C.grid_uvs(shape), N.grid_uvs(shape))
    for dtype in (None, np.uint16, np.uint32):
        same_bits(C.grid_indices(shape, dtype), N.grid_indices(shape, dtype))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "case", [{}, {"clip_lo_pct": 1.0, "clip_hi_pct": 99.0}, {"invert": True, "contrast": 1.7}],
    ids=["plain", "clip", "invert-contrast"],
)
def test_gpu_condition_matches_numpy_bit_for_bit(cp, C, shape, case):
    rng = np.random.default_rng(3)
    depth = (rng.standard_normal(shape) * 4 + 10).astype(np.float32)
    depth.reshape(-1)[:: max(1, depth.size // 5)] = np.nan
    same_bits(C.condition_heights(cp.asarray(depth), **case), N.condition_heights(depth, **case))


def test_gpu_condition_gamma_and_smoothing_within_documented_tolerance(cp, C):
    depth = np.random.default_rng(4).random((301, 211), dtype=np.float32)
    for case in ({"gamma": 2.2}, {"smooth_px": 1.5}, {"smooth_px": 2.0, "gamma": 0.45, "contrast": 1.3}):
        got = C.condition_heights(cp.asarray(depth), **case).get()
        want = N.condition_heights(depth, **case)
        # README: gamma <= 1 ulp (double pow vs libm powf); smoothing: CuPy's parallel float64 scan
        np.testing.assert_allclose(got, want, rtol=0, atol=4 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("shape", SHAPES)
def test_gpu_cut_and_compact_match_numpy(cp, C, shape):
    valid = np.random.default_rng(6).random(shape) < 0.4
    keep = C.cut_cells(cp.asarray(valid))
    same_bits(keep, N.cut_cells(valid))
    if not bool(keep.any()):
        return
    ids, indices = C.compact_grid(keep, shape)
    want_ids, want_indices = N.compact_grid(N.cut_cells(valid), shape)
    same_bits(ids, want_ids)
    same_bits(indices, want_indices)


@pytest.mark.parametrize("shape", SHAPES)
def test_gpu_quantization_matches_numpy(cp, C, shape):
    h = heights_like(shape, seed=7)
    p, n, uv = N.grid_positions(h, dx=DX, dy=DY, relief=RELIEF), N.grid_normals(h, dx=DX, dy=DY, relief=RELIEF), N.grid_uvs(shape)
    centre, half = C.quantization_transform(cp.asarray(p))
    want_centre, want_half = N.quantization_transform(p)
    assert np.array_equal(centre, want_centre) and np.array_equal(half, want_half)
    same_bits(C.quantize_positions(cp.asarray(p), centre, half), N.quantize_positions(p, centre, half))
    same_bits(C.quantize_normals(cp.asarray(n), half), N.quantize_normals(n, half))
    same_bits(C.quantize_uvs(cp.asarray(uv)), N.quantize_uvs(uv))


@pytest.mark.parametrize("rows", [1, 1000, 2_000_003])
def test_gpu_column_bounds_match_numpy(cp, C, rows):
    table = (np.random.default_rng(rows).standard_normal((rows, 3)) * [1, 100, 0.01]).astype(np.float32)
    assert C.column_bounds(cp.asarray(table)) == N.column_bounds(table)


def test_gpu_kernels_compile_once_per_device(cp, C):
    C.grid_uvs((4, 4))
    dev = cp.cuda.runtime.getDevice()
    module = C._modules[(dev, "grid")]
    C.grid_uvs((5, 5))
    C.grid_positions(cp.zeros((3, 3), cp.float32), dx=1.0, dy=1.0, relief=1.0)
    assert C._modules[(dev, "grid")] is module


def test_gpu_auto_device_picks_the_gpu():
    from gpurelief.backend.device import select_backend

    b = select_backend("auto")
    assert b.name == "cuda:0" and b.note is None and "cuda:0 (" in b.description


def test_gpu_out_of_memory_is_a_device_error(cp):
    from gpurelief.backend.device import select_backend
    from gpurelief.errors import DeviceError

    with pytest.raises(DeviceError, match="out of GPU memory"):
        with select_backend("cuda").activate():
            cp.empty(1 << 50, dtype=cp.uint8)


@pytest.mark.parametrize("chunk_bytes", [4096, 1 << 20, 8 << 20])
def test_gpu_glb_streamed_from_device_equals_the_cpu_glb(cp, chunk_bytes):
    from gpurelief.types import Mesh
    from gpurelief.writers.glb import write_glb_stream
    from gpurelief.writers.gltf_doc import build_document

    shape = (301, 517)
    h = heights_like(shape)
    host = Mesh(N.grid_positions(h, dx=DX, dy=DY, relief=RELIEF), N.grid_normals(h, dx=DX, dy=DY, relief=RELIEF),
                N.grid_uvs(shape), N.grid_indices(shape))
    dev = Mesh(*(cp.asarray(a) for a in (host.positions, host.normals, host.uvs, host.indices)))
    want, got = io.BytesIO(), io.BytesIO()
    write_glb_stream(want, build_document(host, None))
    write_glb_stream(got, build_document(dev, None), chunk_bytes=chunk_bytes)
    assert got.getvalue() == want.getvalue()


def test_gpu_convert_writes_the_same_glb_as_the_cpu(tmp_path, photo_jpeg, gltf_validator):
    from gpurelief.pipeline import convert

    cpu = convert(photo_jpeg, tmp_path / "cpu.glb", device="cpu")
    gpu = convert(photo_jpeg, tmp_path / "gpu.glb", device="cuda")
    assert gpu.device.startswith("cuda:0") and not gpu.notes
    assert (tmp_path / "gpu.glb").read_bytes() == (tmp_path / "cpu.glb").read_bytes()
    assert cpu.vertex_count == gpu.vertex_count
    gltf_validator(tmp_path / "gpu.glb")


def test_gpu_adaptive_convert_matches_the_cpu_mesh(tmp_path, photo_jpeg, gltf_validator):
    """--device cuda --mesh adaptive --max-error: RTIN on the GPU (kernels/rtin.cu), same mesh as numba."""
    import trimesh

    from gpurelief.pipeline import convert

    kw = dict(mesh="adaptive", max_error="0.2%")
    cpu = convert(photo_jpeg, tmp_path / "cpu.glb", device="cpu", **kw)
    gpu = convert(photo_jpeg, tmp_path / "gpu.glb", device="cuda", **kw)
    assert gpu.device.startswith("cuda:0") and not gpu.notes
    assert cpu.vertex_count == gpu.vertex_count
    a, b = (trimesh.load(tmp_path / f"{n}.glb", force="mesh", process=False) for n in ("cpu", "gpu"))
    assert np.array_equal(a.vertices, b.vertices)
    assert sorted(map(tuple, np.sort(a.faces, axis=1))) == sorted(map(tuple, np.sort(b.faces, axis=1)))
    gltf_validator(tmp_path / "gpu.glb")


def test_gpu_condition_keeps_a_device_depth_map_on_the_device(cp):
    from gpurelief.backend import cupy_ops
    from gpurelief.condition import condition
    from gpurelief.types import DepthMap

    depth = np.random.default_rng(9).random((40, 60), dtype=np.float32)
    hf = condition(DepthMap(cp.asarray(depth)), image_size=(40, 60), grid_size=(40, 60), clip_pct=(1.0, 99.0),
                   array_ops=cupy_ops)
    assert isinstance(hf.heights, cp.ndarray)
    same_bits(hf.heights, N.condition_heights(depth, clip_lo_pct=1.0, clip_hi_pct=99.0))
