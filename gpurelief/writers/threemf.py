"""3MF (3D Manufacturing Format): a zip holding [Content_Types].xml, _rels/.rels and 3D/3dmodel.model.

Geometry in millimetres (unit="millimeter"); optional per-vertex colours through the Materials and
Properties extension (one m:colorgroup, triangles pick a colour per corner via p1/p2/p3).
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from ..types import Mesh
from .atomic import atomic_open
from .textfmt import format_rows

CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
MATERIAL_NS = "http://schemas.microsoft.com/3dmanufacturing/material/2015/02"
MODEL_PATH = "3D/3dmodel.model"
UNITS_3MF = {"mm": "millimeter", "cm": "centimeter", "m": "meter", "in": "inch", "ft": "foot"}

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    "</Types>\n"
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Target="/{MODEL_PATH}" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    "</Relationships>\n"
)


def model_xml(mesh: Mesh, *, colors: np.ndarray | None = None) -> str:
    """Mesh (+ (N, 3) uint8 vertex colours) -> the 3dmodel.model XML document."""
    positions = np.asarray(mesh.positions, dtype=np.float32)
    triangles = np.asarray(mesh.indices).reshape(-1, 3).astype(np.int64)
    unit = UNITS_3MF.get(mesh.units, "millimeter")
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<model unit="{unit}" xml:lang="en-US" xmlns="{CORE_NS}" xmlns:m="{MATERIAL_NS}">\n',
        '<metadata name="Application">gpurelief</metadata>\n<resources>\n',
    ]
    if colors is not None:
        parts.append('<m:colorgroup id="2">\n')
        parts.append(format_rows('<m:color color="#%02X%02X%02X"/>\n', np.asarray(colors, dtype=np.uint8)))
        parts.append("</m:colorgroup>\n")
        parts.append('<object id="1" type="model" pid="2" pindex="0">\n')
    else:
        parts.append('<object id="1" type="model">\n')
    parts.append("<mesh>\n<vertices>\n")
    parts.append(format_rows('<vertex x="%.6g" y="%.6g" z="%.6g"/>\n', positions))
    parts.append("</vertices>\n<triangles>\n")
    if colors is not None:
        # the colour of each corner is the colour of its vertex: p1..p3 repeat v1..v3
        parts.append(format_rows('<triangle v1="%d" v2="%d" v3="%d" p1="%d" p2="%d" p3="%d"/>\n',
                                 np.concatenate([triangles, triangles], axis=1)))
    else:
        parts.append(format_rows('<triangle v1="%d" v2="%d" v3="%d"/>\n', triangles))
    parts.append('</triangles>\n</mesh>\n</object>\n</resources>\n<build>\n<item objectid="1"/>\n</build>\n</model>\n')
    return "".join(parts)


def write_3mf(path: str | os.PathLike, mesh: Mesh, *, colors: np.ndarray | None = None) -> int:
    """Mesh (+ vertex colours) -> a .3mf package at `path`, atomically; -> bytes written."""
    xml = model_xml(mesh, colors=colors).encode("utf-8")
    # deflate level 1: half the time of level 6 on this XML for a file ~1.3x larger (26 vs 20 MB at 2.1M triangles)
    with atomic_open(path) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr("[Content_Types].xml", CONTENT_TYPES)
            z.writestr("_rels/.rels", RELS)
            z.writestr(MODEL_PATH, xml)
        return f.tell()
