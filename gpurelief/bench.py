"""`gpurelief bench`: throughput of the batch pipeline, comparable across machines and versions.

Runs the local batch engine on synthetic photo-like images (or given ones) into a temporary folder;
-> per-stage median times, images/s, MB/s written, peak memory, machine and library versions.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import __version__
from .batch import STAGES, parse_formats, run_batch, suffix_for
from .errors import ExitStatus, OptionError
from .pipeline import ConvertOptions, convert


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """-> (height, width, 3) uint8, photo-like: graded sky, a wavy horizon, a few lit objects, sensor noise.

    The smooth structure is drawn at 1/4 size and upsampled (fast at 1 MP); the noise is per pixel.
    """
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    sh, sw = max(2, height // 4), max(2, width // 4)
    y, x = np.mgrid[0:sh, 0:sw].astype(np.float32)
    yn, xn = y / (sh - 1), x / (sw - 1)
    horizon = 0.45 + 0.08 * np.sin(xn * (2 + 3 * rng.random()) * np.pi + rng.random() * 6)
    sky = yn < horizon
    img = np.empty((sh, sw, 3), np.float32)
    img[..., 0] = np.where(sky, 110 + 70 * yn, 70 + 60 * (1 - yn))
    img[..., 1] = np.where(sky, 150 + 50 * yn, 110 + 50 * (1 - yn))
    img[..., 2] = np.where(sky, 230 - 60 * yn, 60 + 30 * yn)
    for _ in range(4):
        cx, cy, r = rng.random(), 0.5 + 0.4 * rng.random(), 0.05 + 0.12 * rng.random()
        d = ((xn - cx) ** 2 + ((yn - cy) * sh / sw) ** 2) / r**2
        inside = d < 1
        shade = np.clip(1.2 - d, 0, 1)[..., None] * (rng.random(3) * 140 + 60).astype(np.float32)
        img[inside] = 0.4 * img[inside] + shade[inside]
    small = PILImage.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    full = np.asarray(small.resize((width, height), PILImage.Resampling.BILINEAR), dtype=np.int16)
    noise = rng.integers(-6, 7, size=full.shape, dtype=np.int16)
    return np.clip(full + noise, 0, 255).astype(np.uint8)


def make_synthetic_images(folder: Path, count: int, size: tuple[int, int], *, quality: int = 90) -> list[Path]:
    """Write `count` JPEGs of size (W, H) into folder; -> their paths (deterministic content)."""
    from PIL import Image as PILImage

    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    paths = []
    for i in range(count):
        p = folder / f"img_{i:05d}.jpg"
        PILImage.fromarray(synthetic_photo(h, w, seed=i)).save(p, quality=quality)
        paths.append(p)
    return paths


def machine_info() -> dict:
    """CPU model, cores, memory, GPU (when CuPy sees one), Python and library versions."""
    import PIL

    info = {
        "gpurelief": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import cupy

        if cupy.cuda.is_available():
            props = cupy.cuda.runtime.getDeviceProperties(0)
            info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
            info["cupy"] = cupy.__version__
    except Exception:  # noqa: BLE001 - no CuPy or no driver: a CPU machine
        info["gpu"] = None
    return info


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--size: expected WIDTHxHEIGHT such as 1152x864, got {text!r}") from None
    if w < 2 or h < 2:
        raise OptionError(f"--size: expected at least 2x2, got {text!r}")
    return w, h


def serial_loop(paths: list[Path], out_dir: Path, options: ConvertOptions, fmt: str = "glb") -> float:
    """The baseline: a plain loop over convert(), one file after another; -> seconds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for p in paths:
        convert(p, out_dir / (p.stem + suffix_for(fmt)), options)
    return time.perf_counter() - t0


def run_bench(
    inputs: list[str] | None = None,
    *,
    count: int = 20,
    size: tuple[int, int] = (1152, 864),
    options: ConvertOptions | None = None,
    formats: str = "glb",
    workers: int = 0,
    compare_serial: bool = False,
    work_dir: str | None = None,
) -> dict:
    """-> results dict (see module docstring)."""
    opts = options or ConvertOptions()
    fmts = parse_formats(formats)
    with tempfile.TemporaryDirectory(prefix="gpurelief-bench-", dir=work_dir) as tmp:
        tmp = Path(tmp)
        if inputs:
            src = list(inputs)
            paths = None
        else:
            if count < 1:
                raise OptionError(f"--count: expected at least 1 image, got {count}")
            paths = make_synthetic_images(tmp / "in", count, size)
            src = [str(tmp / "in")]
        report = tmp / "report.json"
        result = run_batch(src, tmp / "out", opts, formats=fmts, workers=workers, report=report, progress="none")
        rows = json.loads(report.read_text())["files"]
        ok = [r for r in rows if r["status"] == "ok"]
        s = result.summary
        input_mb = sum(r["size"] for r in ok) / 1e6
        out = {
            "machine": machine_info(),
            "images": len(rows),
            "failed": s["failed"],
            "image_size": size if paths else None,
            "formats": fmts,
            "workers": s["workers"],
            "options_hash": s["options_hash"],
            "wall_s": s["wall_s"],
            "images_per_s": s["images_per_s"],
            "input_mb_per_s": round(input_mb / s["wall_s"], 3) if s["wall_s"] else 0.0,
            "mb_written": round(s["bytes_written"] / 1e6, 3),
            "mb_per_s": s["mb_per_s"],
            "stage_median_s": {
                k: round(statistics.median(r["timings"].get(k, 0.0) for r in ok), 6) for k in STAGES if ok
            },
            "vertices_median": int(statistics.median(r["vertex_count"] for r in ok)) if ok else 0,
            "peak_rss_mb": s["peak_rss_mb"],
        }
        if compare_serial:
            serial_paths = paths or [Path(r["input"]) for r in ok]
            dt = serial_loop(serial_paths, tmp / "serial", replace(opts, format=None), fmts[0])
            out["serial_wall_s"] = round(dt, 3)
            out["serial_images_per_s"] = round(len(serial_paths) / dt, 3)
            out["speedup_vs_serial"] = round(out["images_per_s"] / out["serial_images_per_s"], 3)
        return out


def format_table(res: dict) -> str:
    m = res["machine"]
    lines = [
        f"gpurelief {m['gpurelief']} on {m['cpu']} ({m['cores']} cores, GPU: {m.get('gpu') or 'none'}), "
        f"numpy {m['numpy']}, Pillow {m['pillow']}, load {m['load_avg_1m']}",
        f"{res['images']} images, {res['workers']} workers, formats {','.join(res['formats'])}",
    ]
    for k, v in res["stage_median_s"].items():
        lines.append(f"  {k + '...':<12}{v * 1000:9.1f} ms (median per image)")
    lines.append(f"  throughput  {res['images_per_s']:9.2f} images/s, {res['mb_per_s']:.1f} MB/s written")
    if "speedup_vs_serial" in res:
        lines.append(f"  serial loop {res['serial_images_per_s']:9.2f} images/s -> speed-up {res['speedup_vs_serial']:.2f}x")
    return "\n".join(lines)


def run_bench_command(args, opts: ConvertOptions) -> int:
    res = run_bench(
        args.inputs or None, count=args.count, size=_parse_size(args.size), options=opts, formats=args.formats,
        workers=args.workers, compare_serial=args.compare_serial,
    )
    print(format_table(res), file=sys.stderr)
    if args.json:
        text = json.dumps(res, indent=1)
        if args.json == "-":
            print(text)
        else:
            from .writers.atomic import atomic_open

            with atomic_open(args.json) as f:
                f.write(text.encode("utf-8") + b"\n")
    return int(ExitStatus.OK if not res["failed"] else ExitStatus.PARTIAL)
