"""Scratch arrays the adaptive mesher reuses from one call to the next (one set per thread).

Why: a dense adaptive mesh passes through ~10 scratch arrays of up to a few hundred MB (RTIN's triangles, the
compacted triangles, the vertex -> triangle lists, ...). Fresh memory costs page faults on first touch, and
numpy asks the kernel for transparent huge pages on large blocks, which with THP defrag = madvise (Debian's
default) can stall in memory compaction: on the 2-core benchmark VM one 1025^2 mesh at 0.01% spent 15 to 280 ms
in the kernel from one call to the next, for 210 to 590 ms in all. Reused scratch is already mapped: no faults,
no stalls. This is what batch conversion of many images of one size gets, and what the benchmark measures.

Only scratch lives here: every array a public function returns is freshly allocated (callers own it).
The memory kept is bounded: GPURELIEF_WORKSPACE_MB (default 1024, 0 = keep nothing) per thread; requests past
the limit get fresh arrays that are not kept. release() frees this thread's arrays.
"""
from __future__ import annotations

import os
import threading

import numpy as np

DEFAULT_LIMIT_MB = 1024


def _limit_bytes() -> int:
    text = os.environ.get("GPURELIEF_WORKSPACE_MB", "").strip()
    try:
        mb = float(text) if text else DEFAULT_LIMIT_MB
    except ValueError:
        mb = DEFAULT_LIMIT_MB
    return max(0, int(mb * (1 << 20)))


class Workspace:
    """Named byte buffers grown on demand; get() views one as an array of the asked shape and dtype."""

    def __init__(self, limit_bytes: int | None = None):
        self.limit = _limit_bytes() if limit_bytes is None else int(limit_bytes)
        self._buffers: dict[str, np.ndarray] = {}

    @property
    def kept_bytes(self) -> int:
        return sum(b.nbytes for b in self._buffers.values())

    def get(self, name: str, shape, dtype, *, fill=None) -> np.ndarray:
        """An array of `shape` and `dtype` backed by the buffer `name` (contents undefined unless `fill`).
        Two live arrays must use two names: a name's next get() hands out the same memory."""
        dtype = np.dtype(dtype)
        shape = (shape,) if np.isscalar(shape) else tuple(int(s) for s in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        buffer = self._buffers.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            self._buffers.pop(name, None)
            # grow with headroom so a slightly larger next request does not reallocate
            want = max(nbytes + (nbytes >> 3), 64)
            buffer = np.empty(want, dtype=np.uint8)
            if self.kept_bytes + buffer.nbytes <= self.limit:
                self._buffers[name] = buffer
        out = buffer[:nbytes].view(dtype).reshape(shape)
        if fill is not None:
            out.fill(fill)
        return out

    def release(self) -> None:
        self._buffers.clear()


_local = threading.local()


def workspace() -> Workspace:
    """This thread's workspace."""
    ws = getattr(_local, "ws", None)
    if ws is None:
        ws = _local.ws = Workspace()
    return ws


def release() -> None:
    """Free this thread's scratch arrays (they are rebuilt on the next call that needs them)."""
    workspace().release()
