"""Meshing: Heightfield -> Mesh (grid.py: one vertex per sample)."""

# --quality-pass levels (mesh/adaptive.py, mesh/simplify.py, mesh/grid_pass.py), here so the CLI can list them
# without importing numba
QUALITY_PASSES = ("off", "quick", "fast", "full")
