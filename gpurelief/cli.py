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
from .mesh import QUALITY_PASSES
from .mesh.solid import (
    DEFAULT_BASE_MM, DEFAULT_RELIEF_MM, DEFAULT_WIDTH_MM, LITHOPHANE_BASE_MM, LITHOPHANE_RELIEF_MM, MIN_BASE_MM,
)
from .writers import FORMATS
from .writers.stl import STL_MAX_BYTES


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


def _device(text: str) -> str:
    from .backend.device import DEVICE_CHOICES, parse_device
    from .errors import OptionError

    try:
        parse_device(text)
    except OptionError:
        raise argparse.ArgumentTypeError(f"expected {DEVICE_CHOICES}, got {text!r}") from None
    return text.strip().lower()


def add_device_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("device")
    g.add_argument(
        "--device", type=_device, default="auto", metavar="auto|cpu|cuda[:N]",
        help="where conditioning and meshing run: auto = the GPU when CuPy sees one, else the CPU (-v says "
        "which); cuda[:N] = that GPU or an error; cpu = numpy (default auto)",
    )


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
    g.add_argument(
        "--nodata", type=float, metavar="VALUE",
        help="with --depth-map: samples equal to VALUE are no data, like NaN (e.g. -9999 or -32768); a GeoTIFF's "
             "GDAL_NODATA tag is read without it",
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


def _providers(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list such as tensorrt,cuda,cpu")
    return names


def add_depth_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("neural depth (ONNX Runtime; pip install 'gpurelief[onnx]')")
    g.add_argument(
        "--depth-model", metavar="NAME|PATH.onnx",
        help="estimate depth with a neural model: a registry name (`gpurelief models list`) or any ONNX file "
        "[N,3,H,W] -> [N,H,W] or [N,1,H,W]; default: the built-in model-free estimator",
    )
    g.add_argument("--depth-output", choices=["auto", "inverse-depth", "depth"], default="auto",
                   help="what a PATH.onnx model outputs: inverse-depth (larger = nearer, default) or depth")
    g.add_argument("--depth-tiles", type=int, default=0, metavar="N",
                   help="also run the model on N x N overlapping tiles and blend them into the global pass, "
                   "for detail beyond the model's ~518 px input (default 0 = off)")
    g.add_argument("--providers", type=_providers, default=None, metavar="LIST",
                   help="ONNX Runtime providers in order, e.g. tensorrt,cuda,cpu (default: those present, in that order)")
    g.add_argument("--accept-license", action="append", default=[], metavar="NAME",
                   help="allow a model whose weights are not for commercial use (e.g. depth-anything-v2-large)")


def _models_list(args: argparse.Namespace) -> int:
    from .depth import cache
    from .depth.registry import DEFAULT_MODEL, MODELS

    for name, spec in MODELS.items():
        path = cache.model_path(spec)
        state = "downloaded" if path.exists() else "-"
        size = f"{spec.size_mb:g} MB" if spec.size_mb else "size ?"
        tag = " (default)" if name == DEFAULT_MODEL else ""
        use = "" if spec.commercial else ", non-commercial: --accept-license"
        sha = "sha256 pinned" if spec.sha256 else "sha256 not pinned"
        print(f"{name + tag:<40} {spec.licence}{use}; {spec.precision}; {size}; {spec.output}; {sha}; {state}")
        if args.verbose:
            print(f"    url: {spec.url} (revision {spec.revision}{'' if spec.pinned else ', not pinned'})")
            if spec.sha256:
                size = f", {spec.size_bytes:,} bytes" if spec.size_bytes else ""
                print(f"    sha256: {spec.sha256}{size}")
            print(f"    input: {spec.resize} {spec.input_size}, multiple of {spec.multiple_of}, mean {spec.mean} std {spec.std}")
            for note in spec.notes:
                print(f"    note: {note}")
    return ExitStatus.OK


def _models_pull(args: argparse.Namespace) -> int:
    from .depth import cache
    from .depth.registry import check_licence, get_model

    spec = get_model(args.name)
    check_licence(spec, tuple(args.accept_license))
    last = [-1]

    def progress(got: int, total: int | None) -> None:
        if args.quiet:
            return
        mb = got // (1 << 20)
        if mb != last[0]:
            last[0] = mb
            of = f" / {total / 1e6:.1f}" if total else ""
            print(f"\r{spec.name}: {got / 1e6:.1f}{of} MB", end="", file=sys.stderr, flush=True)

    path = cache.download(spec, allow_unverified=args.allow_unverified, progress=progress)
    if last[0] >= 0:
        print(file=sys.stderr)
    status = cache.verify(spec, path)
    if status == "recorded":
        print(f"{spec.name}: sha256 {cache.recorded_sha256(path)} recorded (not pinned in the registry)", file=sys.stderr)
    print(path)
    return ExitStatus.OK


def _models_path(args: argparse.Namespace) -> int:
    from .depth import cache
    from .depth.registry import get_model

    path = cache.model_path(get_model(args.name))
    if not path.exists():
        print(f"(not downloaded yet: `gpurelief models pull {args.name}`, or put the file there)", file=sys.stderr)
    print(path)
    return ExitStatus.OK


def add_models_parser(sub, common: argparse.ArgumentParser) -> None:
    m = sub.add_parser("models", parents=[common], help="list, download and locate neural depth models",
                       description="Neural depth models for --depth-model, kept under $GPURELIEF_HOME/models "
                       "(default: the user cache dir).")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", parents=[common], help="known models, licences, sizes, download state")
    ls.set_defaults(handler=_models_list)
    pull = msub.add_parser("pull", parents=[common], help="download a model (resumable, checksum-verified)")
    pull.add_argument("name")
    pull.add_argument("--accept-license", action="append", default=[], metavar="NAME",
                      help="needed for weights that are not for commercial use")
    pull.add_argument("--allow-unverified", action="store_true",
                      help="download even though the registry pins no sha256 (the hash seen is recorded)")
    pull.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    pull.set_defaults(handler=_models_pull)
    path = msub.add_parser("path", parents=[common], help="where a model's file is (or must be put)")
    path.add_argument("name")
    path.set_defaults(handler=_models_path)


def _engines_build(args: argparse.Namespace) -> int:
    from .depth.engines import build_engine, parse_shape

    folder = build_engine(args.model, parse_shape(args.shape), accept_license=tuple(args.accept_license))
    print(folder)
    return ExitStatus.OK


def add_engines_parser(sub, common: argparse.ArgumentParser) -> None:
    e = sub.add_parser("engines", parents=[common], help="build TensorRT engines ahead of time (NVIDIA GPU)")
    esub = e.add_subparsers(dest="engines_command", metavar="ACTION", required=True)
    b = esub.add_parser("build", parents=[common], help="compile MODEL for one input shape into the engine cache",
                        epilog="Example: gpurelief engines build depth-anything-v2-small-fp16 --shape 518x518")
    b.add_argument("model", help="registry name or PATH.onnx")
    b.add_argument("--shape", default="518x518", help="model input HxW (default 518x518)")
    b.add_argument("--accept-license", action="append", default=[], metavar="NAME")
    b.set_defaults(handler=_engines_build)


def _doctor(args: argparse.Namespace) -> int:
    import json

    from .doctor import format_report, report

    r = report()
    print(json.dumps(r, indent=2) if args.json else format_report(r))
    return ExitStatus.OK


def add_doctor_parser(sub, common: argparse.ArgumentParser) -> None:
    d = sub.add_parser("doctor", parents=[common], help="report providers, GPU, TensorRT, CuPy and cache paths")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(handler=_doctor)


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
    g.add_argument("--quality-pass", nargs="?", const="full", default=None, choices=list(QUALITY_PASSES),
                   help="adaptive: then merge vertices while the bound still holds. fast: one sweep (default for "
                   "--mesh adaptive; about 0.8-1.1x pydelatin's triangles); quick: each vertex once with its ring "
                   "read from the grid (1-14%% more triangles than fast, faster on dense meshes; the grid border "
                   "stays as RTIN made it); full (the bare flag): until no vertex can go (about 0.6-0.75x, a few "
                   "times slower); off: the RTIN mesh as it is")
    g.add_argument("--compress", choices=list(COMPRESS_MODES), default="none",
                   help="geometry encoding: none (float), quantize (KHR_mesh_quantization), meshopt "
                   "(EXT_meshopt_compression, pip extra [compress]), draco (KHR_draco_mesh_compression, extra [draco], slow)")

def add_print_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "printing (.stl .3mf .obj .ply: a closed solid in millimetres, bottom at z = 0)"
    )
    g.add_argument("--width-mm", type=float, metavar="MM",
                   help=f"outer width incl. any border (default {DEFAULT_WIDTH_MM:g}); the height follows the photo's aspect")
    g.add_argument("--height-mm", type=float, metavar="MM", help="outer height instead of --width-mm; the width follows")
    g.add_argument("--relief-mm", type=float, metavar="MM",
                   help=f"relief height above the base (default {DEFAULT_RELIEF_MM:g}; lithophane {LITHOPHANE_RELIEF_MM:g})")
    g.add_argument("--base-mm", type=float, metavar="MM",
                   help=f"solid base under the relief (default {DEFAULT_BASE_MM:g}; lithophane: minimum thickness "
                   f"{LITHOPHANE_BASE_MM:g}; at least {MIN_BASE_MM:g})")
    g.add_argument("--border-mm", type=float, default=0.0, metavar="MM",
                   help="flat frame this wide around the relief, at full thickness (default 0 = none)")
    g.add_argument("--lithophane", action="store_true",
                   help="backlit print: thickness from the photo's darkness (dark = thick), base = minimum thickness")
    g.add_argument("--allow-large-stl", action="store_true",
                   help=f"write an STL over {STL_MAX_BYTES / 1e6:g} MB (refused by default; slicers struggle)")
    g.add_argument("--ply-texture", action="store_true",
                   help=".ply: UVs + a texture file beside it instead of per-vertex colours")


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
        "convert", parents=[common], help="photo -> relief model (.glb, .gltf) or printable solid (.stl, .3mf, .obj, .ply)",
        description="Photo -> textured relief mesh. The height at each point follows the depth estimated from the "
        "photo (or --depth-map); the photo is the texture.",
        epilog="Example: gpurelief convert photo.jpg -o photo.glb --relief 0.15 --width 30 --units cm",
    )
    c.add_argument("input", help="image file: JPEG, PNG, BMP, GIF, TIFF, WebP")
    c.add_argument("-o", "--output", required=True,
                   help="output file; the suffix picks the format (.glb, .gltf; print: .stl, .3mf, .obj, .ply)")
    c.add_argument("--format", choices=sorted(set(FORMATS.values())), help="output format when the suffix does not say it")
    add_input_options(c)
    add_depth_options(c)
    add_depth_model_options(c)
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
    add_device_options(c)
    add_compact_options(c)
    add_print_options(c)

    d = sub.add_parser(
        "depth", parents=[common], help="photo -> depth map (.png 16-bit or .npy float32)",
        description="Estimate the depth map gpurelief would use: larger = nearer. Written at the photo's size "
        "unless --max-size is given.",
    )
    d.add_argument("input", help="image file")
    d.add_argument("-o", "--output", required=True, help="depth.png (16-bit grey) or depth.npy (float32 in [0, 1])")
    add_input_options(d)
    add_depth_options(d)
    add_depth_model_options(d)
    d.set_defaults(max_size=None)
    add_models_parser(sub, common)
    add_engines_parser(sub, common)
    add_doctor_parser(sub, common)
    add_batch_parsers(sub, common, c)
    return parser


def copy_options(src: argparse.ArgumentParser, dst: argparse.ArgumentParser, *, skip: set[str]) -> None:
    """Give `dst` every option of `src` (same groups, same flags, same defaults) except the dests in `skip`."""
    have = {a.dest for a in dst._actions}
    groups = {g.title: g for g in dst._action_groups}
    for group in src._action_groups:
        actions = [a for a in group._group_actions if a.dest not in skip and a.dest not in have and a.option_strings]
        if not actions:
            continue
        target = groups.get(group.title) or dst.add_argument_group(group.title, group.description)
        groups[group.title] = target
        for action in actions:
            target._add_action(action)


def add_batch_parsers(sub, common: argparse.ArgumentParser, convert_parser: argparse.ArgumentParser) -> None:
    """`batch` and `bench`: every option of `convert` (copied from its parser, so new ones come along)."""
    from .writers import FORMATS

    fmts = ", ".join(sorted(set(FORMATS.values())))
    skip = {"input", "output", "format", "help", "verbose", "traceback"}
    b = sub.add_parser(
        "batch", parents=[common], help="many photos -> relief models, mirrored into OUT_DIR",
        description="Convert folders (recursive), globs, list files or URLs of photos. The output folder mirrors "
        "the input tree; each image is decoded, meshed and written once per --formats entry on a pool of workers. "
        "A file that fails is reported and skipped; --resume continues an interrupted batch.",
        epilog="Example: gpurelief batch photos/ 'more/**/*.png' @list.txt -o models/ --formats glb,gltf "
        "--report report.json --resume",
    )
    b.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image file, folder (recursive), quoted glob ('a/**/*.jpg'), list file (*.txt or @FILE: one "
                   "path per line, relative to the list's folder) or fsspec URL (s3://..., needs gpurelief[remote])")
    b.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR",
                   help="output folder or URL; created if missing; input folders are mirrored inside it")
    b.add_argument("--formats", default="glb", metavar="LIST",
                   help=f"comma-separated output formats, all from one depth + mesh (default glb; available: {fmts})")
    copy_options(convert_parser, b, skip=skip)
    add_batch_run_options(b)

    bench = sub.add_parser(
        "bench", parents=[common], help="measure throughput: per-stage times, images/s, MB/s (JSON)",
        description="Run the batch pipeline on synthetic photo-like images (or the given ones) into a temporary "
        "folder and report per-stage times, images/s and MB/s written, with the machine and library versions.",
        epilog="Example: gpurelief bench --count 50 --size 1152x864 --json bench.json --compare-serial",
    )
    bench.add_argument("inputs", nargs="*", metavar="INPUT", help="images to use instead of synthetic ones")
    bench.add_argument("--count", type=int, default=20, help="synthetic images to make (default 20)")
    bench.add_argument("--size", default="1152x864", metavar="WxH", help="synthetic image size (default 1152x864, ~1 MP)")
    bench.add_argument("--formats", default="glb", metavar="LIST", help="output formats (default glb)")
    bench.add_argument("--workers", type=int, default=0, metavar="N", help="worker processes (default: one per core)")
    bench.add_argument("--compare-serial", action="store_true",
                       help="also time a plain serial loop over convert() on the same images and report the ratio")
    bench.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE ('-' = stdout)")
    copy_options(convert_parser, bench, skip=skip)


def add_batch_run_options(b: argparse.ArgumentParser) -> None:
    g = b.add_argument_group("batch")
    g.add_argument("--workers", type=int, default=0, metavar="N",
                   help="worker processes (default: one per CPU core; 1 = pipelined threads in this process)")
    g.add_argument("--io-threads", type=int, default=0, metavar="N",
                   help="decode and write threads per worker (default 1; 2 with --workers 1)")
    g.add_argument("--resume", action="store_true",
                   help="skip inputs the manifest (OUT_DIR/_gpurelief) records as done with the same size, mtime "
                   "and options, and whose outputs are still there")
    g.add_argument("--fingerprint", choices=["stat", "sha256"], default="stat",
                   help="how --resume recognises an unchanged input: size + mtime (default) or a content hash")
    g.add_argument("--report", metavar="FILE", help="write a JSON report: one row per file and a summary")
    g.add_argument("--max-failures", type=int, default=None, metavar="N", help="abort after N failed files (default: never)")
    g.add_argument("--progress", choices=["auto", "bar", "log", "none"], default="auto",
                   help="auto: a bar on a terminal, log lines otherwise (default auto)")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local process pool (default) or a Ray cluster (needs gpurelief[ray])")
    g.add_argument("--address", metavar="ADDR",
                   help="--engine ray: cluster address (auto, ray://head:10001); default: start a local Ray")


def run_batch_command(args: argparse.Namespace, opts: ConvertOptions) -> int:
    import shlex

    from .batch import run_batch

    result = run_batch(
        args.inputs, args.output_dir, opts, formats=args.formats, workers=args.workers, io_threads=args.io_threads,
        engine=args.engine,
        address=args.address, resume=args.resume, fingerprint_mode=args.fingerprint, report=args.report,
        max_failures=args.max_failures, progress=args.progress, verbose=args.verbose,
    )
    s = result.summary
    print(
        f"gpurelief: {s['ok']} converted, {s['skipped']} skipped, {s['failed']} failed of {s['total']} files "
        f"in {s['wall_s']:.1f}s ({s['images_per_s']:.2f} img/s, {s['mb_per_s']:.1f} MB/s) -> {s['out_dir']}",
        file=sys.stderr,
    )
    if result.interrupted:
        argv = list(getattr(args, "argv", None) or sys.argv[1:])
        if "--resume" not in argv:
            argv.append("--resume")
        print(
            f"gpurelief: interrupted; {s['not_run']} files not done. Finish the batch with:\n"
            f"  gpurelief {shlex.join(argv)}",
            file=sys.stderr,
        )
    elif result.aborted:
        print(f"gpurelief: aborted after {s['failed']} failures (--max-failures); see the messages above", file=sys.stderr)
    return result.exit_status


OPTION_NAMES = {
    "frame", "max_pixels", "depth_map", "nodata", "invert", "gamma", "contrast", "smooth_px", "clip_pct", "max_size",
    "relief", "width", "units", "cut_transparent", "texture_format", "texture_max", "texture_quality",
    "double_sided", "unlit", "alpha_mode", "alpha_cutoff", "format",
    "depth_model", "depth_output", "depth_tiles", "providers", "accept_license",
    "mesh", "max_error", "max_triangles", "quality_pass", "compress", "preset",
}
OPTION_NAMES |= {"device"}
OPTION_NAMES |= {
    "width_mm", "height_mm", "relief_mm", "base_mm", "border_mm", "lithophane", "allow_large_stl", "ply_texture",
}


def options_from_args(args: argparse.Namespace) -> ConvertOptions:
    values = {k: v for k, v in vars(args).items() if k in OPTION_NAMES}
    if values.get("clip_pct") is not None:
        values["clip_pct"] = tuple(values["clip_pct"])
    if "accept_license" in values:
        values["accept_license"] = tuple(values["accept_license"])
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


def refuse_ignored_compression(args: argparse.Namespace, opts: ConvertOptions) -> None:
    """--compress given on the command line for print formats only: they have no compressed form, so say so
    rather than write them as they are. (A preset's compression is for the glTF formats and is not refused;
    with glTF and print formats mixed, --compress applies to the glTF ones.)"""
    if opts.compress == "none" or "compress" not in (getattr(args, "explicit_options", None) or ()):
        return
    from .errors import OptionError
    from .writers import PRINT_FORMATS, format_for

    if args.command == "convert":
        formats = [format_for(args.output, opts.format)]
    elif args.command == "batch":
        from .batch import parse_formats

        formats = parse_formats(args.formats)
    else:
        return
    if all(f in PRINT_FORMATS for f in formats):
        raise OptionError(
            f"--compress {opts.compress}: compresses .glb and .gltf output; .{formats[0]} has no compressed form. "
            "Drop --compress, or write .glb"
        )


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
    handler = getattr(args, "handler", None)
    if handler is not None:  # models / engines / doctor
        return handler(args)
    t0 = time.perf_counter()
    opts = options_from_args(args)
    refuse_ignored_compression(args, opts)
    report = _stage_printer(args.verbose)
    if opts.mesh == "adaptive" and args.command in ("convert", "batch"):
        from .mesh.adaptive import DEFAULT_QUALITY_PASS, kernels_cached

        if kernels_cached(DEFAULT_QUALITY_PASS if opts.quality_pass is None else opts.quality_pass) is False:
            print("gpurelief: first adaptive mesh on this install: compiling the mesher for this machine "
                  "(about a minute on 2 cores, once; later runs load it from numba's cache)", file=sys.stderr)
    if args.command == "batch":
        return run_batch_command(args, opts)
    if args.command == "bench":
        from .bench import run_bench_command

        return run_bench_command(args, opts)
    if args.command == "convert":
        result = convert(args.input, args.output, opts, report=report)
        for note in result.notes:
            print(f"gpurelief: note: {note}", file=sys.stderr)
        if args.verbose:
            print(f"{'device':<12}{result.device}", file=sys.stderr)
            gh, gw = result.grid_size
            print(
                f"{'total':<12}{time.perf_counter() - t0:8.3f}s  {gw}x{gh} grid, {result.vertex_count:,} vertices, "
                f"{result.triangle_count:,} triangles, {result.bytes_written / 1e6:.1f} MB",
                file=sys.stderr,
            )
            if result.max_error is not None:
                print(f"{'max error':<12}{result.max_error:.6g} {result.error_units} (measured over every sample)", file=sys.stderr)
            if result.size_mm:
                print("{:<12}{:.1f} x {:.1f} x {:.1f} mm".format("size", *result.size_mm), file=sys.stderr)
        print(", ".join(str(p) for p in result.outputs))
    elif args.command == "depth":
        out = depth(args.input, args.output, opts, report=report)
        print(out)
    return ExitStatus.OK


def _bare_quality_pass(argv: list[str]) -> list[str]:
    """`--quality-pass` takes an optional level; written bare just before the input path, argparse would read
    the path as the level. There the bare flag means its default, `full`."""
    out = []
    for i, token in enumerate(argv):
        out.append(token)
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if token == "--quality-pass" and nxt is not None and nxt not in QUALITY_PASSES and not nxt.startswith("-"):
            out.append("full")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = _bare_quality_pass(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    args.argv = argv  # batch: repeated in the resume hint
    args.explicit_options = explicit_options(parser, argv)
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
