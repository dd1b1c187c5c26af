"""Shared checks on triangle meshes over a height grid (adaptive mesher and quality pass tests)."""
from __future__ import annotations

import numpy as np

from gpurelief.mesh.metrics import vertical_error


def assert_valid_cover(heights, triangles, bound):
    """Max error over every pixel <= bound, every triangle positive, areas sum to the grid (no overlap, no gap),
    every edge shared by at most two triangles and the open edges all on the grid border."""
    gh, gw = heights.shape
    rows, cols = np.divmod(np.arange(heights.size), gw)
    m = vertical_error(heights, cols, rows, heights.reshape(-1), triangles)
    assert m["uncovered"] == 0
    assert m["max"] <= bound * (1 + 1e-12)
    r, c = np.divmod(triangles, gw)
    area2 = (c[:, 1] - c[:, 0]) * (r[:, 0] - r[:, 2]) - (r[:, 0] - r[:, 1]) * (c[:, 2] - c[:, 0])
    assert (area2 > 0).all() and area2.sum() == 2 * (gh - 1) * (gw - 1)
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    e.sort(axis=1)
    uniq, counts = np.unique(e, axis=0, return_counts=True)
    assert counts.max() <= 2
    br, bc = np.divmod(uniq[counts == 1], gw)
    on_border = ((br[:, 0] == br[:, 1]) & np.isin(br[:, 0], [0, gh - 1])) | \
        ((bc[:, 0] == bc[:, 1]) & np.isin(bc[:, 0], [0, gw - 1]))
    assert on_border.all()


def neighbour_sets(triangles, vertex_count):
    """-> list of sets: the vertices sharing an edge with each vertex in the triangle mesh."""
    neighbours = [set() for _ in range(vertex_count)]
    for a, b, c in np.asarray(triangles):
        neighbours[a] |= {b, c}
        neighbours[b] |= {a, c}
        neighbours[c] |= {a, b}
    return neighbours
