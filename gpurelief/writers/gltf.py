"""glTF as three files: NAME.gltf (JSON), NAME.bin (geometry), NAME_texture.jpg|png|webp (the texture)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..types import Mesh, Texture
from .atomic import atomic_open, check_output_path
from .gltf_doc import MaterialOptions, build_document, write_pieces


def write_gltf(
    path: str | os.PathLike,
    mesh: Mesh,
    texture: Texture | None,
    *,
    material: MaterialOptions | None = None,
    has_alpha: bool = False,
    extras: dict | None = None,
    compress: str = "none",
) -> list[Path]:
    """Mesh (+ texture) -> NAME.gltf + NAME.bin + NAME.<image suffix> beside it; -> the paths written.

    The .gltf is renamed into place last, so a reader never sees it before its .bin and image.
    """
    path = check_output_path(path)
    bin_path = path.with_suffix(".bin")
    image_path = path.with_name(path.stem + "_texture" + texture.suffix) if texture is not None else None
    build = build_document
    if compress != "none":
        from functools import partial

        from .compressed import build_any_compressed

        build = partial(build_any_compressed, compress=compress)
    doc = build(
        mesh,
        texture,
        material=material,
        embed_image=False,
        image_uri=image_path.name if image_path else None,
        has_alpha=has_alpha,
        extras=extras,
    )
    doc.gltf["buffers"][0]["uri"] = bin_path.name
    with atomic_open(bin_path) as f:
        write_pieces(f, doc)
    written = [bin_path]
    if texture is not None:
        with atomic_open(image_path) as f:
            f.write(texture.data)
        written.append(image_path)
    with atomic_open(path) as f:
        f.write(json.dumps(doc.gltf, indent=1).encode("utf-8"))
    return [path, *written]
