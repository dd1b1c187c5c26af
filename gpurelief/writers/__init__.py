"""Writers, chosen by suffix: .glb (binary glTF), .gltf (+ .bin + texture file); print formats (closed solid in
millimetres): .stl (binary), .3mf, .obj (+ .mtl + texture), .ply (binary)."""
from __future__ import annotations

from pathlib import Path

from ..errors import OptionError

FORMATS = {".glb": "glb", ".gltf": "gltf", ".stl": "stl", ".3mf": "3mf", ".obj": "obj", ".ply": "ply"}
# Formats that get the closed, millimetre-sized solid (top + walls + bottom) instead of the open relief surface.
PRINT_FORMATS = frozenset({"stl", "3mf", "obj", "ply"})


def format_for(path: str | Path, explicit: str | None = None) -> str:
    """Output path (+ optional --format) -> format name; unknown suffixes raise OptionError."""
    if explicit:
        fmt = explicit.lower().lstrip(".")
        if fmt not in set(FORMATS.values()):
            raise OptionError(f"--format: expected one of {', '.join(sorted(set(FORMATS.values())))}, got {explicit!r}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OptionError(
            f"{path}: cannot tell the output format from the suffix {suffix or '(none)'!r}; "
            f"use one of {', '.join(FORMATS)} or pass --format"
        )
    return FORMATS[suffix]
