"""Stream device (GPU) arrays into an output file through two pinned host buffers.

Each device array is cut into chunks of `chunk_bytes`; chunk k+1 is copied device -> pinned host
on its own CUDA stream while chunk k is written to the file, so the host never holds more than
2 * chunk_bytes of mesh data, whatever the mesh size. Host arrays never come here: the CPU path
keeps its zero-copy writes (gltf_doc.write_pieces).

The pipeline (`stream_chunks`) only talks to a `ChunkCopier`; CupyCopier is the CUDA one, and the
CPU tests drive the same pipeline with a deferred-copy fake to check ordering and memory bounds.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import numpy as np

DEFAULT_CHUNK_BYTES = 8 << 20  # 8 MiB: large enough for full PCIe bandwidth, small next to any mesh


@dataclass
class DevicePiece:
    """A C-contiguous device array whose bytes go into the file as one bufferView."""

    array: Any

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)


class ChunkCopier(Protocol):
    def host_buffer(self, nbytes: int) -> np.ndarray:
        """-> a (nbytes,) uint8 host buffer (pinned for CUDA)."""

    def start(self, piece: DevicePiece, offset: int, nbytes: int, buffer: np.ndarray) -> Any:
        """Begin copying piece bytes [offset, offset + nbytes) into buffer[:nbytes]; -> a token."""

    def wait(self, token: Any) -> None:
        """Block until the copy behind `token` has landed in its buffer."""


class CupyCopier:
    """Device -> pinned host copies on a private non-blocking stream, one event per chunk."""

    def __init__(self):
        import cupy
        import cupyx

        self.cupy, self.cupyx = cupy, cupyx
        self.stream = cupy.cuda.Stream(non_blocking=True)
        # the arrays were written by kernels on the current stream: copy only after those finish
        self.stream.wait_event(cupy.cuda.get_current_stream().record())

    def host_buffer(self, nbytes: int) -> np.ndarray:
        return self.cupyx.empty_pinned((nbytes,), dtype=np.uint8)  # from CuPy's pinned pool: reused

    def start(self, piece: DevicePiece, offset: int, nbytes: int, buffer: np.ndarray):
        rt = self.cupy.cuda.runtime
        rt.memcpyAsync(buffer.ctypes.data, piece.array.data.ptr + offset, nbytes, rt.memcpyDeviceToHost, self.stream.ptr)
        event = self.cupy.cuda.Event(disable_timing=True)
        event.record(self.stream)
        return event

    def wait(self, token) -> None:
        token.synchronize()


def make_copier(piece: DevicePiece) -> ChunkCopier:
    """The copier for a piece's array type (CuPy is the only device array type gpurelief makes)."""
    return CupyCopier()


@dataclass
class _Chunk:
    piece: DevicePiece
    offset: int
    nbytes: int


def stream_chunks(
    write: Callable[[Any], Any],
    items: Iterable[Any],
    copier: ChunkCopier,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> None:
    """Write `items` in order through `write`: bytes-like items as they are, DevicePieces in chunks.

    Double-buffered: before chunk k is waited for and written, the copy of the next chunk is issued
    into the other buffer (whose previous contents were already written, as `write` is synchronous).
    Host memory used: two buffers of min(chunk_bytes, largest chunk) bytes.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes: expected >= 1, got {chunk_bytes}")
    items = list(items)
    seq: list[Any] = []
    for item in items:
        if isinstance(item, DevicePiece):
            seq.extend(_Chunk(item, off, min(chunk_bytes, item.nbytes - off)) for off in range(0, item.nbytes, chunk_bytes))
        else:
            seq.append(item)
    chunks = [c for c in seq if isinstance(c, _Chunk)]
    if not chunks:
        for item in seq:
            write(item)
        return
    size = max(c.nbytes for c in chunks)
    buffers = [copier.host_buffer(size), copier.host_buffer(size)]
    in_flight: deque = deque()
    next_chunk = 0

    def issue() -> None:
        nonlocal next_chunk
        c = chunks[next_chunk]
        buf = buffers[next_chunk % 2]
        in_flight.append((copier.start(c.piece, c.offset, c.nbytes, buf), buf, c.nbytes))
        next_chunk += 1

    issue()
    for item in seq:
        if not isinstance(item, _Chunk):
            write(item)
            continue
        token, buf, n = in_flight.popleft()
        if next_chunk < len(chunks):
            issue()  # overlaps with the wait + write below
        copier.wait(token)
        write(memoryview(buf)[:n])
