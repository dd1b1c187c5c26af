"""Command line: argument parsing and exit codes only. `main(argv) -> int`."""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from typing import Sequence

from . import __version__
from .errors import ExitStatus, GpureliefError
from .pipeline import DEFAULT_MAX_SIZE, UNITS_TO_METRES, ConvertOptions, convert, depth
from .texture import DEFAULT_TEXTURE_MAX, TEXTURE_FORMATS


def _max_size(text: str) -> int | None:
    if text.lower() in ("full", "0", "none"):
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a vertex count or 'full', got {text!r}") from None
    if n < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 vertices (or 'full'), got {n}")
    return n


def _positive_int_or_none(text: str) -> int | None:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected >= 0, got {n}")
    return n or None


def add_input_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--frame", type=int, default=0, metavar="N", help="frame of an animated GIF / multi-page TIFF (default 0)")
    g.add_argument(
        "--max-pixels", type=_positive_int_or_none, default=ConvertOptions.max_pixels, metavar="N",
        help="refuse images with more pixels than this (decompression-bomb guard, default %(default)s; 0 = no limit)",
    )


def add_depth_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("depth and height")
    g.add_argument(
        "--depth-map", metavar="FILE",
        help="use this depth/height map instead of estimating one: 8/16-bit PNG, float TIFF or .npy; larger = nearer/higher",
    )
    g.add_argument("--invert", action="store_true", help="swap near and far (e.g. for a map where larger = farther)")
    g.add_argument("--gamma", type=float, default=1.0, help="height curve: >1 flattens low areas, <1 lifts them (default 1)")
    g.add_argument("--contrast", type=float, default=1.0, help="scale heights about mid-height, then clamp (default 1)")
    g.add_argument("--smooth", type=float, default=0.0, dest="smooth_px", metavar="SIGMA",
                   help="Gaussian smoothing of the heights, sigma in grid samples (default 0 = off)")
    g.add_argument("--clip", type=float, nargs=2, dest="clip_pct", metavar=("LOW", "HIGH"), default=None,
                   help="clamp depth to these percentiles before scaling (default 1 99 when estimated, 0 100 for --depth-map)")
    g.add_argument(
        "--max-size", type=_max_size, default=DEFAULT_MAX_SIZE, metavar="N|full",
        help="vertices on the longest side (default %(default)s); 'full' keeps one vertex per pixel",
    )


def _max_triangles(text: str) -> int:
    try:
        n = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of triangles, got {text!r}") from None
    if n < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 triangles, got {n}")
    return n


def add_compact_options(p: argparse.ArgumentParser) -> None:
    """Adaptive meshing, compression, presets (mesh/adaptive.py, writers/compressed.py, presets.py)."""
    from .presets import PRESETS
    from .writers.compressed import COMPRESS_MODES

    g = p.add_argument_group("compact meshes and compression")
    g.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="web: adaptive 0.1%%, meshopt, texture <= 4096; ar: <= 100k triangles, texture <= 2048 JPEG; "
                   "print: every pixel, adaptive 0.02%%; archive: full grid, float, original texture. "
                   "Options given explicitly override the preset")
    g.add_argument("--mesh", choices=["grid", "adaptive"], default="grid",
                   help="grid: two triangles per sample cell; adaptive: fewest triangles within --max-error (default grid)")
    g.add_argument("--max-error", default=None, metavar="E|E%",
                   help="adaptive: largest vertical error at any pixel, in --units, or E%% of the relief height "
                   "(default 0.1%% when --max-triangles is not given either)")
    g.add_argument("--max-triangles", type=_max_triangles, default=None, metavar="N",
                   help="adaptive: at most N triangles (the error bound is raised only as far as needed)")
    g.add_argument("--quality-pass", action="store_true",
                   help="adaptive: then merge vertices while the bound still holds (about 0.6-0.8x the triangles, "
                   "several times slower)")
    g.add_argument("--compress", choices=list(COMPRESS_MODES), default="none",
                   help="geometry encoding: none (float), quantize (KHR_mesh_quantization), meshopt "
                   "(EXT_meshopt_compression, pip extra [compress]), draco (KHR_draco_mesh_compression, extra [draco], slow)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpurelief",
        description="Turn a photograph into a textured 3D relief model.",
        epilog="Example: gpurelief convert photo.jpg -o photo.glb",
    )
    parser.add_argument("--version", action="version", version=f"gpurelief {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="print per-stage timings")
    common.add_argument("--traceback", action="store_true", help="show the Python traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser(
        "convert", parents=[common], help="photo -> relief model (.glb, .gltf)",
        description="Photo -> textured relief mesh. The height at each point follows the depth estimated from the "
        "photo (or --depth-map); the photo is the texture.",
        epilog="Example: gpurelief convert photo.jpg -o photo.glb --relief 0.15 --width 30 --units cm",
    )
    c.add_argument("input", help="image file: JPEG, PNG, BMP, GIF, TIFF, WebP")
    c.add_argument("-o", "--output", required=True, help="output file; the suffix picks the format (.glb, .gltf)")
    c.add_argument("--format", choices=["glb", "gltf"], help="output format when the suffix does not say it")
    add_input_options(c)
    add_depth_options(c)
    g = c.add_argument_group("geometry")
    g.add_argument("--relief", type=float, default=0.1, metavar="FRAC",
                   help="relief height as a fraction of the width (default 0.1)")
    g.add_argument("--width", type=float, default=1.0, help="width of the model in --units (default 1)")
    g.add_argument("--units", choices=list(UNITS_TO_METRES), default="m",
                   help="units of --width (default m); glTF files are always stored in metres")
    g.add_argument("--cut-transparent", action="store_true", help="drop mesh cells that are fully transparent in the photo")
    g = c.add_argument_group("texture and material")
    g.add_argument("--texture-format", choices=TEXTURE_FORMATS, default="auto",
                   help="auto keeps a JPEG/PNG photo's own bytes; otherwise JPEG, or PNG with alpha (default auto)")
    g.add_argument("--texture-max", type=_positive_int_or_none, default=DEFAULT_TEXTURE_MAX, metavar="PX",
                   help="downscale textures larger than this on the longest side (default %(default)s; 0 = never)")
    g.add_argument("--texture-quality", type=int, default=90, metavar="Q", help="JPEG/WebP quality when encoding (default 90)")
    g.add_argument("--double-sided", action="store_true", help="render both faces of the relief")
    g.add_argument("--unlit", action="store_true", help="KHR_materials_unlit: show the photo's colours exactly, unshaded")
    g.add_argument("--alpha-mode", choices=["mask", "blend", "opaque"], default="mask",
                   help="how photo transparency renders (default mask)")
    g.add_argument("--alpha-cutoff", type=float, default=0.5, help="alpha threshold for --alpha-mode mask (default 0.5)")
    add_compact_options(c)

    d = sub.add_parser(
        "depth", parents=[common], help="photo -> depth map (.png 16-bit or .npy float32)",
        description="Estimate the depth map gpurelief would use: larger = nearer. Written at the photo's size "
        "unless --max-size is given.",
    )
    d.add_argument("input", help="image file")
    d.add_argument("-o", "--output", required=True, help="depth.png (16-bit grey) or depth.npy (float32 in [0, 1])")
    add_input_options(d)
    add_depth_options(d)
    d.set_defaults(max_size=None)
    return parser


OPTION_NAMES = {
    "frame", "max_pixels", "depth_map", "invert", "gamma", "contrast", "smooth_px", "clip_pct", "max_size",
    "relief", "width", "units", "cut_transparent", "texture_format", "texture_max", "texture_quality",
    "double_sided", "unlit", "alpha_mode", "alpha_cutoff", "format",
    "mesh", "max_error", "max_triangles", "quality_pass", "compress", "preset",
}


def options_from_args(args: argparse.Namespace) -> ConvertOptions:
    values = {k: v for k, v in vars(args).items() if k in OPTION_NAMES}
    if values.get("clip_pct") is not None:
        values["clip_pct"] = tuple(values["clip_pct"])
    apply_cli_preset(values, getattr(args, "explicit_options", None))
    return ConvertOptions(**values)


def apply_cli_preset(values: dict, explicit: set | None) -> None:
    """--preset fills every option not given on the command line (even one given with its default value)."""
    from .presets import PRESETS

    preset = values.get("preset")
    if not preset or explicit is None:
        return  # no preset, or not from main(): ConvertOptions applies it to options left at their defaults
    for key, value in PRESETS[preset].items():
        if key not in explicit and not (key in ("max_error", "max_triangles") and values.get("mesh") == "grid"):
            values[key] = value  # (a --mesh grid given over an adaptive preset takes no error bound)
    values["preset"] = None


def explicit_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set:
    """Destinations of the options spelled out in argv (`--opt v` or `--opt=v`), for --preset."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    found = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif given.intersection(action.option_strings):
                found.add(action.dest)
    return found


def _stage_printer(enabled: bool):
    if not enabled:
        return None

    def report(stage: str, seconds: float) -> None:
        print(f"{stage + '...':<12}{seconds:8.3f}s", file=sys.stderr)

    return report


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    opts = options_from_args(args)
    report = _stage_printer(args.verbose)
    if args.command == "convert":
        result = convert(args.input, args.output, opts, report=report)
        if args.verbose:
            gh, gw = result.grid_size
            print(
                f"{'total':<12}{time.perf_counter() - t0:8.3f}s  {gw}x{gh} grid, {result.vertex_count:,} vertices, "
                f"{result.triangle_count:,} triangles, {result.bytes_written / 1e6:.1f} MB",
                file=sys.stderr,
            )
            if result.max_error is not None:
                print(f"{'max error':<12}{result.max_error:.6g} {opts.units} (measured over every sample)", file=sys.stderr)
        print(", ".join(str(p) for p in result.outputs))
    elif args.command == "depth":
        out = depth(args.input, args.output, opts, report=report)
        print(out)
    return ExitStatus.OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.explicit_options = explicit_options(parser, list(sys.argv[1:] if argv is None else argv))
    if not args.command:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE
    try:
        return int(run(args))
    except GpureliefError as exc:
        if getattr(args, "traceback", False):
            traceback.print_exc()
        print(f"gpurelief: error: {exc}", file=sys.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        print("gpurelief: interrupted", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except MemoryError:
        if getattr(args, "traceback", False):
            traceback.print_exc()
        print("gpurelief: error: out of memory; lower --max-size or --max-pixels", file=sys.stderr)
        return int(ExitStatus.INPUT_TOO_LARGE)
    except Exception as exc:  # a bug: one line, the traceback only on request
        if getattr(args, "traceback", False):
            traceback.print_exc()
        print(
            f"gpurelief: internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)",
            file=sys.stderr,
        )
        return int(ExitStatus.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
