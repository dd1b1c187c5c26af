"""Small golden cases: values worked out by hand, so a change to the mesh layout shows up here first."""
from __future__ import annotations

import json
import struct

import numpy as np
from PIL import Image

import gpurelief

from gltf_read import primitive_arrays


def test_golden_2x3_relief(tmp_path, gltf_validator):
    Image.fromarray(np.full((2, 3, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    np.save(tmp_path / "d.npy", np.array([[0, 1, 2], [3, 4, 5]], np.float32))
    out = tmp_path / "g.glb"
    gpurelief.convert(tmp_path / "grey.png", out, depth_map=tmp_path / "d.npy", relief=0.1, width=1.0)
    gltf_validator(out, allow_warnings=False)
    a = primitive_arrays(out)
    expected_positions = [
        [-0.5, 0.25, 0.00], [0.0, 0.25, 0.02], [0.5, 0.25, 0.04],
        [-0.5, -0.25, 0.06], [0.0, -0.25, 0.08], [0.5, -0.25, 0.10],
    ]
    np.testing.assert_allclose(a["positions"], expected_positions, atol=1e-7)
    np.testing.assert_array_equal(a["indices"], [0, 3, 4, 0, 4, 1, 1, 4, 5, 1, 5, 2])
    assert a["indices"].dtype == np.uint16
    np.testing.assert_allclose(a["uvs"], [[1 / 6, 0.25], [0.5, 0.25], [5 / 6, 0.25],
                                          [1 / 6, 0.75], [0.5, 0.75], [5 / 6, 0.75]], atol=1e-7)
    # plane z = 0.04 x - 0.12 y + c: normal ~ (-0.04, 0.12, 1) at the centre column (central differences)
    n = np.array([-0.04, 0.12, 1.0]) / np.linalg.norm([-0.04, 0.12, 1.0])
    np.testing.assert_allclose(a["normals"], np.tile(n, (6, 1)), atol=1e-6)


def test_golden_glb_json_structure(tmp_path):
    Image.fromarray(np.full((2, 2, 3), 50, np.uint8)).save(tmp_path / "s.jpg")
    out = tmp_path / "s.glb"
    gpurelief.convert(tmp_path / "s.jpg", out)
    data = out.read_bytes()
    (json_len,) = struct.unpack("<I", data[12:16])
    doc = json.loads(data[20 : 20 + json_len])
    assert doc["asset"]["version"] == "2.0" and doc["asset"]["generator"].startswith("gpurelief ")
    assert doc["meshes"][0]["primitives"][0]["attributes"] == {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}
    assert [bv.get("target") for bv in doc["bufferViews"]] == [34962, 34962, 34962, 34963, None]
    assert [bv["byteOffset"] % 4 for bv in doc["bufferViews"]] == [0] * 5
    assert doc["accessors"][3] == {"bufferView": 3, "componentType": 5123, "count": 6, "type": "SCALAR"}
    assert doc["materials"][0]["pbrMetallicRoughness"]["metallicFactor"] == 0.0
    assert doc["samplers"][0] == {"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}
    assert doc["images"][0]["mimeType"] == "image/jpeg"
