"""Streaming GLB writer: header, JSON chunk, BIN chunk written straight from the arrays (no copy)."""
from __future__ import annotations

import json
import os
import struct

from ..errors import OutputError
from ..types import Mesh, Texture
from .atomic import atomic_open
from .gltf_doc import Document, MaterialOptions, build_document, write_pieces

GLB_MAGIC = 0x46546C67  # b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
GLB_MAX_BYTES = 2**32 - 1


def glb_json_bytes(doc: Document) -> bytes:
    """JSON chunk payload: compact UTF-8, padded with spaces to a multiple of 4."""
    js = json.dumps(doc.gltf, separators=(",", ":")).encode("utf-8")
    return js + b" " * (-len(js) % 4)


def write_glb_stream(f, doc: Document) -> int:
    """Write a whole GLB for `doc` to the binary file `f`; -> bytes written."""
    js = glb_json_bytes(doc)
    bin_len = doc.bin_length
    total = 12 + 8 + len(js) + (8 + bin_len if bin_len else 0)
    if total > GLB_MAX_BYTES:
        raise OutputError(
            f"the GLB would be {total / 2**30:.2f} GiB, over the format's 4 GiB limit; "
            "lower --max-size or write .gltf (+ .bin) instead"
        )
    f.write(struct.pack("<III", GLB_MAGIC, 2, total) + struct.pack("<II", len(js), CHUNK_JSON) + js)
    if bin_len:
        f.write(struct.pack("<II", bin_len, CHUNK_BIN))
        write_pieces(f, doc)
    return total


def write_glb(
    path: str | os.PathLike,
    mesh: Mesh,
    texture: Texture | None,
    *,
    material: MaterialOptions | None = None,
    has_alpha: bool = False,
    extras: dict | None = None,
    compress: str = "none",
) -> int:
    """Mesh (+ texture) -> a .glb file at `path`, written atomically; -> file size in bytes.

    compress: none (float streams, written zero-copy), quantize, meshopt or draco (see writers/compressed.py).
    """
    if compress == "none":
        doc = build_document(mesh, texture, material=material, has_alpha=has_alpha, extras=extras)
    else:
        from .compressed import build_any_compressed

        doc = build_any_compressed(mesh, texture, compress=compress, material=material, has_alpha=has_alpha, extras=extras)
    with atomic_open(path) as f:
        return write_glb_stream(f, doc)
