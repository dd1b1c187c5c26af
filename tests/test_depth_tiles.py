"""--depth-tiles: tiles aligned to the global pass meet without seams and add detail (tiny ONNX models)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from gpurelief.backend.numpy_ops import box_blur  # noqa: E402
from gpurelief.depth.onnx import DepthModel, Preprocess, model_depth  # noqa: E402
from gpurelief.depth.tiles import align_affine, tile_spans, tiled_depth  # noqa: E402
from tests import onnx_tiny as tiny  # noqa: E402

SMALL = Preprocess(input_size=56, multiple_of=14)


def _scene(h: int, w: int) -> np.ndarray:
    """Smooth 2-D brightness field: (h, w, 3) uint8 (a seam would stand out against it)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 60 + 120 * (0.5 + 0.5 * np.sin(x / w * 3.0 + 0.5) * np.cos(y / h * 2.0))
    return np.repeat(np.clip(base, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_tile_spans_cover_the_image_with_overlap():
    for size, n in [(100, 2), (1000, 4), (37, 3)]:
        spans = tile_spans(size, n)
        assert spans[0][0] == 0 and spans[-1][1] == size and len(spans) == n
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert b0 < a1  # overlap
            assert a1 - a0 == b1 - b0


def test_align_affine_recovers_scale_and_shift_and_never_flips():
    rng = np.random.default_rng(0)
    src = rng.random((20, 20)).astype(np.float32)
    scale, shift = align_affine(src, 3 * src - 2)
    assert abs(scale - 3) < 1e-5 and abs(shift + 2) < 1e-5
    assert align_affine(src, -src)[0] == 0.0


def test_aligned_tiles_meet_without_seams_and_raw_tiles_do_not(tmp_path):
    model = DepthModel(tiny.context_model(tmp_path / "ctx.onnx"), preprocess=SMALL)
    pixels = _scene(120, 160)
    aligned = tiled_depth(model, pixels, 3)
    raw = tiled_depth(model, pixels, 3, align=False)
    (global_pass,) = model.predict([pixels])
    span = float(global_pass.max() - global_pass.min())
    assert aligned.shape == (120, 160)
    # each raw tile keeps its own scale/shift, so the blend departs from the photo's layout; aligned tiles follow it
    assert np.abs(raw - global_pass).max() > 0.3 * span
    assert np.abs(aligned - global_pass).max() < 0.05 * span
    # continuity: no step between neighbouring pixels beyond the steepest step of the same model run at the
    # photo's full resolution (which has no tiles, hence no seams)
    # photo's full resolution (which has no tiles, hence no seams); a 5x5 mean first, so the uint8 steps of
    # the photo itself (resampled differently per tile) do not count as seams
    native = DepthModel(model.path, preprocess=Preprocess(input_size=120, multiple_of=1)).predict([pixels])[0]
    for axis in (0, 1):
        steepest = np.abs(np.diff(box_blur(native, 2), axis=axis)).max()
        assert np.abs(np.diff(box_blur(aligned, 2), axis=axis)).max() < 1.25 * steepest
        assert np.abs(np.diff(box_blur(raw, 2), axis=axis)).max() > 1.25 * steepest  # the check does see seams


def test_tiles_add_detail_beyond_the_model_input_size(tmp_path):
    model = DepthModel(tiny.brightness_model(tmp_path / "b.onnx"), preprocess=SMALL)
    y, x = np.mgrid[0:224, 0:224]
    checker = np.where(((x // 3) + (y // 3)) % 2 == 0, 200, 60).astype(np.uint8)
    pixels = np.repeat(checker[..., None], 3, axis=2)
    (global_pass,) = model.predict([pixels])
    tiled = tiled_depth(model, pixels, 4)

    def agreement(d):  # this model's exact answer is the photo's brightness
        return float(np.corrcoef(d.ravel(), checker.ravel().astype(np.float64))[0, 1])

    assert agreement(global_pass) < 0.2 and agreement(tiled) > 0.8  # 3 px squares, a 56 px model input


def test_model_depth_with_tiles_through_the_public_entry(tmp_path):
    path = tiny.context_model(tmp_path / "ctx.onnx")
    d = model_depth(_scene(64, 96), str(path), tiles=2)
    assert d.values.shape == (64, 96) and np.isfinite(d.values).all() and d.source == "onnx:ctx.onnx"
