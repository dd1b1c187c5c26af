"""Per-stage GPU times for a 3840x2160 full-grid relief (issue 4, item 5): where the time goes.

Run on a GPU machine (bench/gpu_session.sh does): python3 bench/gpu_stages.py [--json FILE]
Each stage is timed with CUDA events, median of ROUNDS after warm-up; its GB/s counts the bytes it must
move (each input read once, each output written once) against the device-to-device copy rate measured
in the same run. Prints a markdown table; --json writes the numbers with the machine facts.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

import numpy as np

GH, GW = 2160, 3840
DX = DY = 1.0 / (GW - 1)
RELIEF = 0.1
ROUNDS = 30


def _median_ms(cupy, fn, rounds: int = ROUNDS) -> float:
    for _ in range(3):
        fn()
    cupy.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(rounds):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)


def queued_ms(cupy, fn, calls: int = 20) -> float:
    """Device time per call with `calls` calls queued between one pair of events: the host's launch overhead
    hides behind the device work (for stages with no host sync inside), so this is the kernels' own time."""
    fn()
    cupy.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(5):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / calls)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import cupy
    import cupyx

    from gpurelief.backend import cupy_ops as C
    from gpurelief.types import Mesh
    from gpurelief.writers.glb import glb_head, glb_into
    from gpurelief.writers.gltf_doc import build_document

    rt = cupy.cuda.runtime
    props = rt.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    facts = {"gpu": name, "driver": rt.driverGetVersion(), "cuda_runtime": rt.runtimeGetVersion(),
             "cupy": cupy.__version__, "numpy": np.__version__, "shape": [GH, GW]}

    big = cupy.empty(1 << 30, dtype=cupy.uint8)
    big2 = cupy.empty_like(big)
    d2d_ms = _median_ms(cupy, lambda: big2.__setitem__(Ellipsis, big), 10)
    facts["d2d_copy_GBps"] = 2 * big.nbytes / d2d_ms / 1e6
    host = cupyx.empty_pinned((256 << 20,), dtype=np.uint8)
    dev = big[: host.size]
    d2h_ms = _median_ms(cupy, lambda: dev.get(out=host), 10)
    facts["d2h_pinned_GBps"] = host.size / d2h_ms / 1e6
    del big, big2, dev

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:GH, 0:GW].astype(np.float32)
    depth_host = (np.sin(x / 97.0) * np.cos(y / 61.0) + 0.001 * x + 0.01 * rng.random((GH, GW))).astype(np.float32)
    depth = cupy.asarray(depth_host)
    n, cells = GH * GW, (GH - 1) * (GW - 1)
    h = C.condition_heights(depth)

    stages = [
        ("condition (range pass + kernel)", lambda: C.condition_heights(depth), n * 4 * 2 + n * 4),
        ("positions", lambda: C.grid_positions(h, dx=DX, dy=DY, relief=RELIEF), n * (4 + 12)),
        ("normals", lambda: C.grid_normals(h, dx=DX, dy=DY, relief=RELIEF), n * (4 + 12)),
        ("uvs", lambda: C.grid_uvs((GH, GW)), n * 8),
        ("indices u32", lambda: C.grid_indices((GH, GW), np.uint32), cells * 24),
    ]
    rows = []
    for label, fn, nbytes in stages:
        ms = _median_ms(cupy, fn)
        queued = queued_ms(cupy, fn)
        rows.append({"stage": label, "ms": ms, "bytes": nbytes, "GBps": nbytes / ms / 1e6, "queued_ms": queued,
                     "queued_GBps": nbytes / queued / 1e6})

    def mesh():
        hh = C.condition_heights(depth)
        return Mesh(C.grid_positions(hh, dx=DX, dy=DY, relief=RELIEF), C.grid_normals(hh, dx=DX, dy=DY, relief=RELIEF),
                    C.grid_uvs((GH, GW)), C.grid_indices((GH, GW)))

    m = mesh()
    kernels_bytes = sum(r["bytes"] for r in rows)
    ms = _median_ms(cupy, mesh)
    queued = queued_ms(cupy, mesh)
    rows.append({"stage": "all mesh kernels", "ms": ms, "bytes": kernels_bytes, "GBps": kernels_bytes / ms / 1e6,
                 "queued_ms": queued, "queued_GBps": kernels_bytes / queued / 1e6})
    ms = _median_ms(cupy, lambda: C.column_bounds(m.positions))
    rows.append({"stage": "column_bounds of the positions (3 kernels, 1 copy)", "ms": ms, "bytes": n * 12,
                 "GBps": n * 12 / ms / 1e6})
    ms = _median_ms(cupy, lambda: build_document(m, None))
    rows.append({"stage": "build_document, bounds scanned (column_bounds)", "ms": ms, "bytes": 0, "GBps": 0.0})
    from gpurelief.mesh.grid import grid_mesh
    from gpurelief.types import Heightfield

    def product_mesh():
        return grid_mesh(Heightfield(C.condition_heights(depth), image_size=(GH, GW)), relief_frac=RELIEF, array_ops=C)

    pm = product_mesh()
    ms = _median_ms(cupy, product_mesh)
    rows.append({"stage": "condition + grid_mesh (pipeline path, bounds from heights)", "ms": ms, "bytes": kernels_bytes,
                 "GBps": kernels_bytes / ms / 1e6})
    ms = _median_ms(cupy, lambda: build_document(pm, None))
    rows.append({"stage": "build_document, bounds given", "ms": ms, "bytes": 0, "GBps": 0.0})
    _, total = glb_head(build_document(m, None))
    out = cupyx.empty_pinned((total + 4096,), dtype=np.uint8)
    doc = build_document(m, None)
    ms = _median_ms(cupy, lambda: glb_into(doc, out))
    rows.append({"stage": "GLB bytes to pinned host (copy only)", "ms": ms, "bytes": total, "GBps": total / ms / 1e6})
    ms = _median_ms(cupy, lambda: glb_into(build_document(product_mesh(), None), out))
    rows.append({"stage": "depth on device -> GLB in host memory (pipeline path, no texture)", "ms": ms, "bytes": total, "GBps": total / ms / 1e6})

    print(f"# {name}: d2d copy {facts['d2d_copy_GBps']:.0f} GB/s, d2h pinned {facts['d2h_pinned_GBps']:.1f} GB/s "
          f"(driver {facts['driver']}, CUDA runtime {facts['cuda_runtime']}, CuPy {facts['cupy']})")
    print("| stage | median ms | MB moved | GB/s | of d2d copy | queued ms | queued GB/s | of d2d copy |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        r["of_d2d"] = r["GBps"] / facts["d2d_copy_GBps"]
        q = (f"{r['queued_ms']:.3f} | {r['queued_GBps']:.0f} | {r['queued_GBps'] / facts['d2d_copy_GBps']:.2f}"
             if "queued_ms" in r else " | | ")
        print(f"| {r['stage']} | {r['ms']:.3f} | {r['bytes'] / 1e6:.0f} | {r['GBps']:.0f} | {r['of_d2d']:.2f} | {q} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
