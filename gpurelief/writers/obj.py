"""Wavefront OBJ: NAME.obj (positions, UVs, triangles) + NAME.mtl (one material) + NAME_texture.<ext>.

OBJ has no unit field; a header comment states it (mm for the print path). UVs are stored with v up,
as OBJ readers expect (glTF's v runs down).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..types import Mesh, Texture
from .atomic import atomic_open, check_output_path
from .textfmt import float_decimals, iter_table

MATERIAL_NAME = "relief"


def texture_path(path: Path, texture: Texture) -> Path:
    """NAME.ext -> NAME_texture.<jpg|png|webp> beside it (same rule as the .gltf writer)."""
    return path.with_name(path.stem + "_texture" + texture.suffix)


def mtl_text(image_name: str | None) -> str:
    lines = [f"newmtl {MATERIAL_NAME}", "Ka 1 1 1", "Kd 1 1 1", "Ks 0 0 0", "d 1", "illum 1"]
    if image_name:
        lines.append(f"map_Kd {image_name}")
    return "\n".join(lines) + "\n"


def iter_obj(mesh: Mesh, *, mtl_name: str | None) -> Iterator[bytes]:
    """Mesh -> OBJ text blocks: `v x y z`, `vt u v` (v up), `f a/a b/b c/c` with 1-based ids shared by v and vt.

    Positions keep 7 significant digits (float32 precision), UVs 6 decimals.
    """
    positions = np.asarray(mesh.positions, dtype=np.float32)
    uvs = np.asarray(mesh.uvs, dtype=np.float32)
    faces = np.asarray(mesh.indices).reshape(-1, 3).astype(np.int64) + 1
    head = [f"# gpurelief OBJ, units {mesh.units}, {mesh.vertex_count} vertices, {mesh.triangle_count} triangles"]
    if mtl_name:
        head.append(f"mtllib {mtl_name}")
    head.append("o relief")
    yield ("\n".join(head) + "\n").encode("ascii")
    d = float_decimals(positions)
    yield from iter_table(["v ", " ", " ", "\n"], [positions[:, 0], positions[:, 1], positions[:, 2]], [d, d, d])
    yield from iter_table(["vt ", " ", "\n"], [uvs[:, 0], 1.0 - uvs[:, 1].astype(np.float64)], [6, 6])
    if mtl_name:
        yield f"usemtl {MATERIAL_NAME}\n".encode("ascii")
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    yield from iter_table(["f ", "/", " ", "/", " ", "/", "\n"], [a, a, b, b, c, c], [0] * 6)


def write_obj(path: str | os.PathLike, mesh: Mesh, texture: Texture | None) -> list[Path]:
    """Mesh (+ texture) -> NAME.obj + NAME.mtl (+ NAME_texture.ext); -> paths written, the .obj renamed in last."""
    path = check_output_path(path)
    mtl_path = path.with_suffix(".mtl")
    written = []
    image_name = None
    if texture is not None:
        image_path = texture_path(path, texture)
        with atomic_open(image_path) as f:
            f.write(texture.data)
        written.append(image_path)
        image_name = image_path.name
    with atomic_open(mtl_path) as f:
        f.write(mtl_text(image_name).encode("ascii"))
    written.insert(0, mtl_path)
    with atomic_open(path) as f:
        for block in iter_obj(mesh, mtl_name=mtl_path.name):
            f.write(block)
    return [path, *written]
