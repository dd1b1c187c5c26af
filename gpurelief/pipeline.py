"""convert(input, output, options): the only module that knows every stage.

decode -> depth -> condition -> mesh -> texture -> write, one timed block per stage.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .backend import numpy_ops as ops
from .condition import condition
from .decode import DEFAULT_MAX_PIXELS, load_image
from .depth import estimate_depth, load_depth_map
from .errors import OptionError
from .mesh.grid import grid_mesh
from .presets import apply_preset
from .texture import DEFAULT_TEXTURE_MAX, make_texture, raw_uvs
from .types import DepthMap, Heightfield, Image, Mesh, Texture
from .writers import format_for
from .writers.atomic import check_output_path
from .writers.glb import write_glb
from .writers.gltf import write_gltf
from .writers.gltf_doc import ALPHA_MODES, MaterialOptions

UNITS_TO_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}
DEFAULT_MAX_SIZE = 1024


@dataclass
class ConvertOptions:
    """Every knob of `convert`, with the CLI's defaults. Sizes are in `units`; glTF output is metres."""

    # input
    frame: int = 0
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    # depth
    depth_map: str | os.PathLike | None = None
    # heightfield
    relief: float = 0.1              # relief height as a fraction of the width
    invert: bool = False
    gamma: float = 1.0
    contrast: float = 1.0
    smooth_px: float = 0.0           # Gaussian sigma in grid samples
    clip_pct: tuple[float, float] | None = None  # None: (1, 99) for estimated depth, (0, 100) for --depth-map
    max_size: int | None = DEFAULT_MAX_SIZE     # vertices on the longest side; None = every pixel
    # geometry
    width: float = 1.0
    units: str = "m"
    cut_transparent: bool = False
    # texture and material
    texture_format: str = "auto"
    texture_max: int | None = DEFAULT_TEXTURE_MAX
    texture_quality: int = 90
    double_sided: bool = False
    unlit: bool = False
    alpha_mode: str = "mask"
    alpha_cutoff: float = 0.5
    # output
    format: str | None = None
    # compact meshes (mesh/adaptive.py, writers/compressed.py, presets.py)
    mesh: str = "grid"                     # grid | adaptive
    max_error: str | float | None = None   # adaptive: model units (--units) or "E%" of the relief height
    max_triangles: int | None = None       # adaptive: upper limit on triangles
    quality_pass: bool = False             # adaptive: greedy vertex merging within the bound (slower, fewer triangles)
    compress: str = "none"                 # none | quantize | meshopt | draco
    preset: str | None = None              # web | ar | print | archive (fills options left at defaults)

    def validate(self) -> "ConvertOptions":
        self.validate_compact()
        if self.units not in UNITS_TO_METRES:
            raise OptionError(f"--units: expected one of {', '.join(UNITS_TO_METRES)}, got {self.units!r}")
        if self.max_size is not None and self.max_size < 2:
            raise OptionError(f"--max-size: expected at least 2 vertices (or 'full'), got {self.max_size}")
        if self.alpha_mode not in ALPHA_MODES:
            raise OptionError(f"--alpha-mode: expected one of {', '.join(ALPHA_MODES)}, got {self.alpha_mode!r}")
        if not 0.0 <= self.alpha_cutoff <= 1.0:
            raise OptionError(f"--alpha-cutoff: expected 0..1, got {self.alpha_cutoff}")
        if self.texture_max is not None and self.texture_max < 1:
            raise OptionError(f"--texture-max: expected a positive pixel count, got {self.texture_max}")
        if not (self.width > 0 and np.isfinite(self.width)):
            raise OptionError(f"--width: expected a positive size, got {self.width}")
        if not (self.relief >= 0 and np.isfinite(self.relief)):
            raise OptionError(f"--relief: expected >= 0 (fraction of the width), got {self.relief}")
        return self


    def validate_compact(self) -> None:
        from .mesh.adaptive import parse_max_error
        from .writers.compressed import COMPRESS_MODES

        if self.mesh not in ("grid", "adaptive"):
            raise OptionError(f"--mesh: expected grid or adaptive, got {self.mesh!r}")
        if self.compress not in COMPRESS_MODES:
            raise OptionError(f"--compress: expected one of {', '.join(COMPRESS_MODES)}, got {self.compress!r}")
        if self.mesh == "grid" and (self.max_error is not None or self.max_triangles is not None or self.quality_pass):
            raise OptionError(
                "--max-error / --max-triangles / --quality-pass need --mesh adaptive (the grid keeps every sample)"
            )
        if self.max_error is not None:
            parse_max_error(self.max_error)
        if self.max_triangles is not None and self.max_triangles < 2:
            raise OptionError(f"--max-triangles: expected at least 2, got {self.max_triangles}")


@dataclass
class ConvertResult:
    outputs: list[Path]
    vertex_count: int
    triangle_count: int
    grid_size: tuple[int, int]
    image_size: tuple[int, int]
    bytes_written: int
    timings: dict[str, float] = field(default_factory=dict)
    max_error: float | None = None  # adaptive mesh: measured max vertical error over every sample, in --units


class StageTimer:
    """Collects wall time per stage; `report` is called with (stage, seconds) as each one ends."""

    def __init__(self, report: Callable[[str, float], None] | None = None):
        self.timings: dict[str, float] = {}
        self.report = report

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.timings[name] = self.timings.get(name, 0.0) + dt
            if self.report:
                self.report(name, dt)


def _options(options: ConvertOptions | None, overrides: dict) -> ConvertOptions:
    opts = options or ConvertOptions()
    if overrides:
        known = {f.name for f in fields(ConvertOptions)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; see gpurelief.ConvertOptions")
        opts = replace(opts, **overrides)
    return apply_preset(opts).validate()


def refuse_overwriting_inputs(output: Path, input, opts: ConvertOptions) -> None:
    """An output (or a .gltf's sidecar .bin / _texture file) must never replace an input file."""
    inputs = [p for p in (input, opts.depth_map) if isinstance(p, (str, os.PathLike))]
    targets = [output, output.with_suffix(".bin")] + [
        output.with_name(output.stem + "_texture" + s) for s in (".jpg", ".png", ".webp")
    ]
    for src in inputs:
        src = Path(src)
        for t in targets:
            if src.exists() and t.exists() and os.path.samefile(src, t):
                raise OptionError(f"{output}: writing it would overwrite the input {src}; choose another output name")


def clip_percentiles(opts: ConvertOptions) -> tuple[float, float]:
    """Estimated depth has outliers (specular highlights): clamp 1..99 %. Given maps are data: keep all."""
    if opts.clip_pct is not None:
        return tuple(opts.clip_pct)
    return (0.0, 100.0) if opts.depth_map is not None else (1.0, 99.0)


def compute_depth(image: Image, opts: ConvertOptions, grid_size: tuple[int, int]) -> DepthMap:
    """The depth stage: a given map, or the model-free estimate at the grid resolution."""
    if opts.depth_map is not None:
        return load_depth_map(opts.depth_map, max_pixels=opts.max_pixels)
    pixels = image.pixels[..., :3]
    if pixels.shape[:2] != tuple(grid_size):
        pixels = ops.resize_rgb(np.ascontiguousarray(pixels), grid_size)
    return estimate_depth(pixels)


def build_mesh(image: Image, opts: ConvertOptions, timer: StageTimer) -> tuple[Mesh, Heightfield]:
    """Image -> (Mesh in metres with UVs on the displayed photo, Heightfield)."""
    image_size = (image.height, image.width)
    grid_size = ops.grid_shape(image_size, opts.max_size)
    with timer.stage("depth"):
        depth = compute_depth(image, opts, grid_size)
    with timer.stage("condition"):
        hf = condition(
            depth,
            image_size=image_size,
            grid_size=grid_size,
            clip_pct=clip_percentiles(opts),
            invert=opts.invert,
            smooth_px=opts.smooth_px,
            gamma=opts.gamma,
            contrast=opts.contrast,
            alpha=image.alpha,
            cut_transparent=opts.cut_transparent,
        )
    with timer.stage("mesh"):
        width_m = opts.width * UNITS_TO_METRES[opts.units]
        if opts.mesh == "adaptive":
            mesh = adaptive_from_options(hf, opts, width_m)
        else:
            mesh = grid_mesh(hf, width=width_m, relief_frac=opts.relief)
    return mesh, hf


def adaptive_from_options(hf: Heightfield, opts: ConvertOptions, width_m: float) -> Mesh:
    """--mesh adaptive: --max-error in --units (or % of the relief height) and/or --max-triangles."""
    from .mesh.adaptive import adaptive_mesh, parse_max_error

    max_error_m = max_error_frac = None
    if opts.max_error is not None:
        value, pct = parse_max_error(opts.max_error)
        if pct:
            max_error_frac = value / 100.0
        else:
            max_error_m = value * UNITS_TO_METRES[opts.units]
    elif opts.max_triangles is None:
        max_error_frac = 0.001  # the documented default: 0.1% of the relief height
    return adaptive_mesh(
        hf, width=width_m, relief_frac=opts.relief, max_error=max_error_m, max_error_frac=max_error_frac,
        max_triangles=opts.max_triangles, quality_pass=opts.quality_pass,
    )


def write_mesh(
    output: Path, fmt: str, mesh: Mesh, texture: Texture | None, image: Image, opts: ConvertOptions
) -> tuple[list[Path], int]:
    material = MaterialOptions(
        double_sided=opts.double_sided, unlit=opts.unlit, alpha_mode=opts.alpha_mode, alpha_cutoff=opts.alpha_cutoff
    )
    extras = {"source": image.path.name if image.path else None, "width": opts.width, "units": opts.units}
    if fmt == "glb":
        size = write_glb(
            output, mesh, texture, material=material, has_alpha=image.has_alpha, extras=extras, compress=opts.compress
        )
        return [output], size
    paths = write_gltf(
        output, mesh, texture, material=material, has_alpha=image.has_alpha, extras=extras, compress=opts.compress
    )
    return paths, sum(p.stat().st_size for p in paths)


def convert(
    input: str | os.PathLike | Image,
    output: str | os.PathLike,
    options: ConvertOptions | None = None,
    *,
    report: Callable[[str, float], None] | None = None,
    **overrides,
) -> ConvertResult:
    """Photo file (or Image) -> relief model file(s) at `output` (.glb, or .gltf + .bin + texture).

    Options come as a ConvertOptions and/or keyword overrides (`convert("a.jpg", "a.glb", relief=0.2)`).
    `report(stage, seconds)` is called as each stage ends (the CLI's -v).
    """
    opts = _options(options, overrides)
    output = Path(output)
    fmt = format_for(output, opts.format)
    check_output_path(output)
    refuse_overwriting_inputs(output, input, opts)
    timer = StageTimer(report)
    with timer.stage("decode"):
        image = input if isinstance(input, Image) else load_image(input, frame=opts.frame, max_pixels=opts.max_pixels)
    mesh, hf = build_mesh(image, opts, timer)
    with timer.stage("texture"):
        texture, orientation = make_texture(
            image, texture_format=opts.texture_format, texture_max=opts.texture_max, quality=opts.texture_quality
        )
        if orientation != 1:
            mesh.uvs = raw_uvs(mesh.uvs, orientation)
    with timer.stage("write"):
        outputs, size = write_mesh(output, fmt, mesh, texture, image, opts)
    return ConvertResult(
        outputs=outputs,
        vertex_count=mesh.vertex_count,
        triangle_count=mesh.triangle_count,
        grid_size=hf.grid_size,
        image_size=(image.height, image.width),
        bytes_written=size,
        timings=timer.timings,
        max_error=(mesh.extras["max_error"] / UNITS_TO_METRES[opts.units]) if "max_error" in mesh.extras else None,
    )


def depth(
    input: str | os.PathLike | Image,
    output: str | os.PathLike,
    options: ConvertOptions | None = None,
    *,
    report: Callable[[str, float], None] | None = None,
    **overrides,
) -> Path:
    """Photo -> depth map file: .png (16-bit grey, larger = nearer) or .npy (float32 in [0, 1]).

    The map has the photo's size unless --max-size is given smaller (then the grid size).
    """
    from PIL import Image as PILImage

    from .writers.atomic import atomic_open

    overrides.setdefault("max_size", None)
    opts = _options(options, overrides)
    output = check_output_path(output)
    suffix = output.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise OptionError(f"{output}: depth maps are written as .png (16-bit) or .npy (float32); change the suffix")
    timer = StageTimer(report)
    with timer.stage("decode"):
        image = input if isinstance(input, Image) else load_image(input, frame=opts.frame, max_pixels=opts.max_pixels)
    image_size = (image.height, image.width)
    grid_size = ops.grid_shape(image_size, opts.max_size)
    with timer.stage("depth"):
        dmap = compute_depth(image, opts, grid_size)
    with timer.stage("condition"):
        hf = condition(
            dmap, image_size=image_size, grid_size=grid_size, clip_pct=clip_percentiles(opts), invert=opts.invert,
            smooth_px=opts.smooth_px, gamma=opts.gamma, contrast=opts.contrast,
        )
    with timer.stage("write"):
        with atomic_open(output) as f:
            if suffix == ".npy":
                np.save(f, hf.heights.astype(np.float32))
            else:
                q = np.round(hf.heights * 65535.0).astype(np.uint16)
                PILImage.fromarray(q).save(f, "PNG")
    return output
