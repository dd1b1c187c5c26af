"""The chunked device -> host streaming of the GLB writer, driven on the CPU by a fake copier.

This is not a GPU test: FakeCopier stands in for CupyCopier (pinned buffers, a CUDA stream, one
event per chunk) and performs each "device" copy only when the pipeline waits for it, the way an
asynchronous copy lands late. A pipeline that wrote a buffer before waiting, or reused a buffer
still being written, would produce wrong bytes here. tests/test_cupy_ops_gpu.py checks the real
CupyCopier on a GPU.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

from gpurelief.backend import numpy_ops as N
from gpurelief.types import Mesh
from gpurelief.writers.device_stream import DevicePiece, stream_chunks
from gpurelief.writers.glb import glb_into, write_glb_stream
from gpurelief.writers.gltf_doc import build_document


class FakeDeviceArray:
    """A host array posing as device memory: only its bytes and size are reachable."""

    __cuda_array_interface__ = {}  # marks it as device data for gltf_doc / backend.is_device_array

    def __init__(self, array: np.ndarray):
        self._bytes = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        self.nbytes = self._bytes.nbytes


class FakeCopier:
    """Deferred copies: bytes land in the host buffer only at wait(); logs every call."""

    def __init__(self):
        self.buffers: list[np.ndarray] = []
        self.pending: dict[int, tuple] = {}
        self.log: list[tuple] = []
        self.next_token = 0

    def host_buffer(self, nbytes: int) -> np.ndarray:
        buf = np.full(nbytes, 0xAB, np.uint8)  # garbage until a copy lands
        self.buffers.append(buf)
        return buf

    def start(self, piece, offset, nbytes, buffer):
        busy = [t for t, (_, _, _, b) in self.pending.items() if b is buffer]
        assert not busy, "a copy was issued into a buffer whose previous copy was never waited for"
        token = self.next_token
        self.next_token += 1
        self.pending[token] = (piece, offset, nbytes, buffer)
        self.log.append(("start", token))
        return token

    def wait(self, token):
        piece, offset, nbytes, buffer = self.pending.pop(token)
        buffer[:nbytes] = piece.array._bytes[offset : offset + nbytes]
        self.log.append(("wait", token))


def _mesh(shape=(23, 31)) -> Mesh:
    h = np.random.default_rng(0).random(shape, dtype=np.float32)
    return Mesh(
        positions=N.grid_positions(h, dx=0.01, dy=0.01, relief=0.05),
        normals=N.grid_normals(h, dx=0.01, dy=0.01, relief=0.05),
        uvs=N.grid_uvs(shape),
        indices=N.grid_indices(shape),
    )


def _host_glb(mesh: Mesh) -> bytes:
    f = io.BytesIO()
    write_glb_stream(f, build_document(mesh, None))
    return f.getvalue()


@pytest.mark.parametrize("chunk_bytes", [1, 5, 64, 4096, 10**7])
def test_stream_chunks_writes_the_same_bytes_in_order(chunk_bytes):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, 1000, dtype=np.uint8)
    b = rng.standard_normal(77).astype(np.float32)
    items = [b"head", DevicePiece(FakeDeviceArray(a)), b"\x00\x00", DevicePiece(FakeDeviceArray(b)), b"tail"]
    out = io.BytesIO()
    copier = FakeCopier()
    stream_chunks(out.write, items, copier, chunk_bytes=chunk_bytes)
    assert out.getvalue() == b"head" + a.tobytes() + b"\x00\x00" + b.tobytes() + b"tail"
    assert not copier.pending


def test_stream_chunks_host_memory_is_two_chunks_whatever_the_mesh_size():
    big = np.arange(3_000_000, dtype=np.uint32)  # 12 MB "on the device"
    copier = FakeCopier()
    sizes = []
    stream_chunks(lambda v: sizes.append(len(v)), [DevicePiece(FakeDeviceArray(big))], copier, chunk_bytes=1 << 20)
    assert len(copier.buffers) == 2
    assert sum(b.nbytes for b in copier.buffers) == 2 << 20
    assert sum(sizes) == big.nbytes and max(sizes) == 1 << 20


def test_stream_chunks_issues_the_next_copy_before_writing_the_current_chunk():
    data = np.arange(4096, dtype=np.uint8)
    copier = FakeCopier()
    events = []

    def write(view):
        events.append(("write", len(copier.log)))

    stream_chunks(write, [DevicePiece(FakeDeviceArray(data))], copier, chunk_bytes=1024)
    starts = [i for i, (kind, _) in enumerate(copier.log) if kind == "start"]
    waits = [i for i, (kind, _) in enumerate(copier.log) if kind == "wait"]
    assert len(starts) == len(waits) == 4
    for k in range(3):
        assert starts[k + 1] < waits[k]  # copy k+1 in flight while chunk k is waited for and written


def test_stream_chunks_rejects_a_zero_chunk():
    with pytest.raises(ValueError, match="chunk_bytes"):
        stream_chunks(lambda v: None, [], FakeCopier(), chunk_bytes=0)


@pytest.mark.parametrize("chunk_bytes", [3, 4096, 1 << 20])
def test_glb_with_device_pieces_equals_the_host_glb(monkeypatch, chunk_bytes):
    mesh = _mesh()
    want = _host_glb(mesh)
    doc = build_document(mesh, None)
    doc.pieces = [(off, DevicePiece(FakeDeviceArray(np.frombuffer(view, np.uint8)))) for off, view in doc.pieces]
    copier = FakeCopier()
    import gpurelief.writers.gltf_doc as gltf_doc

    monkeypatch.setattr(gltf_doc, "make_copier", lambda piece: copier)
    f = io.BytesIO()
    write_glb_stream(f, doc, chunk_bytes=chunk_bytes)
    assert f.getvalue() == want
    largest = max(v.nbytes for _, v in doc.pieces)
    assert [b.nbytes for b in copier.buffers] == [min(chunk_bytes, largest)] * 2


def test_host_pieces_never_touch_the_device_path(monkeypatch):
    import gpurelief.writers.gltf_doc as gltf_doc

    def boom(piece):
        raise AssertionError("host arrays must be written without a copier")

    monkeypatch.setattr(gltf_doc, "make_copier", boom)
    mesh = _mesh()
    doc = build_document(mesh, None)
    assert all(isinstance(v, memoryview) for _, v in doc.pieces)
    # the CPU path writes numpy memory as is: the positions view aliases the mesh array
    assert np.shares_memory(np.frombuffer(doc.pieces[0][1], np.float32), mesh.positions)
    f = io.BytesIO()
    write_glb_stream(f, doc)  # raises if it asked for a copier
    assert f.getvalue() == _host_glb(mesh)


def test_glb_into_memory_with_device_pieces_equals_the_file_bytes():
    mesh = _mesh()
    want = _host_glb(mesh)
    doc = build_document(mesh, None)
    doc.pieces = [(off, DevicePiece(FakeDeviceArray(np.frombuffer(view, np.uint8)))) for off, view in doc.pieces]
    copier = FakeCopier()
    out = np.full(len(want) + 10, 0x55, np.uint8)
    got = glb_into(doc, out, copier=copier)
    assert got.tobytes() == want
    assert copier.buffers == []  # straight into the destination: no staging buffers


def test_glb_into_memory_from_host_arrays_equals_the_file_bytes():
    mesh = _mesh((5, 9))
    assert glb_into(build_document(mesh, None)).tobytes() == _host_glb(mesh)


def test_glb_into_rejects_a_short_buffer():
    with pytest.raises(ValueError, match="at least"):
        glb_into(build_document(_mesh((3, 3)), None), np.empty(10, np.uint8))


def test_cupy_copier_copies_the_right_byte_ranges_with_a_stand_in_runtime(monkeypatch):
    """CupyCopier's own calls (pointer + offset, size, direction, stream, events) against a stand-in
    CUDA runtime that copies host memory with memmove. Not a GPU test: it cannot see asynchrony."""
    import ctypes
    import sys
    import types

    from gpurelief.writers.device_stream import CupyCopier

    calls = []

    class Event:
        def __init__(self, disable_timing=False):
            self.recorded = False

        def record(self, stream=None):
            self.recorded = True

        def synchronize(self):
            assert self.recorded

    class Stream:
        ptr = 1234

        def __init__(self, non_blocking=False):
            assert non_blocking  # must not serialise with the legacy default stream

        def wait_event(self, event):
            calls.append("wait_event")

    def memcpy_async(dst, src, size, kind, stream):
        assert kind == 2 and stream == Stream.ptr
        calls.append(size)
        ctypes.memmove(dst, src, size)

    def record_on_current_stream():
        event = Event()
        event.record()
        return event

    current = types.SimpleNamespace(record=record_on_current_stream)
    runtime = types.SimpleNamespace(memcpyAsync=memcpy_async, memcpyDeviceToHost=2)
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Stream=Stream, Event=Event, runtime=runtime, get_current_stream=lambda: current))
    cupyx = types.SimpleNamespace(empty_pinned=lambda shape, dtype: np.empty(shape, dtype))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)

    data = np.random.default_rng(3).integers(0, 255, 10_001, dtype=np.uint8)

    device_like = types.SimpleNamespace(nbytes=data.nbytes, data=types.SimpleNamespace(ptr=data.ctypes.data))

    out = io.BytesIO()
    stream_chunks(out.write, [b"<", DevicePiece(device_like), b">"], CupyCopier(), chunk_bytes=4096)
    assert out.getvalue() == b"<" + data.tobytes() + b">"
    assert calls == ["wait_event", 4096, 4096, 1809]
