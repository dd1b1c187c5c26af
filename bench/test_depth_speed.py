"""Model-free depth speed (pytest-benchmark; not in the default test run).

python3 -m pytest bench/test_depth_speed.py --benchmark-only
Target: well under 1 s of CPU per megapixel of photo.
"""
from __future__ import annotations

import pytest

from gpurelief.depth.heuristic import estimate_depth
from tests.conftest import photo_like


@pytest.fixture(scope="module")
def photo_12mp():
    return photo_like(3000, 4000)


@pytest.fixture(scope="module")
def photo_1mp():
    return photo_like(1000, 1000)


def test_heuristic_12mp_to_1024_grid(benchmark, photo_12mp):
    """What `convert` does by default: a 12 MP photo, depth at the 1024-vertex grid."""
    d = benchmark.pedantic(estimate_depth, args=(photo_12mp,), kwargs={"out_shape": (768, 1024)}, rounds=3, iterations=1)
    assert d.values.shape == (768, 1024)


def test_heuristic_12mp_full_resolution(benchmark, photo_12mp):
    d = benchmark.pedantic(estimate_depth, args=(photo_12mp,), rounds=3, iterations=1)
    assert d.values.shape == (3000, 4000)


def test_heuristic_1mp_full_resolution(benchmark, photo_1mp):
    d = benchmark.pedantic(estimate_depth, args=(photo_1mp,), rounds=5, iterations=1)
    assert d.values.shape == (1000, 1000)
