"""Wavefront OBJ: NAME.obj (positions, UVs, triangles) + NAME.mtl (one material) + NAME_texture.<ext>.

OBJ has no unit field; a header comment states it (mm for the print path). UVs are stored with v up,
as OBJ readers expect (glTF's v runs down).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..types import Mesh, Texture
from .atomic import atomic_open, check_output_path
from .textfmt import format_rows

MATERIAL_NAME = "relief"


def texture_path(path: Path, texture: Texture) -> Path:
    """NAME.ext -> NAME_texture.<jpg|png|webp> beside it (same rule as the .gltf writer)."""
    return path.with_name(path.stem + "_texture" + texture.suffix)


def mtl_text(image_name: str | None) -> str:
    lines = [f"newmtl {MATERIAL_NAME}", "Ka 1 1 1", "Kd 1 1 1", "Ks 0 0 0", "d 1", "illum 1"]
    if image_name:
        lines.append(f"map_Kd {image_name}")
    return "\n".join(lines) + "\n"


def obj_text(mesh: Mesh, *, mtl_name: str | None) -> str:
    """Mesh -> OBJ text: `v x y z`, `vt u v` (v up), `f a/a b/b c/c` with 1-based ids shared by v and vt."""
    positions = np.asarray(mesh.positions, dtype=np.float32)
    uvs = np.asarray(mesh.uvs, dtype=np.float32)
    vt = np.empty_like(uvs)
    vt[:, 0] = uvs[:, 0]
    vt[:, 1] = 1.0 - uvs[:, 1]
    faces = np.asarray(mesh.indices).reshape(-1, 3).astype(np.int64) + 1
    head = [f"# gpurelief OBJ, units {mesh.units}, {mesh.vertex_count} vertices, {mesh.triangle_count} triangles"]
    if mtl_name:
        head.append(f"mtllib {mtl_name}")
    head.append("o relief")
    return "".join([
        "\n".join(head) + "\n",
        format_rows("v %.6g %.6g %.6g\n", positions),
        format_rows("vt %.6g %.6g\n", vt),
        f"usemtl {MATERIAL_NAME}\n" if mtl_name else "",
        format_rows("f %d/%d %d/%d %d/%d\n", np.repeat(faces, 2, axis=1)),
    ])


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
        f.write(obj_text(mesh, mtl_name=mtl_path.name).encode("ascii"))
    return [path, *written]
