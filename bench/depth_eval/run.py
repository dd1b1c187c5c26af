"""python3 -m bench.depth_eval.run [--scenes N] [--seed0 S] [--size HxW]: the depth table of README.

Scores the model-free default against two trivial baselines (plain luminance; 'lower in the frame is
nearer') on N synthetic scenes with exact depth. Test seeds start at 0; the default's weights were chosen
on seeds from 1000 up, so pass --seed0 1000 to see the training split.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from gpurelief.backend import numpy_ops as ops
from gpurelief.depth.heuristic import estimate_depth

from .metrics import score
from .scenes import render


def luminance_baseline(pixels: np.ndarray) -> np.ndarray:
    return ops.luminance(pixels)


def ramp_baseline(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    return np.broadcast_to(np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None], (h, w))


def heuristic_default(pixels: np.ndarray) -> np.ndarray:
    return estimate_depth(pixels).values


# scene tags of scenes.render, in table order
TAGS = ("sky", "wall", "busywall", "flash", "shade", "haze", "fog-dense", "defocus", "focus-near", "focus-far")

METHODS = {"luminance": luminance_baseline, "lower-is-nearer": ramp_baseline, "gpurelief default": heuristic_default}


def methods_with_models(models) -> dict:
    """METHODS plus one entry per --model (neural depth through ONNX Runtime, CPU unless a GPU provider exists)."""
    methods = dict(METHODS)
    for model in models:
        from gpurelief.depth.onnx import model_depth

        methods[str(model)] = lambda pixels, model=model: model_depth(pixels, model).values
    return methods


def evaluate(seeds, shape=(192, 256), methods=METHODS, kind: str | None = None) -> dict[str, dict[str, float]]:
    """-> {method: {'absrel', 'delta1', 'spearman'} averaged per image over the scenes of `seeds`}
    (only scenes whose kind contains `kind`, e.g. 'haze', when given)."""
    return evaluate_by_kind(seeds, shape, methods)[0][kind or "all"]


def evaluate_by_kind(seeds, shape=(192, 256), methods=METHODS):
    """-> ({'all' | scene tag: {method: mean metrics}}, {tag: scene count}); tags are TAGS (scenes.py)."""
    sums: dict[str, dict[str, dict[str, float]]] = {}
    counts: dict[str, int] = {}
    for seed in seeds:
        scene = render(seed, *shape)
        tags = ["all"] + scene.kind.split("+")
        scores = {name: score(fn(scene.pixels), scene.depth_m, scene.valid) for name, fn in methods.items()}
        for tag in tags:
            counts[tag] = counts.get(tag, 0) + 1
            group = sums.setdefault(tag, {m: {"absrel": 0.0, "delta1": 0.0, "spearman": 0.0} for m in methods})
            for name, sc in scores.items():
                for k, v in sc.items():
                    group[name][k] += v
    means = {tag: {m: {k: v / counts[tag] for k, v in t.items()} for m, t in g.items()} for tag, g in sums.items()}
    return means, counts


def table(results: dict[str, dict[str, float]]) -> str:
    lines = ["| method | AbsRel (lower is better) | delta1 < 1.25 | Spearman |", "|---|---|---|---|"]
    for m, r in results.items():
        lines.append(f"| {m} | {r['absrel']:.3f} | {r['delta1']:.3f} | {r['spearman']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=96)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--size", default="192x256", help="HxW of the renders")
    ap.add_argument("--model", action="append", default=[], metavar="NAME|PATH.onnx",
                    help="also score a neural model (registry name or ONNX file; repeatable)")
    a = ap.parse_args()
    h, w = (int(v) for v in a.size.lower().split("x"))
    t0 = time.perf_counter()
    by_kind, counts = evaluate_by_kind(range(a.seed0, a.seed0 + a.scenes), (h, w), methods_with_models(a.model))
    print(table(by_kind["all"]))
    print("\nAbsRel / delta1 / Spearman by scene tag (a scene can carry several):\n")
    names = list(by_kind["all"])
    print("| tag | scenes | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for tag in TAGS:
        if tag in by_kind:
            n = counts[tag]
            cells = [f"{r['absrel']:.3f} / {r['delta1']:.3f} / {r['spearman']:.3f}" for r in by_kind[tag].values()]
            print(f"| {tag} | {n} | " + " | ".join(cells) + " |")
    print(f"\n{a.scenes} scenes ({a.size}), seeds {a.seed0}..{a.seed0 + a.scenes - 1}, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
