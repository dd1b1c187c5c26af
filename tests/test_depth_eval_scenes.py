"""bench/depth_eval's renderer: its variants really work against the cues they are meant to test."""
from __future__ import annotations

import numpy as np

from bench.depth_eval.metrics import spearman
from bench.depth_eval.scenes import render
from gpurelief.backend import numpy_ops as ops


def _luminance_rank(scene) -> float:
    v = scene.valid
    return spearman(ops.luminance(scene.pixels)[v].astype(np.float64), 1.0 / scene.depth_m[v].astype(np.float64))


def test_lighting_variants_make_brightness_point_both_ways():
    flash, shade = [], []
    for seed in range(24):
        s = render(seed, 48, 64)
        tags = s.kind.split("+")
        if "haze" in tags:  # haze brightens the far side whatever the lighting
            continue
        if "flash" in tags:
            flash.append(_luminance_rank(s))
        elif "shade" in tags:
            shade.append(_luminance_rank(s))
    assert len(flash) >= 2 and len(shade) >= 2
    assert np.mean(flash) > 0.3 and np.mean(shade) < -0.3, (flash, shade)


def test_every_variant_occurs_and_seeds_are_reproducible():
    tags = set()
    for seed in range(40):
        tags |= set(render(seed, 24, 32).kind.split("+"))
    assert {"flash", "shade", "busywall", "haze", "fog-dense", "defocus", "focus-near", "focus-far", "wall", "sky"} <= tags
    a, b = render(7, 24, 32), render(7, 24, 32)
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.depth_m, b.depth_m)

