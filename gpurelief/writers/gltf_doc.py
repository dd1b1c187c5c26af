"""Mesh + Texture -> glTF JSON and an ordered list of binary pieces with their byte offsets.

Shared by the GLB writer (pieces in the BIN chunk, image in a bufferView) and the .gltf writer
(pieces in a .bin file, image as its own file). Nothing here copies array data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..types import Mesh, Texture
from ..backend import is_device_array, numpy_ops
from .device_stream import DEFAULT_CHUNK_BYTES, DevicePiece, make_copier, stream_chunks

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
FLOAT = 5126
UNSIGNED_SHORT = 5123
UNSIGNED_INT = 5125
LINEAR = 9729
LINEAR_MIPMAP_LINEAR = 9987
CLAMP_TO_EDGE = 33071
ALPHA_MODES = ("opaque", "mask", "blend")


@dataclass
class MaterialOptions:
    """How the photo is shaded. Defaults: lit, metallic 0, roughness 0.9, single-sided, alpha MASK 0.5."""

    double_sided: bool = False
    unlit: bool = False
    roughness: float = 0.9
    alpha_mode: str = "mask"  # used only when the texture has alpha
    alpha_cutoff: float = 0.5
    name: str = "photo"


@dataclass
class Document:
    gltf: dict
    pieces: list[tuple[int, Any]] = field(default_factory=list)  # (byte offset in BIN, bytes-like)
    bin_length: int = 0


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _contiguous(a, dtype=None):
    """numpy or device array -> C-contiguous array of `dtype` in the same memory space (no copy if it is one)."""
    if is_device_array(a):
        import cupy

        return cupy.ascontiguousarray(a, dtype=dtype)
    return np.ascontiguousarray(a, dtype=dtype)


def _as_bytes(a) -> memoryview | DevicePiece:
    if is_device_array(a):
        return DevicePiece(_contiguous(a))
    if isinstance(a, (bytes, bytearray, memoryview)):
        return memoryview(a).cast("B")
    arr = np.ascontiguousarray(a)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return memoryview(arr).cast("B")


def build_document(
    mesh: Mesh,
    texture: Texture | None,
    *,
    material: MaterialOptions | None = None,
    embed_image: bool = True,
    image_uri: str | None = None,
    has_alpha: bool = False,
    extras: dict | None = None,
) -> Document:
    """-> Document: JSON for one node / mesh / material, and the BIN pieces (positions, normals,
    uvs, indices[, image]) at 4-byte aligned offsets. POSITION min/max are exact."""
    material = material or MaterialOptions()
    positions = _contiguous(mesh.positions, np.float32)
    n = positions.shape[0]
    indices = _contiguous(mesh.indices)
    if indices.dtype not in (np.uint16, np.uint32):
        indices = indices.astype(np.uint32 if n > 65535 else np.uint16)
    if indices.dtype == np.uint16 and n > 65535:
        indices = indices.astype(np.uint32)

    buffer_views: list[dict] = []
    accessors: list[dict] = []
    pieces: list[tuple[int, Any]] = []
    offset = 0

    def add_view(data, target: int | None) -> int:
        nonlocal offset
        view = _as_bytes(data)
        bv = {"buffer": 0, "byteOffset": offset, "byteLength": view.nbytes}
        if target is not None:
            bv["target"] = target
        buffer_views.append(bv)
        pieces.append((offset, view))
        offset = _pad4(offset + view.nbytes)
        return len(buffer_views) - 1

    if "position_bounds" in mesh.extras:  # exact, from the mesher (grid_mesh): no pass over the array
        pos_min, pos_max = mesh.extras["position_bounds"]
    elif is_device_array(positions):  # one kernel per column (CuPy's strided reductions take ~40 ms at 8 M rows)
        from ..backend import cupy_ops

        pos_min, pos_max = cupy_ops.column_bounds(positions)
    else:
        pos_min, pos_max = numpy_ops.column_bounds(positions)
    accessors.append(
        {
            "bufferView": add_view(positions, ARRAY_BUFFER),
            "componentType": FLOAT,
            "count": n,
            "type": "VEC3",
            "min": [float(x) for x in pos_min],
            "max": [float(x) for x in pos_max],
        }
    )
    attributes = {"POSITION": 0}
    if mesh.normals is not None:
        accessors.append(
            {
                "bufferView": add_view(_contiguous(mesh.normals, np.float32), ARRAY_BUFFER),
                "componentType": FLOAT,
                "count": n,
                "type": "VEC3",
            }
        )
        attributes["NORMAL"] = len(accessors) - 1
    if mesh.uvs is not None and texture is not None:
        accessors.append(
            {
                "bufferView": add_view(_contiguous(mesh.uvs, np.float32), ARRAY_BUFFER),
                "componentType": FLOAT,
                "count": n,
                "type": "VEC2",
            }
        )
        attributes["TEXCOORD_0"] = len(accessors) - 1
    accessors.append(
        {
            "bufferView": add_view(indices, ELEMENT_ARRAY_BUFFER),
            "componentType": UNSIGNED_SHORT if indices.dtype == np.uint16 else UNSIGNED_INT,
            "count": int(indices.shape[0]),
            "type": "SCALAR",
        }
    )
    index_accessor = len(accessors) - 1

    mat: dict = {
        "name": material.name,
        "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": float(material.roughness)},
    }
    extensions_used: list[str] = []
    extensions_required: list[str] = []
    gltf: dict = {"asset": {"version": "2.0", "generator": f"gpurelief {__version__}"}}
    if texture is not None:
        if embed_image:
            image = {"bufferView": add_view(texture.data, None), "mimeType": texture.mime}
        else:
            image = {"uri": image_uri, "mimeType": texture.mime}
        gltf["images"] = [image]
        gltf["samplers"] = [
            {"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR, "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}
        ]
        gltf["textures"] = [{"sampler": 0, "source": 0}]
        if texture.mime == "image/webp":
            # core glTF images are JPEG/PNG only: WebP goes through EXT_texture_webp (required: no fallback image)
            gltf["textures"] = [{"sampler": 0, "extensions": {"EXT_texture_webp": {"source": 0}}}]
            extensions_used.append("EXT_texture_webp")
            extensions_required.append("EXT_texture_webp")
        mat["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    if has_alpha and texture is not None:
        if material.alpha_mode == "mask":
            mat["alphaMode"] = "MASK"
            mat["alphaCutoff"] = float(material.alpha_cutoff)
        elif material.alpha_mode == "blend":
            mat["alphaMode"] = "BLEND"
    if material.double_sided:
        mat["doubleSided"] = True
    if material.unlit:
        mat["extensions"] = {"KHR_materials_unlit": {}}
        extensions_used.append("KHR_materials_unlit")

    gltf.update(
        {
            "scene": 0,
            "scenes": [{"nodes": [0]}],
            "nodes": [{"mesh": 0, "name": "relief"}],
            "meshes": [
                {
                    "name": "relief",
                    "primitives": [
                        {"attributes": attributes, "indices": index_accessor, "material": 0, "mode": 4}
                    ],
                }
            ],
            "materials": [mat],
            "accessors": accessors,
            "bufferViews": buffer_views,
            "buffers": [{"byteLength": offset}],
        }
    )
    if extensions_used:
        gltf["extensionsUsed"] = extensions_used
    if extensions_required:
        gltf["extensionsRequired"] = extensions_required
    if extras:
        gltf["asset"]["extras"] = extras
    return Document(gltf=gltf, pieces=pieces, bin_length=offset)


def write_pieces(f, doc: Document, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
    """Write the BIN payload of `doc` (pieces and zero padding, doc.bin_length bytes) to `f`.

    Host pieces are written straight from their memory. Device pieces (CuPy arrays) stream through
    two pinned buffers of `chunk_bytes` (writers.device_stream), copies overlapped with writes.
    """
    items = []
    pos = 0
    for offset, view in doc.pieces:
        if offset > pos:
            items.append(b"\x00" * (offset - pos))
        items.append(view)
        pos = offset + view.nbytes
    if doc.bin_length > pos:
        items.append(b"\x00" * (doc.bin_length - pos))
    device = [v for v in items if isinstance(v, DevicePiece)]
    if not device:
        for item in items:
            f.write(item)
        return
    stream_chunks(f.write, items, make_copier(device[0]), chunk_bytes=chunk_bytes)
