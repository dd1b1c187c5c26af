"""Meshing: Heightfield -> Mesh (grid.py: one vertex per sample)."""
