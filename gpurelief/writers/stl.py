"""Binary STL: 80-byte header, uint32 triangle count, then 50 bytes per triangle (facet normal, 3 corners,
attribute word), little-endian. Built as one structured numpy array per chunk and written straight out."""
from __future__ import annotations

import os

import numpy as np

from ..errors import OutputError
from ..types import Mesh
from .atomic import atomic_open

STL_TRIANGLE = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
assert STL_TRIANGLE.itemsize == 50
HEADER_BYTES = 80
STL_MAX_BYTES = 250_000_000   # ~5M triangles: past this slicers crawl, and the print cannot show the detail
ALLOW_LARGE_FLAG = "--allow-large-stl"
_CHUNK_TRIANGLES = 1 << 20     # bounds the temporary array to 50 MiB however large the mesh


def stl_size(triangle_count: int) -> int:
    """Triangles -> bytes of the binary STL."""
    return HEADER_BYTES + 4 + STL_TRIANGLE.itemsize * int(triangle_count)


GRID_HINT = "lower --max-size (e.g. --max-size 1024)"  # what to lower for a full-grid top


def check_stl_size(triangle_count: int, *, allow_large: bool = False, limit: int | None = None,
                   hint: str | None = None) -> int:
    """Refuse an STL over `limit` bytes (default STL_MAX_BYTES) unless allow_large (--allow-large-stl); -> its size.
    hint: what to lower, first in the message (default GRID_HINT)."""
    limit = STL_MAX_BYTES if limit is None else limit
    size = stl_size(triangle_count)
    if triangle_count > 0xFFFFFFFF:
        raise OutputError(f"the STL would have {triangle_count:,} triangles, over the format's 2^32 limit")
    if size > limit and not allow_large:
        raise OutputError(
            f"the STL would be {size / 1e6:,.0f} MB ({triangle_count:,} triangles), over the {limit / 1e6:,.0f} MB "
            f"limit; {hint or GRID_HINT}, write .3mf, or pass {ALLOW_LARGE_FLAG}"
        )
    return size


def stl_header(mesh: Mesh) -> bytes:
    # Must not start with b"solid": some readers would take the file for ASCII STL.
    text = f"gpurelief binary STL, units {mesh.units}".encode("ascii")
    return text[:HEADER_BYTES].ljust(HEADER_BYTES, b" ")


def stl_triangles(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) positions, (K, 3) vertex ids -> (K,) STL_TRIANGLE records with unit facet normals (0 if degenerate)."""
    corners = positions[triangles]                      # (K, 3, 3) contiguous: fast to gather and to read
    e1 = corners[:, 1] - corners[:, 0]
    e2 = corners[:, 2] - corners[:, 0]
    normal = np.empty_like(e1)
    # written out: np.cross is several times slower on (K, 3) float32
    normal[:, 0] = e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]
    normal[:, 1] = e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]
    normal[:, 2] = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    length = np.sqrt(np.einsum("ij,ij->i", normal, normal))
    length[length == 0] = np.inf                        # degenerate: normal 0, as readers expect
    normal /= length[:, None]
    out = np.empty(triangles.shape[0], dtype=STL_TRIANGLE)
    out["normal"] = normal
    out["corners"] = corners
    out["attribute"] = 0
    return out


def write_stl(path: str | os.PathLike, mesh: Mesh, *, allow_large: bool = False, limit: int | None = None,
              hint: str | None = None) -> int:
    """Mesh (positions in mesh.units, mm for printing) -> binary STL at `path`, atomically; -> bytes written."""
    count = mesh.triangle_count
    size = check_stl_size(count, allow_large=allow_large, limit=limit, hint=hint)
    positions = np.asarray(mesh.positions, dtype=np.float32)
    triangles = np.asarray(mesh.indices).reshape(-1, 3)
    with atomic_open(path) as f:
        f.write(stl_header(mesh) + np.uint32(count).astype("<u4").tobytes())
        for start in range(0, count, _CHUNK_TRIANGLES):
            f.write(stl_triangles(positions, triangles[start : start + _CHUNK_TRIANGLES]).data)
    return size
