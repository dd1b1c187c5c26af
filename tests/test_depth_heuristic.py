"""Model-free depth: determinism, shapes, edge-aware behaviour, and accuracy against trivial baselines
on synthetic scenes with exact depth (bench/depth_eval's ray caster)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.depth_eval.metrics import score, spearman
from bench.depth_eval.run import evaluate
from bench.depth_eval.scenes import render
from gpurelief.depth.heuristic import WEIGHTS, estimate_depth, ground_contact_ramp, guided_filter
from tests.conftest import photo_like


def test_estimate_depth_is_deterministic_float32_at_requested_shape():
    pixels = photo_like(90, 120)
    a = estimate_depth(pixels).values
    b = estimate_depth(pixels.copy()).values
    assert a.dtype == np.float32 and a.shape == (90, 120)
    assert np.array_equal(a, b)
    small = estimate_depth(pixels, out_shape=(30, 40)).values
    assert small.shape == (30, 40) and np.isfinite(small).all()


def test_estimate_depth_does_not_depend_on_resolution():
    scene = render(3, 192, 256)
    from PIL import Image

    half = np.asarray(Image.fromarray(scene.pixels).resize((128, 96), Image.Resampling.BOX))
    full = estimate_depth(scene.pixels, out_shape=(96, 128)).values
    low = estimate_depth(half).values
    assert spearman(full.ravel(), low.ravel()) > 0.95


def test_estimate_depth_rejects_unknown_cue():
    with pytest.raises(ValueError, match="unknown depth cue"):
        estimate_depth(photo_like(8, 8), weights={"parallax": 1.0})


def test_every_cue_runs_alone():
    pixels = photo_like(40, 60)
    for name in WEIGHTS:
        d = estimate_depth(pixels, weights={name: 1.0}).values
        assert d.shape == (40, 60) and np.isfinite(d).all() and d.std() > 0, name


def test_ground_contact_ramp_carries_an_upright_object_at_its_base_depth():
    h, w = 60, 40
    rng = np.random.default_rng(0)
    rgb = (0.4 + 0.2 * rng.random((h, w, 3))).astype(np.float32)  # textured ground everywhere
    rgb[10:50, 15:25] = (0.9, 0.1, 0.1)  # a flat red post standing on the ground at row 49
    d = ground_contact_ramp(rgb)
    ramp = np.linspace(0, 1, h, dtype=np.float32)
    post = d[12:49, 17:23]  # inside the silhouette (the 3x3 pre-smoothing blurs its outline)
    assert post.max() - post.min() < 0.05  # one depth from top to bottom
    assert abs(post.mean() - ramp[49]) < 0.05  # the depth where it stands
    assert np.all(d >= ramp[:, None] - 1e-6)
    ground = d[:, :10]
    assert spearman(ground.ravel(), np.repeat(ramp, 10)) > 0.9  # the textured ground keeps its slope


def test_guided_filter_smooths_noise_but_keeps_the_photo_edge():
    h, w = 40, 40
    guide = np.zeros((h, w), np.float32)
    guide[:, 20:] = 1.0
    rng = np.random.default_rng(1)
    src = guide * 0.5 + rng.normal(0, 0.05, (h, w)).astype(np.float32)
    out = guided_filter(guide, src, radius=4, eps=1e-3)
    assert out[:, 14:18].std() < src[:, 14:18].std() / 2
    assert out[:, 21].mean() - out[:, 18].mean() > 0.4  # the step survives across two pixels


def test_scene_objects_come_out_nearer_than_the_ground_behind_them():
    # per object: the estimate over its silhouette exceeds the estimate on the ground rows just above it
    wins = total = 0
    for seed in range(6):
        s = render(seed, 96, 128)
        d = estimate_depth(s.pixels).values
        for label in np.unique(s.labels[s.labels >= 2]):
            m = s.labels == label
            rows, cols = np.nonzero(m)
            top = rows.min()
            if m.sum() < 30 or top < 4:
                continue
            above = np.zeros_like(m)
            above[max(0, top - 4):top, cols.min():cols.max() + 1] = True
            above &= s.labels == 0
            if above.sum() < 5 or s.depth_m[above].mean() < s.depth_m[m].mean():
                continue
            total += 1
            wins += d[m].mean() > d[above].mean()
    assert total >= 5 and wins / total >= 0.8, (wins, total)


def test_default_beats_both_trivial_baselines_on_synthetic_scenes():
    r = evaluate(range(0, 10), (96, 128))
    ours, ramp, lum = r["gpurelief default"], r["lower-is-nearer"], r["luminance"]
    assert ours["spearman"] > ramp["spearman"] + 0.05
    assert ours["absrel"] < ramp["absrel"] and ours["delta1"] > ramp["delta1"]
    assert ours["absrel"] < lum["absrel"] - 0.1 and ours["spearman"] > lum["spearman"] + 0.5


def test_metrics_are_perfect_for_exact_inverse_depth_and_invariant_to_affine_maps():
    s = render(5, 48, 64)
    exact = np.where(s.valid, 1.0 / np.where(s.valid, s.depth_m, 1.0), 0.0)
    for pred in (exact, 3.0 * exact + 0.2):
        m = score(pred, s.depth_m, s.valid)
        assert m["absrel"] < 1e-6 and m["delta1"] == 1.0 and m["spearman"] > 0.999
    flipped = score(-exact, s.depth_m, s.valid)
    assert flipped["spearman"] < -0.999 and flipped["delta1"] < 0.9


@pytest.mark.parametrize("shape", [(2, 2), (2, 300), (300, 2), (3, 3)])
def test_degenerate_shapes_give_finite_maps(shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    d = estimate_depth(pixels).values
    assert d.shape == shape and np.isfinite(d).all()


def test_a_blank_photo_gives_a_flat_map():
    d = estimate_depth(np.full((40, 60, 3), 128, np.uint8)).values
    assert float(d.max() - d.min()) < 1e-4
