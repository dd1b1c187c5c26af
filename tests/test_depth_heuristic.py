"""Model-free depth: determinism, shapes, edge-aware behaviour, and accuracy against trivial baselines
on synthetic scenes with exact depth (bench/depth_eval's ray caster)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.depth_eval.metrics import score, spearman
from bench.depth_eval.run import evaluate
from bench.depth_eval.scenes import render
from gpurelief.depth.heuristic import (
    AGREEMENT_GATED, WEIGHTS, depth_cues, estimate_depth, ground_contact_ramp, guided_filter, row_agreement,
)
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
    cues = depth_cues(pixels, (40, 60))
    assert set(cues) == set(WEIGHTS)
    for name in WEIGHTS:
        assert cues[name].dtype == np.float32 and cues[name].std() > 0, name
        d = estimate_depth(pixels, weights={name: 1.0}).values  # a gated cue alone may drop out: finite, maybe flat
        assert d.shape == (40, 60) and np.isfinite(d).all(), name


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


# --- each promised cue, alone with the ground prior, must order two objects that stand on the same row ---------
# A 120x160 scene: striped ground (the ground-contact scan stops at every furrow), a near block standing low in the
# frame and two posts standing on the same, higher row. The posts differ only in the cue under test, so the
# position cue cannot tell them apart; the block shows whether, in this photo, the cue agrees with the ground prior.
_SHAPE = (120, 160)
_POST_A = (slice(30, 60), slice(20, 44))     # carries the cue's "near" appearance
_POST_B = (slice(30, 60), slice(116, 140))   # carries the cue's "far" appearance
_BLOCK = (slice(66, 110), slice(58, 102))    # near: stands on row 109


def _stripes(h, w):
    """(h, w) vertical stripes, 2 px wide, 0.3 / 1.0: sharp detail that the row-to-row scan does not stop at."""
    return np.where(np.arange(w) // 2 % 2 == 0, 0.3, 1.0).astype(np.float32)[None, :].repeat(h, 0)


def _blur(rgb, sigma_px):
    from gpurelief.backend import numpy_ops as ops

    return np.stack([ops.gaussian_blur(rgb[..., c], sigma_px) for c in range(3)], -1)


def _cue_scene(cue: str, block_agrees: bool) -> np.ndarray:
    h, w = _SHAPE
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = (0.55, 0.5, 0.45)
    rgb *= np.where(np.arange(h) // 3 % 2 == 0, 0.85, 1.0).astype(np.float32)[:, None, None]
    rgb += np.random.default_rng(0).normal(0, 0.01, (h, w, 1)).astype(np.float32)

    def put(where, colour, texture=None):
        rows, cols = where[0].stop - where[0].start, where[1].stop - where[1].start
        region = np.broadcast_to(np.asarray(colour, np.float32), (rows, cols, 3)).copy()
        rgb[where] = region if texture is None else region * texture[:rows, :cols, None]

    if cue == "brightness":
        bright, dim = (0.9, 0.3, 0.3), (0.35, 0.1, 0.1)
        put(_BLOCK, bright if block_agrees else dim)
        put(_POST_A, bright)
        put(_POST_B, dim)
    elif cue == "contrast":  # same mean colour, detailed vs plain
        colour = (0.3, 0.5, 0.8)
        put(_BLOCK, colour, _stripes(44, 44) if block_agrees else None)
        put(_POST_A, colour, _stripes(30, 24))
        put(_POST_B, tuple(0.65 * c for c in colour))
    elif cue == "focus":  # the same detail, sharp vs defocused (outline included); the ground is out of focus
        rgb[:] = _blur(rgb, 2.5)
        colour = (0.3, 0.6, 0.3)
        put(_BLOCK, colour, _stripes(44, 44))
        if not block_agrees:  # focused far: the near block is blurred
            rgb[56:120, 48:112] = _blur(rgb, 2.5)[56:120, 48:112]
        put(_POST_A, colour, _stripes(30, 24))
        put(_POST_B, colour, _stripes(30, 24))
        rgb[20:70, 106:150] = _blur(rgb, 2.5)[20:70, 106:150]
    elif cue == "dark_channel":  # vivid (dark channel near 0) vs pale, similar brightness
        vivid, pale = (0.2, 0.75, 0.3), (0.62, 0.72, 0.64)
        put(_BLOCK, vivid if block_agrees else pale)
        put(_POST_A, vivid)
        put(_POST_B, pale)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def _post_means(depth):
    inner = lambda s: (slice(s[0].start + 4, s[0].stop - 3), slice(s[1].start + 4, s[1].stop - 4))  # noqa: E731
    return float(depth[inner(_POST_A)].mean()), float(depth[inner(_POST_B)].mean())


def _gate(pixels, cue):
    cues = depth_cues(pixels, pixels.shape[:2], ("position", cue))
    c = cues[cue]
    return row_agreement(c - c.mean(axis=1, keepdims=True), cues["position"])


@pytest.mark.parametrize("cue", AGREEMENT_GATED)
def test_a_promised_cue_alone_orders_objects_the_ground_prior_cannot(cue):
    pixels = _cue_scene(cue, block_agrees=True)
    assert _gate(pixels, cue) > 0.05
    near, far = _post_means(estimate_depth(pixels, weights={"position": WEIGHTS["position"], cue: WEIGHTS[cue]}).values)
    # the fusion is linear in the weights: what the position cue alone gives the posts, the cue did not add
    p_near, p_far = _post_means(estimate_depth(pixels, weights={"position": WEIGHTS["position"]}).values)
    assert (near - far) - (p_near - p_far) > 0.02, (cue, near, far, p_near, p_far)


@pytest.mark.parametrize("cue", ["contrast", "focus", "dark_channel"])
def test_the_default_orders_objects_by_contrast_focus_and_dark_channel(cue):
    near, far = _post_means(estimate_depth(_cue_scene(cue, block_agrees=True)).values)
    assert near - far > 0.05, (cue, near, far)


@pytest.mark.parametrize("cue", AGREEMENT_GATED)
def test_a_cue_that_disagrees_with_the_ground_prior_loses_its_weight(cue):
    agreeing, disagreeing = _gate(_cue_scene(cue, True), cue), _gate(_cue_scene(cue, False), cue)
    assert disagreeing < 0.5 * agreeing, (cue, agreeing, disagreeing)
    if cue != "focus":  # a blurred near block still leaves the sharp near post agreeing a little
        assert disagreeing == 0.0
        pixels = _cue_scene(cue, block_agrees=False)
        near, far = _post_means(estimate_depth(pixels, weights={"position": WEIGHTS["position"], cue: WEIGHTS[cue]}).values)
        assert abs(near - far) < 0.03, (cue, near, far)


def test_focus_cue_scores_sharp_detail_above_the_same_detail_defocused():
    # texture amount is the same on both halves; only the sharpness differs
    rng = np.random.default_rng(2)
    light = rng.random((96, 128)).astype(np.float32)
    sharp = (np.repeat(np.repeat(light[::4, ::4], 4, 0), 4, 1) * 255).astype(np.uint8)  # 4 px blocks: step edges
    blurred = (_blur(np.repeat(sharp[..., None], 3, -1).astype(np.float32), 2.0)[..., 0]).astype(np.uint8)
    pixels = np.repeat(np.concatenate([sharp[:, :64], blurred[:, 64:]], 1)[..., None], 3, -1)
    focus = depth_cues(pixels, pixels.shape[:2], ("focus",))["focus"]
    assert focus[:, 8:48].mean() > focus[:, 80:120].mean() + 0.3


def test_haze_cues_put_hazier_regions_farther():
    h, w = 60, 80
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:, :40] = (0.1, 0.5, 0.2)   # clear: saturated, dark minimum channel
    rgb[:, 40:] = (0.55, 0.65, 0.6)  # the same surface seen through haze: paler, brighter minimum channel
    pixels = (rgb * 255).astype(np.uint8)
    cues = depth_cues(pixels, (h, w), ("haze", "dark_channel"))
    for name in ("haze", "dark_channel"):
        assert cues[name][:, 5:30].mean() > cues[name][:, 50:75].mean() + 0.5, name
