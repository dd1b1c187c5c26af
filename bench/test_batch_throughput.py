"""Batch throughput vs a plain serial loop over convert(), and peak memory vs batch length.

Not part of the default test run. Run (about 10 min for 500 images on a quiet 2-core box):

    python3 -m pytest bench/test_batch_throughput.py --benchmark-only -s

GPURELIEF_BENCH_IMAGES (default 500) photo-like 1152x864 JPEGs (~1 MP); GPURELIEF_BENCH_MAX_SIZE (default 512)
vertices on the longest side, the same for both sides (the default 1024 writes 44 MB per image, 22 GB per run);
outputs go to GPURELIEF_BENCH_DIR (default /dev/shm) so the disk is not what is measured.
Targets (issue 7): batch >= 1.7x the serial images/s on 2 cores; worker peak RSS independent of batch length.
GPURELIEF_BENCH_ROUNDS (default 1) runs of each; GPURELIEF_BENCH_NO_TARGET=1 records without asserting 1.7x.
Results are written to bench/results/batch-<cpu>-<cores>c-<images>-<UTC time>.json beside this file.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gpurelief.bench import machine_info, make_synthetic_images, serial_loop
from gpurelief.pipeline import ConvertOptions

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get("GPURELIEF_BENCH_IMAGES", "500"))
MAX_SIZE = int(os.environ.get("GPURELIEF_BENCH_MAX_SIZE", "512"))
BASE = os.environ.get("GPURELIEF_BENCH_DIR", "/dev/shm" if os.path.isdir("/dev/shm") else None)
ROUNDS = int(os.environ.get("GPURELIEF_BENCH_ROUNDS", "1"))
SIZE = (1152, 864)
RESULTS: dict = {}


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="gpurelief-batch-bench-", dir=BASE))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def photos(workdir):
    return make_synthetic_images(workdir / "in", N, SIZE)


def run_cli_batch(inputs: list[str], out: Path, report: Path) -> dict:
    """The CLI as a user runs it, in its own process tree; -> report summary + CPU seconds of the whole tree."""
    import resource

    cmd = [sys.executable, "-m", "gpurelief", "batch", *inputs, "-o", str(out), "--max-size", str(MAX_SIZE),
           "--progress", "none", "--report", str(report)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, timeout=3600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(report.read_text())["summary"]
    summary["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(out, ignore_errors=True)
    return summary


def test_serial_convert_loop(benchmark, photos, workdir):
    opts = ConvertOptions(max_size=MAX_SIZE)
    cpu = []

    def run():
        c0 = time.process_time()
        dt = serial_loop(photos, workdir / "serial", opts)
        cpu.append(time.process_time() - c0)
        shutil.rmtree(workdir / "serial", ignore_errors=True)
        return dt

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    RESULTS["serial_images_per_s"] = round(N / benchmark.stats.stats.median, 3)
    RESULTS["serial_cpu_ms_per_image"] = round(1000 * min(cpu) / N, 1)
    RESULTS["load_before_batch"] = round(os.getloadavg()[0], 2)


def test_batch_local_engine(benchmark, photos, workdir):
    summaries = []

    def run():
        summaries.append(run_cli_batch([str(workdir / "in")], workdir / "out", workdir / "full.json"))

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    summary = summaries[-1]
    assert summary["ok"] == N
    # wall time of the whole command: interpreter start, listing, worker start-up included
    RESULTS["batch_images_per_s"] = round(N / benchmark.stats.stats.median, 3)
    RESULTS["batch_cpu_ms_per_image"] = round(1000 * min(s["cpu_s"] for s in summaries) / N, 1)
    RESULTS["batch_mb_per_s"] = summary["mb_per_s"]
    RESULTS["stage_mean_s"] = summary["stage_mean_s"]
    RESULTS["peak_rss_mb_full"] = summary["peak_rss_mb"]
    RESULTS["workers"] = summary["workers"]


def test_batch_peak_memory_is_independent_of_batch_length(benchmark, photos, workdir):
    short = max(10, N // 10)
    lst = workdir / "short.txt"
    lst.write_text("\n".join(str(p) for p in photos[:short]) + "\n")
    summary = benchmark.pedantic(
        lambda: run_cli_batch([str(lst)], workdir / "out_short", workdir / "short.json"), rounds=1, iterations=1
    )
    RESULTS["peak_rss_mb_short"] = summary["peak_rss_mb"]
    RESULTS["short_images"] = short
    info = machine_info()
    speedup = RESULTS["batch_images_per_s"] / RESULTS["serial_images_per_s"]
    RESULTS.update(images=N, rounds=ROUNDS, image_size=list(SIZE), max_size=MAX_SIZE, speedup=round(speedup, 3),
                   machine=info, load_after=round(os.getloadavg()[0], 2),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    tag = re.sub(r"[^A-Za-z0-9]+", "-", str(info["cpu"])).strip("-")
    stamp = time.strftime("%Y%m%dT%H%M", time.gmtime())
    out = Path(__file__).parent / "results" / f"batch-{tag}-{info['cores']}c-{N}-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(RESULTS, indent=1) + "\n")
    print("\n" + json.dumps(RESULTS, indent=1))
    full, small = RESULTS["peak_rss_mb_full"], summary["peak_rss_mb"]
    assert full["largest_worker"] <= small["largest_worker"] * 1.15 + 16, (
        f"worker peak RSS grew with batch length: {small} MB ({short} images) -> {full} MB ({N})")
    assert full["driver"] <= small["driver"] * 1.15 + 16
    # Issue 7 target: >= 1.7x on 2 cores. On a box shared with other jobs the ratio drops; say so, don't hide it.
    if not os.environ.get("GPURELIEF_BENCH_NO_TARGET"):
        assert speedup >= 1.7, f"batch {speedup:.2f}x the serial loop (target 1.7x); load {os.getloadavg()}"
