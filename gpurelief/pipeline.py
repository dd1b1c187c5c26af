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
from .backend.device import Backend, cpu_backend, parse_device, select_backend
from .condition import condition
from .decode import DEFAULT_MAX_PIXELS, HIGH_PRECISION_GREY, load_image
from .depth import estimate_depth, load_depth_map
from .errors import DeviceError, GpureliefError, OptionError
from .mesh.grid import grid_mesh
from .presets import apply_preset
from .mesh.solid import print_dimensions, solid_mesh, solid_triangle_bound
from .texture import DEFAULT_TEXTURE_MAX, make_texture, raw_uvs
from .types import DepthMap, Heightfield, Image, Mesh, Texture
from .writers import PRINT_FORMATS, format_for
from .writers.atomic import check_output_path
from .writers.glb import write_glb
from .writers.gltf import write_gltf
from .writers.gltf_doc import ALPHA_MODES, MaterialOptions
from .writers.obj import write_obj
from .writers.ply import write_ply
from .writers.stl import GRID_HINT, check_stl_size, write_stl
from .writers.threemf import write_3mf

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
    nodata: float | None = None                   # --depth-map samples equal to this are no data (NaN)
    depth_model: str | os.PathLike | None = None  # registry name or PATH.onnx (ONNX Runtime)
    depth_output: str = "auto"                    # PATH.onnx output meaning: inverse-depth | depth
    depth_tiles: int = 0                          # > 1: also run the model on tiles x tiles crops
    providers: tuple[str, ...] | None = None      # ONNX Runtime providers; None = TensorRT, CUDA, CPU as present
    accept_license: tuple[str, ...] = ()          # non-commercial model names the user accepts
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
    # where the array stages run: auto (GPU when CuPy sees one), cpu, cuda or cuda:N
    device: str = "auto"
    # compact meshes (mesh/adaptive.py, writers/compressed.py, presets.py)
    mesh: str = "grid"                     # grid | adaptive
    max_error: str | float | None = None   # adaptive: model units (--units) or "E%" of the relief height
    max_triangles: int | None = None       # adaptive: upper limit on triangles
    quality_pass: bool | str | None = None  # adaptive: off | fast | full vertex merging within the bound (None: fast)
    compress: str = "none"                 # none | quantize | meshopt | draco
    preset: str | None = None              # web | ar | print | archive (fills options left at defaults)
    # printable solid (print formats .stl .3mf .obj .ply; millimetres; None = default of print_dimensions)
    width_mm: float | None = None
    height_mm: float | None = None
    relief_mm: float | None = None
    base_mm: float | None = None
    border_mm: float = 0.0
    lithophane: bool = False
    allow_large_stl: bool = False
    ply_texture: bool = False

    def validate(self) -> "ConvertOptions":
        parse_device(self.device)
        self.validate_compact()
        if self.units not in UNITS_TO_METRES:
            raise OptionError(f"--units: expected one of {', '.join(UNITS_TO_METRES)}, got {self.units!r}")
        if isinstance(self.max_size, str):  # the CLI's spelling, from the Python API: "full" or a number
            text = self.max_size.strip().lower()
            try:
                self.max_size = None if text in ("full", "none") else int(text)
            except ValueError:
                raise OptionError(f"--max-size: expected a vertex count or 'full', got {self.max_size!r}") from None
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
        if self.nodata is not None and self.depth_map is None:
            raise OptionError("--nodata applies to --depth-map; give the map too, or drop --nodata")
        if self.nodata is not None and np.isnan(self.nodata):
            raise OptionError("--nodata: NaN is always no data; give the value your map uses for it (e.g. -9999)")
        if self.depth_map is not None and self.depth_model is not None:
            raise OptionError("--depth-map and --depth-model both give the depth; use one of them")
        if self.depth_tiles < 0 or self.depth_tiles == 1:
            raise OptionError(f"--depth-tiles: expected 0 (off) or a grid of 2 or more tiles per side, got {self.depth_tiles}")
        if self.depth_tiles and self.depth_model is None:
            raise OptionError("--depth-tiles needs --depth-model (tiling applies to neural models)")
        if not (self.relief >= 0 and np.isfinite(self.relief)):
            raise OptionError(f"--relief: expected >= 0 (fraction of the width), got {self.relief}")
        return self


    def validate_compact(self) -> None:
        from .mesh.adaptive import parse_max_error, quality_effort
        from .writers.compressed import COMPRESS_MODES

        if self.mesh not in ("grid", "adaptive"):
            raise OptionError(f"--mesh: expected grid or adaptive, got {self.mesh!r}")
        if self.compress not in COMPRESS_MODES:
            raise OptionError(f"--compress: expected one of {', '.join(COMPRESS_MODES)}, got {self.compress!r}")
        if self.mesh == "grid" and (self.max_error is not None or self.max_triangles is not None
                                    or self.quality_pass not in (None, False, "off")):
            raise OptionError(
                "--max-error / --max-triangles / --quality-pass need --mesh adaptive (the grid keeps every sample)"
            )
        if self.max_error is not None:
            parse_max_error(self.max_error)
        quality_effort(self.quality_pass)
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
    device: str = "cpu"                                  # backend description, e.g. "cuda:0 (NVIDIA H100 ...)"
    notes: list[str] = field(default_factory=list)       # e.g. why --device auto fell back to the CPU
    max_error: float | None = None  # adaptive mesh: measured max vertical error over every sample, in error_units
    error_units: str = "m"  # --units for glTF; mm for print formats (their solid is in millimetres)
    size_mm: tuple[float, float, float] | None = None  # print formats: (width, height, thickness)


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
    targets = [output, output.with_suffix(".bin"), output.with_suffix(".mtl")] + [
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
    """The depth stage: a given map, a neural model (ONNX Runtime), or the model-free estimate at the grid size."""
    if opts.depth_map is not None:
        return load_depth_map(opts.depth_map, max_pixels=opts.max_pixels, nodata=opts.nodata)
    if opts.depth_model is not None:
        from .depth.onnx import model_depth

        return model_depth(
            image.pixels, opts.depth_model, providers=opts.providers, accept_license=opts.accept_license,
            output=opts.depth_output, tiles=opts.depth_tiles,
        )
    # full-resolution pixels: the estimator reads fine detail, then works and answers at the grid size
    return estimate_depth(image.pixels[..., :3], out_shape=grid_size)


def compute_heightfield(
    image: Image, opts: ConvertOptions, timer: StageTimer, backend: Backend | None = None, *, printing: bool = False
) -> Heightfield:
    """Image -> Heightfield on the mesh grid: the depth and condition stages, shared by every output format.

    printing with --lithophane takes its heights from the photo's darkness instead of depth.
    backend: where conditioning runs (CPU by default); on a GPU backend the heights are a CuPy array.
    """
    array_ops = backend.ops if backend is not None else None
    image_size = (image.height, image.width)
    grid_size = ops.grid_shape(image_size, opts.max_size)
    lithophane = printing and opts.lithophane
    with timer.stage("depth"):
        depth = lithophane_depth(image, grid_size) if lithophane else compute_depth(image, opts, grid_size)
    with timer.stage("condition"):
        clip = clip_percentiles(opts) if not lithophane or opts.clip_pct is not None else (0.0, 100.0)
        hf = condition(
            depth,
            image_size=image_size,
            grid_size=grid_size,
            clip_pct=clip,
            invert=opts.invert,
            smooth_px=opts.smooth_px,
            gamma=opts.gamma,
            contrast=opts.contrast,
            alpha=image.alpha,
            cut_transparent=opts.cut_transparent,
            array_ops=array_ops,
        )
    hf.notes = list(depth.notes)
    if (image.source_mode in HIGH_PRECISION_GREY and opts.depth_map is None and opts.depth_model is None
            and not lithophane):
        name = image.path.name if image.path is not None else "the input"
        kind = "float" if image.source_mode == "F" else "16-bit"
        hf.notes.append(f"{name} is a single-channel {kind} image, like elevation data, but its grey levels went "
                        f"through the photo depth estimator; to use its values as heights, add --depth-map "
                        f"{image.path if image.path is not None else 'FILE'}")
    return hf



def surface_mesh(hf: Heightfield, opts: ConvertOptions, timer: StageTimer, backend: Backend | None = None) -> Mesh:
    """Heightfield -> the open relief surface in metres (glTF formats): grid or adaptive."""
    with timer.stage("mesh"):
        width_m = opts.width * UNITS_TO_METRES[opts.units]
        if opts.mesh == "adaptive":
            return adaptive_from_options(hf, opts, width_m, backend=backend)
        return grid_mesh(hf, width=width_m, relief_frac=opts.relief, array_ops=backend.ops if backend else None)


def build_mesh(
    image: Image, opts: ConvertOptions, timer: StageTimer, backend: Backend | None = None
) -> tuple[Mesh, Heightfield]:
    """Image -> (Mesh in metres with UVs on the displayed photo, Heightfield).

    backend: where conditioning and meshing run (CPU by default); on a GPU backend the Heightfield
    and Mesh arrays are CuPy arrays. Depth estimation and resampling run on the host.
    """
    hf = compute_heightfield(image, opts, timer, backend)
    return surface_mesh(hf, opts, timer, backend), hf


def adaptive_from_options(
    hf: Heightfield, opts: ConvertOptions, width: float, *, relief_frac: float | None = None, units: str = "m",
    error_units: str | None = None, backend: Backend | None = None,
) -> Mesh:
    """--mesh adaptive: --max-error in `error_units` (default --units; or % of the relief height) and/or
    --max-triangles. width is in `units` (metres for glTF, millimetres for print solids); so is the mesh.
    On a GPU backend a --max-error-only mesh is built on the device (mesh/rtin_gpu.py).
    """
    from .mesh.adaptive import DEFAULT_QUALITY_PASS, adaptive_mesh, parse_max_error

    max_error_model = max_error_frac = None
    if opts.max_error is not None:
        value, pct = parse_max_error(opts.max_error)
        if pct:
            max_error_frac = value / 100.0
        else:
            max_error_model = value * UNITS_TO_METRES[error_units or opts.units] / UNITS_TO_METRES[units]
    elif opts.max_triangles is None:
        max_error_frac = 0.001  # the documented default: 0.1% of the relief height
    return adaptive_mesh(
        hf, width=width, relief_frac=opts.relief if relief_frac is None else relief_frac, units=units,
        max_error=max_error_model, max_error_frac=max_error_frac, max_triangles=opts.max_triangles,
        quality_pass=DEFAULT_QUALITY_PASS if opts.quality_pass is None else opts.quality_pass,
        device=device_mesher(backend, opts),
        # the default pass, not one the user chose: a --max-triangles below what it reaches gets the full pass
        full_if_needed=opts.quality_pass is None,
    )


def gpu_adaptive(opts: ConvertOptions) -> bool:
    """Whether --mesh adaptive runs RTIN on the GPU: with --max-error (not --max-triangles). A quality pass
    then runs on the CPU on the device's triangles."""
    return opts.mesh == "adaptive" and opts.max_triangles is None


def device_mesher(backend: Backend | None, opts: ConvertOptions):
    if backend is None or not backend.is_gpu or not gpu_adaptive(opts):
        return None
    from .mesh.rtin_gpu import DeviceMesher

    return DeviceMesher.for_backend(backend)


def write_mesh(
    output: Path, fmt: str, mesh: Mesh, texture: Texture | None, image: Image, opts: ConvertOptions,
    *, colors: np.ndarray | None = None,
) -> tuple[list[Path], int]:
    material = MaterialOptions(
        double_sided=opts.double_sided, unlit=opts.unlit, alpha_mode=opts.alpha_mode, alpha_cutoff=opts.alpha_cutoff
    )
    if fmt in PRINT_FORMATS:
        return write_print(output, fmt, mesh, texture, opts, colors=colors)
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


PRINT_FLAGS = {
    "width_mm": "--width-mm", "height_mm": "--height-mm", "relief_mm": "--relief-mm", "base_mm": "--base-mm",
    "border_mm": "--border-mm", "lithophane": "--lithophane", "allow_large_stl": "--allow-large-stl",
    "ply_texture": "--ply-texture",
}


def check_print_options(opts: ConvertOptions, fmt: str) -> None:
    """Print flags belong to print formats; print formats cannot take a cut-out (holed) top."""
    if fmt not in PRINT_FORMATS:
        given = [flag for name, flag in PRINT_FLAGS.items() if getattr(opts, name) not in (None, False, 0.0)]
        if given:
            raise OptionError(
                f"{given[0]}: applies to the print formats (.stl, .3mf, .obj, .ply), not .{fmt}; "
                "size glTF output with --width and --units"
            )
        return
    if opts.cut_transparent:
        raise OptionError(f"--cut-transparent: a printable solid needs the whole rectangle; drop the flag for .{fmt}")
    # The glTF sizing flags would be silently ignored here; say which flag sizes a print instead.
    defaults = ConvertOptions()
    if opts.width != defaults.width or opts.units != defaults.units:
        flag = "--width" if opts.width != defaults.width else "--units"
        raise OptionError(f"{flag}: .{fmt} is sized in millimetres; use --width-mm or --height-mm instead")
    if opts.relief != defaults.relief:
        raise OptionError(f"--relief: .{fmt} takes the relief height in millimetres; use --relief-mm instead")
    if opts.lithophane and opts.depth_map is not None:
        raise OptionError("--depth-map: a lithophane's thickness comes from the photo's brightness; drop one of the two")


def check_format_options(opts: ConvertOptions, formats: list[str]) -> None:
    """Options against several output formats at once (batch --formats). With glTF and print formats
    mixed, each sizing flag applies to the outputs it sizes (--width to glTF, --width-mm to print);
    only flags that would change the shared heightfield for one kind of output are refused."""
    printing = [f for f in formats if f in PRINT_FORMATS]
    if not printing or len(printing) == len(formats):
        for fmt in formats:
            check_print_options(opts, fmt)
        return
    if opts.lithophane:
        raise OptionError("--lithophane: shapes the print formats only; write the glTF formats in a separate run")
    if opts.cut_transparent:
        raise OptionError("--cut-transparent: a printable solid needs the whole rectangle; drop it or the print formats")


def lithophane_depth(image: Image, grid_size: tuple[int, int]) -> DepthMap:
    """Photo -> 'depth' 1 - luminance at the grid size: dark = thick, so a backlit print shows the photo."""
    pixels = ops.resize_rgb(np.ascontiguousarray(image.pixels[..., :3]), grid_size)
    return DepthMap(values=np.float32(1.0) - ops.luminance(pixels), source="lithophane")


def print_dims(image_size: tuple[int, int], opts: ConvertOptions):
    """-> the print sizes (mm) for this photo and options; refuses an STL over the size limit before any work."""
    grid_size = ops.grid_shape(image_size, opts.max_size)
    return grid_size, print_dimensions(
        grid_size, image_size, width_mm=opts.width_mm, height_mm=opts.height_mm, relief_mm=opts.relief_mm,
        base_mm=opts.base_mm, border_mm=opts.border_mm, lithophane=opts.lithophane,
    )


def check_stl_before_work(image_size: tuple[int, int], opts: ConvertOptions) -> None:
    """Where the STL's size is known from the grid (a grid top, or an adaptive top under --max-triangles), refuse
    an oversized one before depth and meshing run. An adaptive top under --max-error alone is judged by its real
    triangle count when written (its bound is the full grid's, which would refuse any large photo)."""
    if opts.mesh == "adaptive" and opts.max_triangles is None:
        return
    grid_size, dims = print_dims(image_size, opts)
    top = opts.max_triangles if opts.mesh == "adaptive" else None
    check_stl_size(solid_triangle_bound(grid_size, border=dims.border_mm > 0, top=top),
                   allow_large=opts.allow_large_stl, hint=_stl_hint(opts))


def _stl_hint(opts: ConvertOptions) -> str:
    """What to lower when an STL is too large: an adaptive top has a bound and a triangle budget as well."""
    if opts.mesh == "adaptive":
        return "raise --max-error, set --max-triangles (e.g. --max-triangles 2000000), lower --max-size"
    return GRID_HINT


def solid_from_heightfield(
    hf: Heightfield, opts: ConvertOptions, timer: StageTimer
) -> tuple[Mesh, tuple[float, float, float]]:
    """Heightfield -> (closed solid Mesh in millimetres, bottom at z = 0, (width, height, thickness) mm).

    The top is the relief (grid or adaptive) lifted by the base; walls follow its boundary down to a
    flat bottom; --border-mm adds a frame at full thickness.
    """
    _, dims = print_dims(hf.image_size, opts)
    with timer.stage("mesh"):
        relief_frac = dims.relief_mm / dims.relief_width_mm
        if opts.mesh == "adaptive":  # --max-error is in millimetres here (print formats refuse --units)
            top = adaptive_from_options(
                hf, opts, dims.relief_width_mm, relief_frac=relief_frac, units="mm", error_units="mm"
            )
        else:
            top = grid_mesh(hf, width=dims.relief_width_mm, relief_frac=relief_frac, units="mm")
        mesh = solid_mesh(
            top, base=dims.base_mm, border=dims.border_mm, border_z=dims.thickness_mm if dims.border_mm else None
        )
    return mesh, (dims.width_mm, dims.height_mm, dims.thickness_mm)


def build_solid(
    image: Image, opts: ConvertOptions, timer: StageTimer, fmt: str
) -> tuple[Mesh, Heightfield, tuple[float, float, float]]:
    """Image -> (closed solid Mesh in millimetres, Heightfield, (width, height, thickness) mm)."""
    if fmt == "stl":
        check_stl_before_work((image.height, image.width), opts)
    hf = compute_heightfield(image, opts, timer, printing=True)
    mesh, size_mm = solid_from_heightfield(hf, opts, timer)
    return mesh, hf, size_mm


@dataclass
class Product:
    """What one output format needs: its mesh (metres for glTF, millimetres for print), texture, colours."""

    mesh: Mesh
    texture: Texture | None = None
    colors: np.ndarray | None = None
    size_mm: tuple[float, float, float] | None = None


def make_products(
    image: Image, opts: ConvertOptions, formats: list[str], timer: StageTimer, backend: Backend | None = None
) -> tuple[dict[str, Product], Heightfield]:
    """Image -> ({format: Product}, Heightfield): one depth + heightfield, one surface mesh for the glTF
    formats and one solid for the print formats, one texture encode, whatever the number of formats."""
    printing = [f for f in formats if f in PRINT_FORMATS]
    surface = [f for f in formats if f not in PRINT_FORMATS]
    if "stl" in printing:
        check_stl_before_work((image.height, image.width), opts)
    hf = compute_heightfield(image, opts, timer, backend, printing=bool(printing))
    texture_and_orientation: list = []

    def textured(mesh: Mesh) -> tuple[Mesh, Texture]:
        if not texture_and_orientation:
            with timer.stage("texture"):
                texture_and_orientation.extend(make_texture(
                    image, texture_format=opts.texture_format, texture_max=opts.texture_max,
                    quality=opts.texture_quality,
                ))
        texture, orientation = texture_and_orientation
        if orientation != 1:  # UVs onto the stored (un-rotated) pixels; a copy: colours sample the displayed photo
            mesh = replace(mesh, uvs=raw_uvs(mesh.uvs, orientation))
        return mesh, texture

    products: dict[str, Product] = {}
    if surface:
        mesh, texture = textured(surface_mesh(hf, opts, timer, backend))
        products.update({f: Product(mesh, texture) for f in surface})
    if printing:
        solid, size_mm = solid_from_heightfield(hf, opts, timer)
        colors = None
        for f in printing:
            if f == "stl":  # an adaptive top's real count: refused here, before any format is written
                check_stl_size(solid.triangle_count, allow_large=opts.allow_large_stl, hint=_stl_hint(opts))
                products[f] = Product(solid, size_mm=size_mm)
            elif f == "3mf" or (f == "ply" and not opts.ply_texture):
                if colors is None:
                    with timer.stage("colors"):
                        colors = ops.sample_rgb(image.pixels, solid.uvs)
                products[f] = Product(solid, colors=colors, size_mm=size_mm)
            else:
                mesh, texture = textured(solid)
                products[f] = Product(mesh, texture, size_mm=size_mm)
    if hf.notes:  # for the batch report (convert() reads hf.notes)
        for p in products.values():
            p.mesh.extras["notes"] = list(hf.notes)
    return products, hf


def write_print(
    output: Path, fmt: str, mesh: Mesh, texture: Texture | None, opts: ConvertOptions,
    *, colors: np.ndarray | None = None,
) -> tuple[list[Path], int]:
    """Solid (mm) -> .stl | .3mf | .obj (+ .mtl + texture) | .ply (colours, or UVs + texture); -> (paths, bytes)."""
    if fmt == "stl":
        return [output], write_stl(output, mesh, allow_large=opts.allow_large_stl, hint=_stl_hint(opts))
    if fmt == "3mf":
        return [output], write_3mf(output, mesh, colors=colors)
    if fmt == "obj":
        paths = write_obj(output, mesh, texture)
    else:
        paths = write_ply(output, mesh, colors=colors, texture=texture)
    return paths, sum(p.stat().st_size for p in paths)


def convert(
    input: str | os.PathLike | Image,
    output: str | os.PathLike,
    options: ConvertOptions | None = None,
    *,
    report: Callable[[str, float], None] | None = None,
    **overrides,
) -> ConvertResult:
    """Photo file (or Image) -> relief model file(s) at `output` (.glb, or .gltf + .bin + texture; or a
    closed solid in millimetres for the print formats .stl, .3mf, .obj + .mtl + texture, .ply).

    Options come as a ConvertOptions and/or keyword overrides (`convert("a.jpg", "a.glb", relief=0.2)`).
    `report(stage, seconds)` is called as each stage ends (the CLI's -v).
    """
    opts = _options(options, overrides)
    output = Path(output)
    fmt = format_for(output, opts.format)
    printing = fmt in PRINT_FORMATS
    check_print_options(opts, fmt)
    check_output_path(output)
    refuse_overwriting_inputs(output, input, opts)
    timer = StageTimer(report)
    with timer.stage("device"):
        backend = select_backend(opts.device)
    with timer.stage("decode"):
        image = input if isinstance(input, Image) else load_image(input, frame=opts.frame, max_pixels=opts.max_pixels)
    notes: list[str] = []
    if backend.is_gpu and (printing or (opts.mesh == "adaptive" and not gpu_adaptive(opts)) or opts.compress != "none"):
        # the solid builder, the compressed writers and --max-triangles have no device path yet
        backend = cpu_backend("--mesh adaptive with --max-triangles, --compress and print formats run on the CPU")

    def mesh_texture_write(backend: Backend):
        with backend.activate():
            products, hf = make_products(image, opts, [fmt], timer, backend)
            p = products[fmt]
            with timer.stage("write"):
                outputs, size = write_mesh(output, fmt, p.mesh, p.texture, image, opts, colors=p.colors)
        return p.mesh, hf, outputs, size, p.size_mm

    auto_gpu = parse_device(opts.device)[0] == "auto" and backend.name != "cpu"
    try:
        mesh, hf, outputs, size, size_mm = mesh_texture_write(backend)
    except DeviceError as exc:
        if not auto_gpu:
            raise
        # auto promised a result: the output is written atomically, so redoing it on the CPU is safe
        notes.append(f"{exc}; --device auto fell back to the CPU")
        backend = cpu_backend()
        mesh, hf, outputs, size, size_mm = mesh_texture_write(backend)
    except GpureliefError:
        raise  # the user's input or options: the CPU would fail the same way
    except Exception as exc:
        if not auto_gpu:
            raise
        notes.append(
            f"the GPU path failed unexpectedly ({type(exc).__name__}: {exc}); --device auto fell back to the CPU "
            "(please report this; --device cuda shows the traceback with --traceback)"
        )
        backend = cpu_backend()
        mesh, hf, outputs, size, size_mm = mesh_texture_write(backend)
    notes[:0] = hf.notes  # the depth map's (e.g. a likely no-data value), before the mesher's
    if "fast_fewest" in mesh.extras:
        notes.append(f"--max-triangles {opts.max_triangles}: the default --quality-pass fast keeps at least "
                     f"{mesh.extras['fast_fewest']:,} triangles on this grid, so the full pass ran")
    error_units = "mm" if size_mm is not None else opts.units
    return ConvertResult(
        outputs=outputs,
        vertex_count=mesh.vertex_count,
        triangle_count=mesh.triangle_count,
        grid_size=hf.grid_size,
        image_size=(image.height, image.width),
        bytes_written=size,
        timings=timer.timings,
        device=backend.description + (f" [{backend.note}]" if backend.note else ""),
        notes=notes,
        max_error=(mesh.extras["max_error"] * UNITS_TO_METRES[mesh.units] / UNITS_TO_METRES[error_units])
        if mesh.extras.get("max_error") is not None else None,
        error_units=error_units,
        size_mm=size_mm,
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
