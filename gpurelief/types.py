"""Values passed between stages. Arrays are numpy (CPU reference) or CuPy (GPU) with the same shapes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Texture:
    """Encoded image bytes ready for a glTF `image`: mime is image/jpeg, image/png or image/webp."""

    data: bytes
    mime: str
    width: int
    height: int

    @property
    def suffix(self) -> str:
        return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}[self.mime]


@dataclass
class Image:
    """A decoded photo, EXIF orientation applied.

    pixels: (H, W, 3) uint8 RGB or (H, W, 4) uint8 RGBA (alpha kept only when it is not all opaque).
    source_bytes / source_format: the file as read, so a JPEG can be embedded without re-encoding.
    raw_orientation: EXIF orientation tag of the source (1 = none); the source bytes are stored
    un-rotated, which the texture step accounts for.
    """

    pixels: np.ndarray
    path: Path | None = None
    source_bytes: bytes | None = None
    source_format: str | None = None  # Pillow format name: JPEG, PNG, BMP, GIF, TIFF, WEBP, ...
    source_mode: str | None = None    # Pillow mode before conversion: RGB, P, I;16, CMYK, ...
    raw_orientation: int = 1

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4

    @property
    def alpha(self) -> np.ndarray | None:
        return self.pixels[..., 3] if self.has_alpha else None

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "<array>"


@dataclass
class DepthMap:
    """(H, W) float32 relative depth, larger = nearer. Any affine scale; NaN marks no-data."""

    values: Any
    source: str = "heuristic"
    notes: list = field(default_factory=list)  # for the user, e.g. a likely no-data value left in the map


@dataclass
class Heightfield:
    """(GH, GW) float32 heights in [0, 1] (1 = nearest / highest) on the mesh grid.

    image_size: (H, W) of the photo the grid samples, so UVs and aspect can be derived.
    valid: optional (GH, GW) bool mask; False marks samples cut by alpha (--cut-transparent).
    """

    heights: Any
    image_size: tuple[int, int]
    valid: Any = None
    notes: list = field(default_factory=list)  # from the depth stage (DepthMap.notes)

    @property
    def grid_size(self) -> tuple[int, int]:
        return int(self.heights.shape[0]), int(self.heights.shape[1])


@dataclass
class Mesh:
    """Indexed triangle mesh, counter-clockwise seen from +Z.

    positions (N, 3) float32, normals (N, 3) float32 unit length, uvs (N, 2) float32 (glTF: v down),
    indices (3M,) uint16 when N <= 65535 else uint32.
    """

    positions: Any
    normals: Any
    uvs: Any
    indices: Any
    units: str = "m"
    extras: dict = field(default_factory=dict)

    @property
    def vertex_count(self) -> int:
        return int(self.positions.shape[0])

    @property
    def triangle_count(self) -> int:
        return int(self.indices.shape[0]) // 3
