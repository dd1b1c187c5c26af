"""Top surface Mesh -> closed printable solid: the top, side walls that follow its boundary, a flat bottom.

The top may be any triangulation (full grid, adaptive, ...) whose boundary is one loop of vertices lying
on the border of its XY bounding rectangle, wound counter-clockwise seen from +Z. The walls use exactly
the top's boundary vertices (found from its boundary edges), so the solid is watertight by construction:
every edge is shared by exactly two triangles, traversed in opposite directions.

    solid_mesh(top, base=2.0)              top lifted by 2, walls down to z = 0, bottom fan
    solid_mesh(top, base=2.0, border=5.0)  plus a flat frame 5 wide at the top's nominal height

Print sizes (`print_dimensions`) are millimetres: slicers assume millimetres for STL.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import numpy_ops as ops
from ..errors import OptionError
from ..types import Mesh

MIN_BASE_MM = 0.4        # two 0.2 mm layers: the thinnest floor an FDM printer lays down reliably
MAX_SIZE_MM = 10_000.0   # 10 m: anything larger is a unit mistake, not a print
DEFAULT_WIDTH_MM = 100.0
DEFAULT_RELIEF_MM = 5.0
DEFAULT_BASE_MM = 2.0
# Lithophane: 0.8 mm where the photo is white (light passes), 3.0 mm where it is black.
LITHOPHANE_BASE_MM = 0.8
LITHOPHANE_RELIEF_MM = 2.2


@dataclass(frozen=True)
class PrintDimensions:
    """Resolved print sizes in millimetres. `relief_width_mm`/`relief_height_mm` exclude the border."""

    width_mm: float
    height_mm: float
    relief_mm: float
    base_mm: float
    border_mm: float

    @property
    def relief_width_mm(self) -> float:
        return self.width_mm - 2.0 * self.border_mm

    @property
    def relief_height_mm(self) -> float:
        return self.height_mm - 2.0 * self.border_mm

    @property
    def thickness_mm(self) -> float:
        return self.base_mm + self.relief_mm


def _check_size(flag: str, value: float, *, allow_zero: bool = False) -> None:
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        need = ">= 0" if allow_zero else "a positive size"
        raise OptionError(f"{flag}: expected {need} in millimetres, got {value}")
    if value > MAX_SIZE_MM:
        raise OptionError(
            f"{flag}: {value:g} mm is over {MAX_SIZE_MM / 1000:g} m; sizes are in millimetres (e.g. {flag} 150)"
        )


def print_dimensions(
    grid_size: tuple[int, int],
    image_size: tuple[int, int],
    *,
    width_mm: float | None = None,
    height_mm: float | None = None,
    relief_mm: float | None = None,
    base_mm: float | None = None,
    border_mm: float = 0.0,
    lithophane: bool = False,
) -> PrintDimensions:
    """Print flags (None = default) + grid/photo shape -> PrintDimensions; raises OptionError naming the flag.

    Exactly one of width/height may be given; the other follows the photo's aspect ratio (the border
    adds the same margin on all four sides and is included in the outer size).
    """
    if width_mm is not None and height_mm is not None:
        raise OptionError("--height-mm: give --width-mm or --height-mm, not both; the other follows the photo's aspect")
    relief_default, base_default = (
        (LITHOPHANE_RELIEF_MM, LITHOPHANE_BASE_MM) if lithophane else (DEFAULT_RELIEF_MM, DEFAULT_BASE_MM)
    )
    relief_mm = relief_default if relief_mm is None else float(relief_mm)
    base_mm = base_default if base_mm is None else float(base_mm)
    border_mm = float(border_mm)
    for flag, value in (("--width-mm", width_mm), ("--height-mm", height_mm)):
        if value is not None:
            _check_size(flag, float(value))
    _check_size("--relief-mm", relief_mm)
    _check_size("--base-mm", base_mm)
    _check_size("--border-mm", border_mm, allow_zero=True)
    if base_mm < MIN_BASE_MM:
        what = "minimum thickness of the lithophane" if lithophane else "base"
        raise OptionError(
            f"--base-mm: {base_mm:g} mm is thinner than the printable minimum {MIN_BASE_MM:g} mm "
            f"(the {what}); use --base-mm {MIN_BASE_MM:g} or more"
        )
    # Y extent of the relief per unit of X extent, from the grid's own spacing rule.
    dx, dy = ops.grid_spacing(grid_size, image_size, 1.0)
    aspect = dy * (grid_size[0] - 1) / (dx * (grid_size[1] - 1))
    if height_mm is not None:
        height_mm = float(height_mm)
        if 2.0 * border_mm >= height_mm:
            raise OptionError(f"--border-mm: {border_mm:g} mm on each side leaves nothing of --height-mm {height_mm:g}")
        width_mm = (height_mm - 2.0 * border_mm) / aspect + 2.0 * border_mm
        derived_flag = "--height-mm"
    else:
        width_mm = DEFAULT_WIDTH_MM if width_mm is None else float(width_mm)
        if 2.0 * border_mm >= width_mm:
            raise OptionError(f"--border-mm: {border_mm:g} mm on each side leaves nothing of --width-mm {width_mm:g}")
        height_mm = (width_mm - 2.0 * border_mm) * aspect + 2.0 * border_mm
        derived_flag = "--width-mm"
    for side, value in (("wide", width_mm), ("tall", height_mm)):
        if value > MAX_SIZE_MM:
            raise OptionError(
                f"{derived_flag}: the model would be {value:g} mm {side} (photo aspect {aspect:.3g}), over "
                f"{MAX_SIZE_MM / 1000:g} m; give a smaller {derived_flag}"
            )
    if relief_mm > width_mm:
        raise OptionError(
            f"--relief-mm: {relief_mm:g} mm is taller than the model is wide ({width_mm:g} mm); "
            "use a smaller --relief-mm or a larger --width-mm"
        )
    return PrintDimensions(width_mm, height_mm, relief_mm, base_mm, border_mm)


def boundary_loop(indices: np.ndarray, vertex_count: int, *, candidates: np.ndarray | None = None) -> np.ndarray:
    """(3M,) triangle indices, counter-clockwise -> (L,) vertex ids of the boundary, in order, CCW seen from +Z.

    A boundary edge is a directed edge whose reverse belongs to no triangle. `candidates` (vertex_count,)
    bool, when given, limits the search to edges between candidate vertices (the caller knows the boundary
    lies among them: a ~100x smaller sort for a grid). Raises OptionError unless the boundary found is
    exactly one simple loop and no examined edge is used twice in the same direction.
    """
    tri = np.asarray(indices).reshape(-1, 3).astype(np.int64)
    src = tri.reshape(-1)
    dst = tri[:, [1, 2, 0]].reshape(-1)
    if candidates is not None:
        both = candidates[src] & candidates[dst]
        src, dst = src[both], dst[both]
    n = np.int64(vertex_count)
    keys = np.sort(src * n + dst)
    if keys.size > 1 and bool(np.any(keys[1:] == keys[:-1])):
        raise OptionError("the top mesh has an edge used twice in the same direction (inconsistent winding or a fold)")
    rev = dst * n + src
    pos = np.minimum(np.searchsorted(keys, rev), keys.size - 1)
    on_boundary = keys[pos] != rev
    b_src, b_dst = src[on_boundary], dst[on_boundary]
    if b_src.size < 3:
        raise OptionError("the top mesh has no boundary; it is already closed")
    nxt = np.full(vertex_count, -1, dtype=np.int64)
    nxt[b_src] = b_dst
    if np.unique(b_src).size != b_src.size:
        raise OptionError("the top mesh's boundary touches itself at a vertex; it must be one simple loop")
    # Walk the loop: L steps of pointer chasing (L ~ perimeter, a few thousand), then check it closed.
    count = b_src.size
    start = int(b_src[0])
    loop = np.empty(count, dtype=np.int64)
    v = start
    for i in range(count):
        loop[i] = v
        v = int(nxt[v])
        if v < 0:
            raise OptionError("the top mesh's boundary is not closed")
    if v != start or np.unique(loop).size != count:
        raise OptionError(
            "the top mesh's boundary is several loops (holes or separate pieces); a printable solid needs one "
            "(do not combine print formats with --cut-transparent)"
        )
    return loop


def _bounds(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) -> (lo, hi); column by column, 10x faster than an axis-0 reduction over (N, 2)."""
    return (np.array([xy[:, 0].min(), xy[:, 1].min()]), np.array([xy[:, 0].max(), xy[:, 1].max()]))


def _check_top_covers_rectangle(xy: np.ndarray, triangles: np.ndarray) -> None:
    """A relief top is a height field: every triangle CCW with positive area seen from +Z, and together
    they tile the bounding rectangle (total area = rectangle area: no holes, no overlaps)."""
    e1 = xy[triangles[:, 1]] - xy[triangles[:, 0]]
    e2 = xy[triangles[:, 2]] - xy[triangles[:, 0]]
    area2 = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    lo, hi = _bounds(xy)
    extent = hi - lo
    bad = int(np.count_nonzero(area2 <= 1e-12 * extent[0] * extent[1]))
    if bad:
        raise OptionError(
            f"the top mesh has {bad} triangle(s) that are clockwise or degenerate seen from +Z; "
            "its triangles must be counter-clockwise, as a height field's are"
        )
    total, rect = 0.5 * float(area2.sum()), float(extent[0] * extent[1])
    if abs(total - rect) > 1e-6 * rect:
        raise OptionError(
            f"the top mesh does not tile its bounding rectangle (projected area {total:g} of {rect:g}: holes, "
            "overlaps or a cut-out outline); a printable solid needs the whole rectangle"
        )


def _rectangle_corners_in_loop(xy: np.ndarray, loop: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Check the loop runs CCW along the border of the XY bounding box; -> (loop rotated to start at the
    (xmin, ymin) corner, positions in it of the four corners BL, BR, TR, TL)."""
    p = xy[loop]
    lo, hi = _bounds(xy)
    on_border = (
        (np.abs(p[:, 0] - lo[0]) <= tol) | (np.abs(p[:, 0] - hi[0]) <= tol)
        | (np.abs(p[:, 1] - lo[1]) <= tol) | (np.abs(p[:, 1] - hi[1]) <= tol)
    )
    if not bool(on_border.all()):
        bad = p[~on_border][0]
        raise OptionError(
            f"the top mesh's boundary leaves its bounding rectangle (vertex at x={bad[0]:g}, y={bad[1]:g}); "
            "a printable solid needs a top that covers the whole rectangle"
        )
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    where = []
    for c in corners:
        d = np.abs(p - c).max(axis=1)
        k = int(np.argmin(d))
        if d[k] > tol:
            raise OptionError(f"the top mesh has no vertex at the corner ({c[0]:g}, {c[1]:g}) of its rectangle")
        where.append(k)
    loop = np.roll(loop, -where[0])
    where = (np.asarray(where) - where[0]) % loop.size
    if not (where[0] < where[1] < where[2] < where[3]):
        raise OptionError("the top mesh's boundary runs clockwise; its triangles must be counter-clockwise from +Z")
    return loop, where


def solid_mesh(top: Mesh, *, base: float, border: float = 0.0, border_z: float | None = None) -> Mesh:
    """Top Mesh (z >= 0, boundary on its XY rectangle) -> closed solid Mesh, bottom at z = 0, same units.

    The top is lifted by `base`. Without a border, walls run straight down from each boundary edge and
    the bottom is a fan around the rectangle's centre (L triangles for L boundary vertices). With a
    border, a flat frame `border` wide sits at height `border_z` (default: base + the top's highest z),
    with a step wall from the top's boundary up to it, outer walls and a two-triangle bottom.
    Output: top vertices first (same order), then the new ones; triangles wound outward; indices
    uint16/uint32 by vertex count. Normals of new vertices are the flat face direction they belong to.
    """
    if not base > 0:
        raise OptionError(f"--base-mm: expected a positive thickness, got {base}")
    if border < 0:
        raise OptionError(f"--border-mm: expected >= 0, got {border}")
    positions = np.asarray(top.positions, dtype=np.float32)
    n_top = positions.shape[0]
    xy = positions[:, :2].astype(np.float64)
    lo, hi = _bounds(xy)
    tol = 1e-5 * float((hi - lo).max())
    top_triangles = np.asarray(top.indices, dtype=np.int64).reshape(-1, 3)
    _check_top_covers_rectangle(xy, top_triangles)
    on_border = (
        (np.abs(xy[:, 0] - lo[0]) <= tol) | (np.abs(xy[:, 0] - hi[0]) <= tol)
        | (np.abs(xy[:, 1] - lo[1]) <= tol) | (np.abs(xy[:, 1] - hi[1]) <= tol)
    )
    loop = boundary_loop(top_triangles, n_top, candidates=on_border)
    # Only border edges were searched; Euler's V - E + F = 1 of a disc rules out boundary elsewhere.
    used = np.zeros(n_top, dtype=bool)
    used[top_triangles.reshape(-1)] = True
    faces_n = top_triangles.shape[0]
    if 2 * (int(used.sum()) + faces_n - 1) != 3 * faces_n + loop.size:
        raise OptionError("the top mesh is not a single disc (holes or separate pieces inside its rectangle)")
    loop, corner_at = _rectangle_corners_in_loop(xy, loop, tol)
    count = loop.size
    top_z = positions[:, 2].astype(np.float64) + base
    if top_z.min() <= 0:
        raise OptionError(f"--base-mm: the top dips below the bottom (lowest z {top_z.min():g}); heights must be >= 0")
    nxt_i = np.roll(np.arange(count), -1)

    if border == 0:
        # vertices: top (n_top) | bottom ring (count) | bottom centre (1)
        ring = n_top + np.arange(count, dtype=np.int64)
        centre = n_top + count
        a, b = loop, loop[nxt_i]
        a_low, b_low = ring, ring[nxt_i]
        walls = np.stack([a, a_low, b_low, a, b_low, b], axis=1).reshape(-1, 3)
        bottom = np.stack([np.full(count, centre), b_low, a_low], axis=1)
        new_xy = np.concatenate([xy[loop], ((lo + hi) / 2)[None, :]])
        new_z = np.zeros(count + 1)
        new_uv_src = np.concatenate([loop, loop[:1]])
        new_normals = np.tile(np.float32([0, 0, -1]), (count + 1, 1))
        faces = [walls, bottom]
    else:
        z_frame = float(top_z.max()) if border_z is None else float(border_z)
        if z_frame < top_z.max() - 1e-5 * max(z_frame, 1.0):
            raise OptionError(f"--border-mm: the frame ({z_frame:g}) would be lower than the relief ({top_z.max():g})")
        # Inner loop at frame height: a top boundary vertex within eps of it is snapped to it and reused, so
        # no step is thinner than eps (a sub-ULP step would collapse to zero area in float32).
        eps = 1e-5 * max(z_frame, 1.0)
        lifted = top_z[loop] < z_frame - eps
        top_z[loop[~lifted]] = z_frame
        inner = loop.copy()
        inner[lifted] = n_top + np.arange(int(lifted.sum()))
        n_lifted = int(lifted.sum())
        outer = n_top + n_lifted + np.arange(4)           # frame top corners BL, BR, TR, TL
        floor = n_top + n_lifted + 4 + np.arange(4)       # bottom corners
        a, b, a_up, b_up = loop, loop[nxt_i], inner, inner[nxt_i]
        # Step wall faces the relief (left of the CCW boundary): (a, b_up, b) and (a, a_up, b_up).
        step = np.stack([a, b_up, b, a, a_up, b_up], axis=1).reshape(-1, 3)
        # Frame top: four trapezoids; each fans its inner side from the two outer corners.
        frame = []
        for s in range(4):
            k0 = corner_at[s]
            k1 = corner_at[s + 1] if s < 3 else count
            p = inner[np.arange(k0, k1 + 1) % count]
            m = p.size - 1
            mid = m // 2
            j = np.arange(m)
            o = np.where(j < mid, outer[s], outer[(s + 1) % 4])
            frame.append(np.stack([o, p[j + 1], p[j]], axis=1))
            frame.append(np.array([[outer[s], outer[(s + 1) % 4], p[mid]]]))
        o0, o1, o2, o3 = outer
        f0, f1, f2, f3 = floor
        outer_walls = np.array([
            [o0, f0, f1], [o0, f1, o1], [o1, f1, f2], [o1, f2, o2],
            [o2, f2, f3], [o2, f3, o3], [o3, f3, f0], [o3, f0, o0],
        ])
        bottom = np.array([[f0, f2, f1], [f0, f3, f2]])
        faces = [step, *frame, outer_walls, bottom]
        box = np.array([[lo[0] - border, lo[1] - border], [hi[0] + border, lo[1] - border],
                        [hi[0] + border, hi[1] + border], [lo[0] - border, hi[1] + border]])
        new_xy = np.concatenate([xy[loop[lifted]], box, box])
        new_z = np.concatenate([np.full(n_lifted + 4, z_frame), np.zeros(4)])
        corner_vertex = loop[corner_at]
        new_uv_src = np.concatenate([loop[lifted], corner_vertex, corner_vertex])
        new_normals = np.concatenate([
            np.tile(np.float32([0, 0, 1]), (n_lifted + 4, 1)), np.tile(np.float32([0, 0, -1]), (4, 1))
        ])
    added = np.concatenate(faces)
    # Drop the step triangles that collapsed where a boundary vertex was already at frame height.
    added = added[(added[:, 0] != added[:, 1]) & (added[:, 1] != added[:, 2]) & (added[:, 0] != added[:, 2])]
    triangles = np.concatenate([top_triangles, added])
    vertex_count = n_top + new_xy.shape[0]
    out_positions = np.empty((vertex_count, 3), dtype=np.float32)
    out_positions[:n_top, :2] = positions[:, :2]
    out_positions[:n_top, 2] = top_z
    out_positions[n_top:, :2] = new_xy
    out_positions[n_top:, 2] = new_z
    uvs = np.asarray(top.uvs, dtype=np.float32)
    out_uvs = np.concatenate([uvs, uvs[new_uv_src]])
    out_normals = np.concatenate([np.asarray(top.normals, dtype=np.float32), new_normals])
    indices = triangles.reshape(-1).astype(ops.index_dtype(vertex_count))
    extras = {k: v for k, v in top.extras.items() if k != "position_bounds"}  # the top's bounds are not the solid's
    extras.update(boundary_vertex_count=int(count), base=float(base), border=float(border))
    return Mesh(positions=out_positions, normals=out_normals, uvs=out_uvs, indices=indices, units=top.units, extras=extras)


def solid_triangle_bound(grid_size: tuple[int, int], *, border: bool = False, top: int | None = None) -> int:
    """(GH, GW) of the grid -> triangles of its solid: top + walls/step + bottom/frame (an upper bound). top: the
    top's triangle count (default: the full grid's); an adaptive top's walls follow its border vertices, at
    most the grid's."""
    gh, gw = grid_size
    perimeter = 2 * (gh - 1) + 2 * (gw - 1)
    if top is None:
        top = 2 * (gh - 1) * (gw - 1)
    return top + 3 * perimeter + (14 if border else 0)
