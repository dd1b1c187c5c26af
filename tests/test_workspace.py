"""mesh/workspace.py: scratch reused across calls, bounded, per thread; results never alias scratch."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from gpurelief.mesh import workspace as wsmod
from gpurelief.mesh.workspace import Workspace

from heightmaps import fractal, step_edges


def test_a_name_reuses_its_memory_and_two_names_do_not_share():
    ws = Workspace(limit_bytes=1 << 30)
    a = ws.get("a", (100, 3), np.int64, fill=7)
    b = ws.get("b", 300, np.int32, fill=1)
    assert a.shape == (100, 3) and a.dtype == np.int64 and b.shape == (300,) and b.dtype == np.int32
    assert not np.shares_memory(a, b)
    assert (a == 7).all() and (b == 1).all()
    again = ws.get("a", 50, np.float64)
    assert np.shares_memory(again, a)  # the same buffer, viewed again
    bigger = ws.get("a", (1000, 3), np.int64, fill=0)
    assert bigger.nbytes == 24000 and (bigger == 0).all()
    assert ws.kept_bytes >= 24000 + b.nbytes


def test_the_limit_bounds_what_is_kept():
    ws = Workspace(limit_bytes=0)
    a = ws.get("a", 1000, np.int64, fill=3)
    b = ws.get("a", 1000, np.int64, fill=4)
    assert ws.kept_bytes == 0 and not np.shares_memory(a, b) and (a == 3).all()
    ws = Workspace(limit_bytes=10_000)
    ws.get("small", 100, np.int64)
    ws.get("large", 100_000, np.int64)  # past the limit: fresh, not kept
    assert 0 < ws.kept_bytes <= 10_000
    ws.release()
    assert ws.kept_bytes == 0


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("GPURELIEF_WORKSPACE_MB", "0")
    assert Workspace().limit == 0
    monkeypatch.setenv("GPURELIEF_WORKSPACE_MB", "3")
    assert Workspace().limit == 3 << 20


def test_each_thread_has_its_own():
    seen = []
    t = threading.Thread(target=lambda: seen.append(wsmod.workspace()))
    t.start()
    t.join()
    assert seen[0] is not wsmod.workspace()
    assert wsmod.workspace() is wsmod.workspace()


@pytest.mark.parametrize("effort", ["fast", "full"])
def test_results_own_their_memory(effort):
    """Two meshes in a row (the second reuses every scratch array): the first result is unchanged, and both
    equal the result of a run with no scratch kept at all."""
    pytest.importorskip("numba")
    from gpurelief.mesh.adaptive import adaptive_triangles

    a_h = fractal(129, 129, seed=3)
    b_h = step_edges(129, 129, seed=4)
    first, _ = adaptive_triangles(a_h, max_error=0.002, quality_pass=effort)
    kept = first.copy()
    second, _ = adaptive_triangles(b_h, max_error=0.002, quality_pass=effort)
    assert np.array_equal(first, kept)
    assert not np.shares_memory(first, second)
    ws = wsmod.workspace()
    assert ws.kept_bytes > 0  # the mesher did keep scratch
    assert not any(np.shares_memory(first, buf) or np.shares_memory(second, buf) for buf in ws._buffers.values())
    limit = ws.limit
    try:
        ws.release()
        ws.limit = 0
        fresh, _ = adaptive_triangles(a_h, max_error=0.002, quality_pass=effort)
    finally:
        ws.limit = limit
    assert np.array_equal(fresh, first)
