"""Adaptive meshing vs the peers in one run: gpurelief's exact-error RTIN, pydelatin (greedy Delaunay, the
quality reference) and pymartini (the speed reference), on fractal terrain and a photo-like step-edge map.

    python3 -m pytest bench/test_meshing_peers.py --benchmark-only            # 1025^2 and 2049^2
    GPURELIEF_BENCH_SIZES=1025,2049,4097 python3 -m pytest bench/test_meshing_peers.py --benchmark-only

Heights are normalised to [0, 1], so a bound of 0.1% is 0.001. For every mesh the TRUE max error over every
pixel is measured (untimed) by gpurelief.mesh.metrics.vertical_error, a generic barycentric rasteriser that
shares no code with the RTIN mesher. Times: triangulation only (vertices + triangles), median of the rounds;
pymartini's Martini(n) is built once per size outside the timed call (its best case; init reported apart).
gpurelief is timed four ways: RTIN alone (--quality-pass off), RTIN + the fast pass (the --mesh adaptive
default), RTIN + the full pass (--quality-pass full) and RTIN + the quick pass (--quality-pass quick, rings
read from the grid); each time includes RTIN.
A table is written to bench/results/meshing-peers.md at the end of the session.
"""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from heightmaps import fractal, step_edges

numba = pytest.importorskip("numba")
pydelatin = pytest.importorskip("pydelatin")
pymartini = pytest.importorskip("pymartini")

from gpurelief.mesh.adaptive import adaptive_triangles  # noqa: E402
from gpurelief.mesh.metrics import vertical_error  # noqa: E402

SIZES = [int(s) for s in os.environ.get("GPURELIEF_BENCH_SIZES", "1025,2049").split(",")]
ERRORS_PCT = [0.5, 0.1, 0.01]
MAPS = {"fractal": fractal, "photo": step_edges}
RESULTS: list[dict] = []
_HEIGHTS: dict = {}
_MARTINI: dict = {}


def heights_for(kind: str, n: int) -> np.ndarray:
    if (kind, n) not in _HEIGHTS:
        _HEIGHTS[(kind, n)] = MAPS[kind](n, n, seed=1)
    return _HEIGHTS[(kind, n)]


def run_gpurelief(h, e):
    """-> triangles as vertex ids row * W + col (the vertices are the grid samples; ids -> coordinates untimed)."""
    return adaptive_triangles(h, max_error=e, quality_pass="off")[0]


def run_gpurelief_fast(h, e):
    """RTIN + the fast quality pass (--quality-pass fast: one sweep, best candidate per vertex)."""
    return adaptive_triangles(h, max_error=e, quality_pass="fast")[0]


def run_gpurelief_quick(h, e):
    """RTIN + the quick quality pass (--quality-pass quick: each vertex once, ring read from the grid)."""
    return adaptive_triangles(h, max_error=e, quality_pass="quick")[0]


def run_gpurelief_quality(h, e):
    """RTIN + the full quality pass (--quality-pass full: sweeps until no vertex can go)."""
    return adaptive_triangles(h, max_error=e, quality_pass="full")[0]


def grid_vertices(h):
    rows, cols = np.divmod(np.arange(h.size), h.shape[1])
    return cols, rows, h.reshape(-1)


def run_pydelatin(h, e):
    d = pydelatin.Delatin(h, width=h.shape[1], height=h.shape[0], max_error=e)
    v = d.vertices
    return v[:, 0], (h.shape[0] - 1) - v[:, 1], v[:, 2], d.triangles  # pydelatin's y points up


def martini_for(n):
    if n not in _MARTINI:
        t0 = time.perf_counter()
        _MARTINI[n] = (pymartini.Martini(n), time.perf_counter() - t0)
    return _MARTINI[n]


def run_pymartini(h, e):
    martini, _ = martini_for(h.shape[0])
    v, t = martini.create_tile(h).get_mesh(e)
    v = v.reshape(-1, 2).astype(np.int64)
    return v[:, 0], v[:, 1], h[v[:, 1], v[:, 0]], t.reshape(-1, 3)


def kept_label(measured: float, bound: float) -> str:
    """yes: measured <= bound (double rounding); f32: over by less than one float32 ulp of the height range
    (pydelatin works in float32); NO: over by more."""
    if measured <= bound * (1 + 1e-12):
        return "yes"
    return "f32" if measured - bound <= float(np.spacing(np.float32(1.0))) else "NO"


MESHERS = {"gpurelief": run_gpurelief, "pydelatin": run_pydelatin, "pymartini": run_pymartini,
           "gpurelief-fast": run_gpurelief_fast, "gpurelief-quality": run_gpurelief_quality,
           "gpurelief-quick": run_gpurelief_quick}
PASSES = {"fast": run_gpurelief_fast, "quick": run_gpurelief_quick}  # timed in pairs against the peers


@pytest.fixture(scope="session", autouse=True)
def write_table():
    warm = fractal(300, 300)  # compile / load the numba caches outside the timings
    run_gpurelief_fast(warm, 0.001), run_gpurelief_quality(warm, 0.001), run_gpurelief_quick(warm, 0.001)
    yield
    # only a complete run replaces the table (a -k selection must not overwrite it with a few rows)
    if len(RESULTS) == len(MESHERS) * len(MAPS) * len(SIZES) * len(ERRORS_PCT):
        suffix = "" if SIZES == [1025, 2049] else "-" + "-".join(map(str, SIZES))
        write_markdown(RESULTS, Path(__file__).parent / "results" / f"meshing-peers{suffix}.md")
    if len(PAIRED) == len(paired_cells()) * len(PASSES):
        suffix = "" if SIZES == [1025, 2049] else "-" + "-".join(map(str, SIZES))
        write_paired_markdown(PAIRED, Path(__file__).parent / "results" / f"meshing-peers-paired{suffix}.md")


# the mesher varies fastest: all meshers of one cell run back to back, so a slow spell on the shared machine
# hits them alike and the ratios (what the targets are about) stay comparable
@pytest.mark.parametrize("mesher", list(MESHERS))
@pytest.mark.parametrize("pct", ERRORS_PCT)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", list(MAPS))
def test_mesher(benchmark, mesher, kind, n, pct):
    h = heights_for(kind, n)
    e = pct / 100
    if mesher == "pymartini":
        martini_for(n)
    slow = mesher in ("pydelatin", "gpurelief-quality") and n >= 2049 and pct <= 0.01
    out = benchmark.pedantic(MESHERS[mesher], args=(h, e), rounds=1 if slow else 5, iterations=1)
    cols, rows, z, tris = (*grid_vertices(h), out) if mesher.startswith("gpurelief") else out
    m = vertical_error(h, cols, rows, z, tris)
    row = {
        "mesher": mesher, "map": kind, "n": n, "pct": pct, "triangles": int(len(tris)),
        "max_pct": m["max"] * 100, "rms_pct": m["rms"] * 100, "uncovered": m["uncovered"],
        "median_s": benchmark.stats.stats.median, "rounds": benchmark.stats.stats.rounds,
        "kept": kept_label(m["max"], e),
    }
    if mesher == "pymartini":
        row["init_s"] = martini_for(n)[1]
    benchmark.extra_info.update(row)
    RESULTS.append(row)
    assert m["uncovered"] == 0
    if mesher.startswith("gpurelief"):
        assert row["kept"] == "yes", f"{mesher} exceeded the bound: {m['max']} > {e}"


PAIRED_ROUNDS = {"pymartini": 9, "pydelatin": 5}
PAIRED: list[dict] = []


def paired_cells():
    """(peer, map, n, pct) timed in pairs: pymartini everywhere; pydelatin where its target is (2049^2) except
    0.01%, where one call takes 15-20 s."""
    return [(peer, kind, n, pct) for peer in PAIRED_ROUNDS for kind in MAPS for n in SIZES for pct in ERRORS_PCT
            if peer == "pymartini" or (n == 2049 and pct > 0.01)]


@pytest.mark.parametrize("peer,kind,n,pct", paired_cells())
@pytest.mark.parametrize("mode", list(PASSES))
def test_default_against_peer_in_pairs(benchmark, mode, peer, kind, n, pct):
    """RTIN + a pass (the default fast, or quick) and one peer timed in alternation, the order swapped every pair: a slow spell
    of the shared machine hits both halves of a pair, so the median of the per-pair ratios is steadier than the
    ratio of two medians taken seconds apart (pymartini's own median moved 2x between runs)."""
    h = heights_for(kind, n)
    e = pct / 100
    if peer == "pymartini":
        martini_for(n)
    ratios = []

    def pair():
        order = ((PASSES[mode], 0), (MESHERS[peer], 1))
        times = [0.0, 0.0]
        for fn, slot in order if len(ratios) % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fn(h, e)
            times[slot] = time.perf_counter() - t0
        ratios.append(times[0] / times[1])

    benchmark.pedantic(pair, rounds=PAIRED_ROUNDS[peer], iterations=1)
    row = {"mode": mode, "peer": peer, "map": kind, "n": n, "pct": pct, "pairs": len(ratios),
           "median_ratio": float(np.median(ratios)),
           "min_ratio": float(min(ratios)), "max_ratio": float(max(ratios))}
    benchmark.extra_info.update(row)
    PAIRED.append(row)


def write_paired_markdown(rows: list[dict], path: Path) -> None:
    lines = [
        "# RTIN + the fast pass (the default) and + the quick pass against each peer, timed in pairs (one run)", "",
        f"Machine: {_machine()}.", "",
        "Each pair runs both meshers back to back (order swapped every pair); ratio = gpurelief time / peer time.",
        "Targets: <= 1 against pymartini (Martini(n) cached), <= 0.2 against pydelatin at 2049^2.", "",
        "| pass | peer | map | n | err | pairs | median ratio | min-max |", "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["mode"], list(PAIRED_ROUNDS).index(r["peer"]))):
        lines.append(f"| {r['mode']} | {r['peer']} | {r['map']} | {r['n']} | {r['pct']}% | {r['pairs']} "
                     f"| {r['median_ratio']:.2f} | {r['min_ratio']:.2f}-{r['max_ratio']:.2f} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines + [""]))


if __name__ == "__main__":  # re-render the table from a --benchmark-json file: python3 bench/test_meshing_peers.py X.json
    import json
    import sys

    rows = [b["extra_info"] for b in json.load(open(sys.argv[1]))["benchmarks"]]
    for r in rows:
        r["kept"] = kept_label(r["max_pct"] / 100, r["pct"] / 100)
    write_markdown(rows, Path(__file__).parent / "results" / "meshing-peers.md")


def _machine() -> str:
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    return (f"{cpu or platform.processor()}, {os.cpu_count()} cores, no GPU; Python {platform.python_version()}, "
            f"numpy {np.__version__}, numba {numba.__version__}, pydelatin {getattr(pydelatin, '__version__', '0.4.x')}, "
            f"pymartini {getattr(pymartini, '__version__', '0.6.x')}; load average at the end "
            f"{os.getloadavg()[0]:.1f}")


def write_markdown(results: list[dict], path: Path) -> None:
    by = {(r["mesher"], r["map"], r["n"], r["pct"]): r for r in results}
    lines = [
        "# Adaptive meshing vs peers (one run)", "", f"Machine: {_machine()}.", "",
        "time = median triangulation wall time (rounds); tris = triangles; true max = measured max error over every",
        "pixel in % of the height range (bound = the err column). gpurelief runs numba on all cores (2 here); peers are",
        "single-threaded. Ratios: gpurelief / pydelatin. Bound kept: yes = max <= bound (double rounding);",
        "f32 = over by less than one float32 ulp of the height range (1.2e-7); NO = over by more.", "",
        "| map | n | err | gpurelief time / tris / true max | pydelatin | pymartini (Martini(n) cached) "
        "| tris ratio | time ratio | bound kept | gpurelief --quality-pass fast | its tris / time ratio "
        "| gpurelief --quality-pass full | its tris / time ratio "
        "| gpurelief --quality-pass quick | its tris / time ratio (vs martini) |",
        "|---|---:|---:|---|---|---|---:|---:|---|---|---:|---|---:|---|---:|",
    ]
    for kind in MAPS:
        for n in sorted({r["n"] for r in results}):
            for pct in ERRORS_PCT:
                cells = [by.get((m, kind, n, pct)) for m in MESHERS]
                if not all(cells):
                    continue
                g, d, m, f, q, k = cells

                def fmt(r):
                    reps = "" if r["rounds"] > 1 else " [1 rep]"
                    return f"{r['median_s'] * 1000:.0f} ms{reps} / {r['triangles'] / 1000:.1f}k / {r['max_pct']:.3g}%"

                lines.append(
                    f"| {kind} | {n} | {pct}% | {fmt(g)} | {fmt(d)} | {fmt(m)} | {g['triangles'] / d['triangles']:.2f} "
                    f"| {g['median_s'] / d['median_s']:.2f} (vs martini {g['median_s'] / m['median_s']:.2f}) "
                    f"| {g['kept']} / {d['kept']} / {m['kept']} | {fmt(f)} ({f['kept']}) "
                    f"| {f['triangles'] / d['triangles']:.2f} / {f['median_s'] / d['median_s']:.2f} "
                    f"| {fmt(q)} ({q['kept']}) | {q['triangles'] / d['triangles']:.2f} / {q['median_s'] / d['median_s']:.2f} "
                    f"| {fmt(k)} ({k['kept']}) | {k['triangles'] / d['triangles']:.2f} / {k['median_s'] / d['median_s']:.2f} "
                    f"({k['median_s'] / m['median_s']:.2f}) |"
                )
    inits = sorted({(r["n"], r["init_s"]) for r in results if "init_s" in r})
    lines += ["", "Martini(n) init (not in the times above): " + ", ".join(f"{n}: {s * 1000:.0f} ms" for n, s in inits), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
