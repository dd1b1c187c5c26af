"""Test-side reader: pygltflib parses the file, numpy views the accessors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib

DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def load(path: Path):
    """-> (pygltflib.GLTF2, binary blob bytes)."""
    path = Path(path)
    g = pygltflib.GLTF2().load(str(path))
    if path.suffix == ".glb":
        blob = g.binary_blob()
    else:
        blob = (path.parent / g.buffers[0].uri).read_bytes()
    return g, blob


def accessor(g, blob: bytes, index: int) -> np.ndarray:
    acc = g.accessors[index]
    bv = g.bufferViews[acc.bufferView]
    dt = np.dtype(DTYPES[acc.componentType])
    width = WIDTH[acc.type]
    start = (bv.byteOffset or 0) + (acc.byteOffset or 0)
    stride = bv.byteStride or dt.itemsize * width
    raw = np.frombuffer(blob, dtype=np.uint8, count=stride * (acc.count - 1) + dt.itemsize * width, offset=start)
    rows = np.lib.stride_tricks.as_strided(raw, shape=(acc.count, dt.itemsize * width), strides=(stride, 1))
    return np.ascontiguousarray(rows).view(dt).reshape(acc.count, width) if width > 1 else np.ascontiguousarray(rows).view(dt).reshape(-1)


def image_bytes(g, blob: bytes, path: Path) -> bytes:
    img = g.images[0]
    if img.bufferView is not None:
        bv = g.bufferViews[img.bufferView]
        return blob[bv.byteOffset : bv.byteOffset + bv.byteLength]
    return (Path(path).parent / img.uri).read_bytes()


def primitive_arrays(path: Path) -> dict:
    """-> dict with positions, normals, uvs, indices arrays and the parsed document under 'gltf'."""
    g, blob = load(path)
    prim = g.meshes[0].primitives[0]
    out = {"gltf": g, "blob": blob}
    out["positions"] = accessor(g, blob, prim.attributes.POSITION)
    out["normals"] = accessor(g, blob, prim.attributes.NORMAL) if prim.attributes.NORMAL is not None else None
    out["uvs"] = accessor(g, blob, prim.attributes.TEXCOORD_0) if prim.attributes.TEXCOORD_0 is not None else None
    out["indices"] = accessor(g, blob, prim.indices)
    out["image"] = image_bytes(g, blob, path) if g.images else None
    return out
