"""Depth evaluation on synthetic scenes with exact depth: ray-cast renders, scale-and-shift-invariant metrics."""
