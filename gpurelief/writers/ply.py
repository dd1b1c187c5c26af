"""Binary little-endian PLY: vertices (x, y, z float32 + red/green/blue uint8 or texture_u/v float32) and
triangles (uchar count + 3 int32), each element written as one structured array."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..types import Mesh, Texture
from .atomic import atomic_open, check_output_path
from .obj import texture_path

FACE = np.dtype([("count", "u1"), ("vertex_indices", "<i4", (3,))])


def vertex_dtype(kind: str) -> np.dtype:
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if kind == "colors":
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    elif kind == "uvs":
        fields += [("texture_u", "<f4"), ("texture_v", "<f4")]
    return np.dtype(fields)


_PLY_TYPES = {"f": "float", "u": "uchar", "i": "int"}  # by numpy dtype kind


def ply_header(mesh: Mesh, vertex: np.dtype, *, texture_name: str | None = None) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", f"comment gpurelief, units {mesh.units}"]
    if texture_name:
        lines.append(f"comment TextureFile {texture_name}")
    lines.append(f"element vertex {mesh.vertex_count}")
    for name in vertex.names:
        lines.append(f"property {_PLY_TYPES[vertex[name].kind]} {name}")
    lines += [f"element face {mesh.triangle_count}", "property list uchar int vertex_indices", "end_header"]
    return ("\n".join(lines) + "\n").encode("ascii")


def write_ply(
    path: str | os.PathLike, mesh: Mesh, *, colors: np.ndarray | None = None, texture: Texture | None = None
) -> list[Path]:
    """Mesh -> binary PLY with per-vertex `colors` (N, 3) uint8, or UVs (v up) + `texture` written beside it
    (NAME_texture.ext, named in a `comment TextureFile` line), or geometry only; -> paths written."""
    path = check_output_path(path)
    kind = "colors" if colors is not None else ("uvs" if texture is not None else "plain")
    vertex = vertex_dtype(kind)
    vertices = np.empty(mesh.vertex_count, dtype=vertex)
    positions = np.asarray(mesh.positions, dtype=np.float32)
    vertices["x"], vertices["y"], vertices["z"] = positions[:, 0], positions[:, 1], positions[:, 2]
    written = []
    texture_name = None
    if kind == "colors":
        rgb = np.asarray(colors, dtype=np.uint8)
        vertices["red"], vertices["green"], vertices["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    elif kind == "uvs":
        uvs = np.asarray(mesh.uvs, dtype=np.float32)
        vertices["texture_u"] = uvs[:, 0]
        vertices["texture_v"] = 1.0 - uvs[:, 1]
        image_path = texture_path(path, texture)
        with atomic_open(image_path) as f:
            f.write(texture.data)
        written.append(image_path)
        texture_name = image_path.name
    faces = np.empty(mesh.triangle_count, dtype=FACE)
    faces["count"] = 3
    faces["vertex_indices"] = np.asarray(mesh.indices).reshape(-1, 3)
    with atomic_open(path) as f:
        f.write(ply_header(mesh, vertex, texture_name=texture_name))
        f.write(vertices.data)
        f.write(faces.data)
    return [path, *written]
