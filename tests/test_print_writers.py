"""writers/{stl,threemf,obj,ply}.py: byte layout, and round trips through trimesh (an independent reader)."""
from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest

from gpurelief.errors import OutputError
from gpurelief.mesh.grid import grid_mesh
from gpurelief.mesh.solid import solid_mesh
from gpurelief.types import Heightfield, Mesh, Texture
from gpurelief.writers import stl as stl_module
from gpurelief.writers.obj import write_obj
from gpurelief.writers.ply import write_ply
from gpurelief.writers.stl import ALLOW_LARGE_FLAG, write_stl
from gpurelief.writers.threemf import write_3mf

trimesh = pytest.importorskip("trimesh")


@pytest.fixture(scope="module")
def solid() -> Mesh:
    rng = np.random.default_rng(3)
    hf = Heightfield(heights=rng.random((12, 16)).astype(np.float32), image_size=(120, 160))
    top = grid_mesh(hf, width=60.0, relief_frac=4.0 / 60.0, units="mm")
    return solid_mesh(top, base=2.0, border=3.0)


@pytest.fixture
def texture() -> Texture:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), (200, 30, 60), np.uint8)).save(buf, "JPEG")
    return Texture(buf.getvalue(), "image/jpeg", 8, 8)


def colors_for(mesh: Mesh) -> np.ndarray:
    return (np.arange(mesh.vertex_count * 3).reshape(-1, 3) % 251).astype(np.uint8)


def assert_same_solid(loaded, mesh: Mesh) -> None:
    assert loaded.is_watertight and loaded.is_winding_consistent and loaded.is_volume
    ref = trimesh.Trimesh(np.asarray(mesh.positions, np.float64), np.asarray(mesh.indices, np.int64).reshape(-1, 3),
                          process=False)
    assert loaded.volume == pytest.approx(ref.volume, rel=1e-5) and loaded.volume > 0
    assert np.allclose(loaded.bounds, ref.bounds, atol=1e-4)
    assert len(loaded.faces) == mesh.triangle_count


def test_stl_bytes_match_the_format_written_field_by_field(tmp_path):
    positions = np.float32([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]])
    tetra = Mesh(positions=positions, normals=np.zeros_like(positions), uvs=np.zeros((4, 2), np.float32),
                 indices=np.uint16([0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3]), units="mm")
    path = tmp_path / "tetra.stl"
    size = write_stl(path, tetra)
    data = path.read_bytes()
    assert size == len(data) == 84 + 4 * 50
    assert not data.startswith(b"solid")  # would make readers try ASCII STL
    expected = bytearray(data[:80])
    expected += struct.pack("<I", 4)
    for tri in tetra.indices.reshape(-1, 3):
        p = positions[tri].astype(np.float64)
        n = np.cross(p[1] - p[0], p[2] - p[0])
        n /= np.linalg.norm(n)
        expected += struct.pack("<3f", *n) + struct.pack("<9f", *p.reshape(-1)) + struct.pack("<H", 0)
    assert data == bytes(expected)


def test_stl_round_trips_through_trimesh_as_a_closed_outward_solid(tmp_path, solid):
    path = tmp_path / "solid.stl"
    write_stl(path, solid)
    loaded = trimesh.load(path, force="mesh")
    assert_same_solid(loaded, solid)
    raw = np.frombuffer(path.read_bytes(), dtype=stl_module.STL_TRIANGLE, offset=84)
    # stored facet normals agree with the winding (outward) as trimesh computes it
    assert np.allclose(raw["normal"], trimesh.Trimesh(raw["corners"].reshape(-1, 3),
                       np.arange(3 * len(raw)).reshape(-1, 3), process=False).face_normals, atol=1e-5)


def test_stl_chunks_write_the_same_bytes(tmp_path, solid, monkeypatch):
    whole = tmp_path / "whole.stl"
    write_stl(whole, solid)
    monkeypatch.setattr(stl_module, "_CHUNK_TRIANGLES", 7)
    chunked = tmp_path / "chunked.stl"
    write_stl(chunked, solid)
    assert chunked.read_bytes() == whole.read_bytes()


def test_stl_over_the_size_limit_is_refused_naming_the_flag(tmp_path, solid):
    path = tmp_path / "big.stl"
    with pytest.raises(OutputError, match=ALLOW_LARGE_FLAG):
        write_stl(path, solid, limit=1000)
    assert list(tmp_path.iterdir()) == []
    write_stl(path, solid, limit=1000, allow_large=True)
    assert path.stat().st_size == 84 + 50 * solid.triangle_count


def test_3mf_round_trips_with_millimetres_and_vertex_colours(tmp_path, solid):
    path = tmp_path / "solid.3mf"
    colors = colors_for(solid)
    write_3mf(path, solid, colors=colors)
    assert_same_solid(trimesh.load(path, force="mesh"), solid)
    with zipfile.ZipFile(path) as z:
        assert {"[Content_Types].xml", "_rels/.rels", "3D/3dmodel.model"} <= set(z.namelist())
        root = ET.fromstring(z.read("3D/3dmodel.model"))
    core = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
    mat = "{http://schemas.microsoft.com/3dmanufacturing/material/2015/02}"
    assert root.get("unit") == "millimeter"
    group = root.find(f"{core}resources/{mat}colorgroup")
    stored = [c.get("color") for c in group]
    assert stored == ["#%02X%02X%02X" % tuple(c) for c in colors]
    obj = root.find(f"{core}resources/{core}object")
    assert obj.get("pid") == group.get("id")
    first = obj.find(f"{core}mesh/{core}triangles/{core}triangle")
    assert [first.get(k) for k in ("p1", "p2", "p3")] == [first.get(k) for k in ("v1", "v2", "v3")]


def test_3mf_passes_lib3mf_strict_reading_as_manifold_and_oriented(tmp_path, solid):
    """The 3MF Consortium's own library is the judge: strict mode, no warnings, its manifold check, colours."""
    lib3mf = pytest.importorskip("lib3mf")
    path = tmp_path / "solid.3mf"
    colors = colors_for(solid)
    write_3mf(path, solid, colors=colors)
    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    reader = model.QueryReader("3mf")
    reader.SetStrictModeActive(True)
    reader.ReadFromFile(str(path))
    assert [reader.GetWarning(i) for i in range(reader.GetWarningCount())] == []
    assert model.GetUnit() == lib3mf.ModelUnit.MilliMeter
    objects = model.GetMeshObjects()
    assert objects.MoveNext()
    mesh = objects.GetCurrentMeshObject()
    assert (mesh.GetVertexCount(), mesh.GetTriangleCount()) == (solid.vertex_count, solid.triangle_count)
    assert mesh.IsManifoldAndOriented()
    groups = model.GetColorGroups()
    assert groups.MoveNext()
    group = groups.GetCurrentColorGroup()
    ids = group.GetAllPropertyIDs()
    assert len(ids) == solid.vertex_count
    read = [(c.Red, c.Green, c.Blue) for c in (group.GetColor(i) for i in ids[:50])]
    assert read == [tuple(c) for c in colors[:50].tolist()]
    # each corner's colour is its vertex's colour: property id k+1 belongs to vertex k
    first = mesh.GetTriangleProperties(0)
    assert [ids.index(p) for p in first.PropertyIDs] == solid.indices[:3].tolist()


def test_3mf_geometry_only(tmp_path, solid):
    path = tmp_path / "plain.3mf"
    write_3mf(path, solid)
    assert_same_solid(trimesh.load(path, force="mesh"), solid)


def test_obj_round_trips_with_material_texture_and_v_up_uvs(tmp_path, solid, texture):
    path = tmp_path / "plaque.obj"
    paths = write_obj(path, solid, texture)
    assert [p.name for p in paths] == ["plaque.obj", "plaque.mtl", "plaque_texture.jpg"]
    assert (tmp_path / "plaque_texture.jpg").read_bytes() == texture.data
    assert "map_Kd plaque_texture.jpg" in (tmp_path / "plaque.mtl").read_text()
    loaded = trimesh.load(path, force="mesh", process=False, maintain_order=True)
    assert_same_solid(loaded, solid)
    assert loaded.visual.material.image.size == (8, 8)
    uv = np.asarray(solid.uvs)
    assert np.allclose(loaded.visual.uv, np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1), atol=1e-5)


def test_ply_round_trips_with_vertex_colours(tmp_path, solid):
    path = tmp_path / "solid.ply"
    colors = colors_for(solid)
    assert write_ply(path, solid, colors=colors) == [path]
    assert path.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    loaded = trimesh.load(path, force="mesh", process=False)
    assert_same_solid(loaded, solid)
    assert np.array_equal(loaded.visual.vertex_colors[:, :3], colors)


def test_ply_round_trips_with_uvs_and_texture_file(tmp_path, solid, texture):
    path = tmp_path / "solid.ply"
    paths = write_ply(path, solid, texture=texture)
    assert paths == [path, tmp_path / "solid_texture.jpg"]
    assert b"comment TextureFile solid_texture.jpg\n" in path.read_bytes()[:400]
    loaded = trimesh.load(path, force="mesh", process=False)
    assert loaded.visual.material.image.size == (8, 8)
    assert len(loaded.faces) == solid.triangle_count
