"""Compressed glTF geometry: KHR_mesh_quantization, optionally packed with EXT_meshopt_compression.

quantize: positions int16 (node translation = centre, scale = half extent), normals int8 stored as
normalize(S * n) so they come out right under the non-uniform node scale, UVs uint16, all normalized.
meshopt: the same integer streams through meshoptimizer's vertex / index codecs (the `meshopt` package);
the BIN chunk holds only the compressed streams (and the image), a data-less fallback buffer carries the
decoded layout, and the extension is required (decoders: three.js, Babylon, model-viewer, gltf-transform).

The plain float layout (gltf_doc.build_document) is untouched; these documents reuse its material,
texture and asset JSON and replace only the geometry.
"""
from __future__ import annotations

import numpy as np

from ..backend import numpy_ops as ops
from ..errors import OptionError, require
from ..types import Mesh, Texture
from .gltf_doc import (
    ARRAY_BUFFER,
    ELEMENT_ARRAY_BUFFER,
    UNSIGNED_INT,
    UNSIGNED_SHORT,
    Document,
    MaterialOptions,
    _as_bytes,
    _pad4,
    build_document,
)

BYTE = 5120
SHORT = 5122
COMPRESS_MODES = ("none", "quantize", "meshopt", "draco")
QUANTIZATION = "KHR_mesh_quantization"
MESHOPT = "EXT_meshopt_compression"
DRACO = "KHR_draco_mesh_compression"


def quantized_streams(mesh: Mesh) -> dict:
    """Mesh -> the KHR_mesh_quantization arrays: positions (N, 4) int16, normals (N, 4) int8 or None,
    uvs (N, 2) uint16 or None, indices (3M,) uint16/uint32, centre and half_extent (3,) float64."""
    positions = np.ascontiguousarray(mesh.positions, dtype=np.float32)
    centre, half = ops.quantization_transform(positions)
    out = {
        "positions": ops.quantize_positions(positions, centre, half),
        "normals": None if mesh.normals is None else ops.quantize_normals(np.asarray(mesh.normals, np.float32), half),
        "uvs": None if mesh.uvs is None else ops.quantize_uvs(np.asarray(mesh.uvs, np.float32)),
        "centre": centre,
        "half_extent": half,
    }
    n = positions.shape[0]
    indices = np.ascontiguousarray(mesh.indices)
    out["indices"] = indices.astype(ops.index_dtype(n), copy=False)
    return out


def scaled_unit_normals(normals: np.ndarray, half_extent: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals -> (N, 4) float32 normalize(S * n) with w = 1: the float form of
    numpy_ops.quantize_normals (what meshopt's octahedral filter encodes)."""
    m = np.asarray(normals, np.float32) * half_extent.astype(np.float32)
    m /= np.sqrt((m * m).sum(axis=1, keepdims=True, dtype=np.float32))
    out = np.ones((m.shape[0], 4), dtype=np.float32)
    out[:, :3] = m
    return out


def _add_extension(gltf: dict, name: str, required: bool) -> None:
    used = gltf.setdefault("extensionsUsed", [])
    if name not in used:
        used.append(name)
    if required:
        req = gltf.setdefault("extensionsRequired", [])
        if name not in req:
            req.append(name)


def build_compressed_document(
    mesh: Mesh,
    texture: Texture | None,
    *,
    compress: str,
    material: MaterialOptions | None = None,
    embed_image: bool = True,
    image_uri: str | None = None,
    has_alpha: bool = False,
    extras: dict | None = None,
) -> Document:
    """Mesh (+ texture) -> Document with quantized (compress='quantize') or meshopt-packed ('meshopt') geometry."""
    if compress not in ("quantize", "meshopt"):
        raise OptionError(f"--compress: expected quantize or meshopt here, got {compress!r}")
    meshopt = require("meshopt", "compress", purpose="--compress meshopt") if compress == "meshopt" else None
    base = build_document(
        mesh, texture, material=material, embed_image=embed_image, image_uri=image_uri, has_alpha=has_alpha, extras=extras
    )
    gltf = base.gltf
    q = quantized_streams(mesh)
    n = q["positions"].shape[0]

    buffer_views: list[dict] = []
    accessors: list[dict] = []
    pieces: list = []
    offset = 0          # in buffer 0 (BIN chunk / .bin file)
    fallback = 0        # in the data-less fallback buffer 1 (meshopt only)

    def add_bin(data) -> tuple[int, int]:
        nonlocal offset
        view = _as_bytes(data)
        start = offset
        pieces.append((offset, view))
        offset = _pad4(offset + view.nbytes)
        return start, view.nbytes

    def add_view(array: np.ndarray, target: int, stride: int | None, mode: str, encoded_rows=None, filt=None) -> int:
        """encoded_rows / filt: what the meshopt codec gets instead of `array` (a filter's output) and the
        filter's name; the decoder's output then has `array`'s layout."""
        nonlocal fallback
        raw = np.ascontiguousarray(array)
        if meshopt is None:
            start, length = add_bin(raw)
            bv = {"buffer": 0, "byteOffset": start, "byteLength": length, "target": target}
            if stride:
                bv["byteStride"] = stride
        else:
            encoded = meshopt.encode_gltf_buffer(raw if encoded_rows is None else encoded_rows, mode)
            start, length = add_bin(encoded)
            count = raw.shape[0] if mode == "ATTRIBUTES" else raw.size
            size = stride if mode == "ATTRIBUTES" else raw.dtype.itemsize
            bv = {
                "buffer": 1,
                "byteOffset": fallback,
                "byteLength": raw.nbytes,
                "target": target,
                "extensions": {
                    MESHOPT: {
                        "buffer": 0, "byteOffset": start, "byteLength": length,
                        "byteStride": size, "count": count, "mode": mode,
                    }
                },
            }
            if filt:
                bv["extensions"][MESHOPT]["filter"] = filt
            if stride:
                bv["byteStride"] = stride
            fallback = _pad4(fallback + raw.nbytes)
        buffer_views.append(bv)
        return len(buffer_views) - 1

    pos = q["positions"]
    accessors.append({
        "bufferView": add_view(pos, ARRAY_BUFFER, 8, "ATTRIBUTES"),
        "componentType": SHORT, "normalized": True, "count": n, "type": "VEC3",
        "min": [int(v) for v in pos[:, :3].min(axis=0)] if n else [0, 0, 0],
        "max": [int(v) for v in pos[:, :3].max(axis=0)] if n else [0, 0, 0],
    })
    attributes = {"POSITION": 0}
    prim = gltf["meshes"][0]["primitives"][0]
    if "NORMAL" in prim["attributes"]:
        oct_rows = None
        if meshopt is not None:
            # OCTAHEDRAL filter: 8-bit octahedral normals pack ~30% smaller than int8 xyz; the decoder
            # returns int8 xyz (+ w) rows, the layout of q["normals"]
            oct_rows = meshopt.encode_filter_oct(scaled_unit_normals(mesh.normals, q["half_extent"]), 4, 8)
        accessors.append({
            "bufferView": add_view(q["normals"], ARRAY_BUFFER, 4, "ATTRIBUTES", oct_rows, "OCTAHEDRAL" if oct_rows is not None else None),
            "componentType": BYTE, "normalized": True, "count": n, "type": "VEC3",
        })
        attributes["NORMAL"] = len(accessors) - 1
    if "TEXCOORD_0" in prim["attributes"]:
        accessors.append({
            "bufferView": add_view(q["uvs"], ARRAY_BUFFER, 4, "ATTRIBUTES"),
            "componentType": UNSIGNED_SHORT, "normalized": True, "count": n, "type": "VEC2",
        })
        attributes["TEXCOORD_0"] = len(accessors) - 1
    indices = q["indices"]
    accessors.append({
        "bufferView": add_view(indices, ELEMENT_ARRAY_BUFFER, None, "TRIANGLES"),
        "componentType": UNSIGNED_SHORT if indices.dtype == np.uint16 else UNSIGNED_INT,
        "count": int(indices.size), "type": "SCALAR",
    })
    prim["attributes"] = attributes
    prim["indices"] = len(accessors) - 1

    if texture is not None and embed_image:
        start, length = add_bin(texture.data)
        buffer_views.append({"buffer": 0, "byteOffset": start, "byteLength": length})
        gltf["images"][0]["bufferView"] = len(buffer_views) - 1

    gltf["accessors"] = accessors
    gltf["bufferViews"] = buffer_views
    gltf["buffers"] = [{"byteLength": offset}]
    gltf["nodes"][0]["translation"] = [float(v) for v in q["centre"]]
    gltf["nodes"][0]["scale"] = [float(v) for v in q["half_extent"]]
    _add_extension(gltf, QUANTIZATION, required=True)
    if meshopt is not None:
        gltf["buffers"].append({"byteLength": fallback, "extensions": {MESHOPT: {"fallback": True}}})
        _add_extension(gltf, MESHOPT, required=True)
    return Document(gltf=gltf, pieces=pieces, bin_length=offset)


def build_any_compressed(mesh: Mesh, texture: Texture | None, *, compress: str, **kwargs) -> Document:
    """compress in quantize | meshopt | draco -> the matching Document (draco needs the [draco] extra)."""
    if compress == "draco":
        from .draco import build_draco_document

        return build_draco_document(mesh, texture, **kwargs)
    if compress not in COMPRESS_MODES or compress == "none":
        raise OptionError(f"--compress: expected one of {', '.join(COMPRESS_MODES)}, got {compress!r}")
    return build_compressed_document(mesh, texture, compress=compress, **kwargs)
