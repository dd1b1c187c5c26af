"""Depth stage: Image -> DepthMap (larger = nearer). Model-free default, given maps, neural models."""
from __future__ import annotations

from .given import load_depth_map
from .heuristic import estimate_depth

__all__ = ["estimate_depth", "load_depth_map"]
