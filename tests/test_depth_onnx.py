"""Neural depth through ONNX Runtime (CPU provider), with tiny models built in the tests."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from gpurelief.depth.onnx import DepthModel, Preprocess, input_shape, preprocess, select_providers  # noqa: E402
from gpurelief.errors import DeviceError, ModelError, OptionError  # noqa: E402
from tests import onnx_tiny as tiny  # noqa: E402

SMALL = Preprocess(input_size=56, multiple_of=14)


def test_lower_bound_resize_keeps_aspect_and_multiple_of_14():
    pre = Preprocess()  # Depth Anything V2: short side >= 518, multiple of 14
    for hw in [(480, 640), (1080, 1920), (3000, 2000), (37, 53), (518, 518)]:
        h, w = input_shape(hw, pre)
        assert h % 14 == 0 and w % 14 == 0 and min(h, w) >= 518
        assert abs((h / w) / (hw[0] / hw[1]) - 1) < 0.05
    assert input_shape((480, 640), Preprocess(input_size=256, multiple_of=32, resize="square")) == (256, 256)
    assert input_shape((480, 640), Preprocess(), fixed_hw=(320, 320)) == (320, 320)


def test_preprocess_normalises_with_imagenet_mean_std():
    px = np.zeros((4, 6, 3), np.uint8)
    px[..., 0] = 255
    x = preprocess(px, (4, 6), Preprocess())
    assert x.shape == (3, 4, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225], rtol=1e-5)


@pytest.mark.parametrize("out_rank", [3, 4])
@pytest.mark.parametrize("kind", ["inverse", "depth"])
def test_inverse_depth_and_depth_models_both_give_larger_is_nearer(tmp_path, out_rank, kind):
    path = tiny.brightness_model(tmp_path / "m.onnx", kind=kind, out_rank=out_rank)
    model = DepthModel(path, output="depth" if kind == "depth" else "inverse-depth", preprocess=SMALL)
    (d,) = model.predict([tiny.half_bright(30, 40)])
    assert d.shape == (30, 40) and d.dtype == np.float32
    assert d[:, :15].mean() > d[:, 25:].mean()  # the bright half is nearer either way


def test_output_is_resized_back_to_the_photo_with_dynamic_hw_and_default_preprocessing(tmp_path):
    path = tiny.brightness_model(tmp_path / "m.onnx", downsample=True)  # output at half the input size
    model = DepthModel(path)
    assert model.providers == ["CPUExecutionProvider"] and model.input_name == "image"
    for h, w in [(37, 53), (120, 64)]:
        (d,) = model.predict([tiny.half_bright(h, w)])
        assert d.shape == (h, w)
        left, right = d[:, : w // 2 - 3].mean(), d[:, w // 2 + 3:].mean()
        assert left > right


def test_batch_of_several_images_matches_one_by_one(tmp_path):
    path = tiny.brightness_model(tmp_path / "m.onnx", out_rank=4)
    model = DepthModel(path, preprocess=SMALL)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(3)] + [tiny.half_bright(50, 50)]
    together = model.predict(images)
    for img, d in zip(images, together):
        (alone,) = model.predict([img])
        np.testing.assert_allclose(d, alone, rtol=1e-6, atol=1e-6)
    assert together[3].shape == (50, 50)


def test_fixed_batch_of_one_and_fixed_input_size(tmp_path):
    path = tiny.brightness_model(tmp_path / "m.onnx", batch=1, fixed_hw=(28, 42))
    model = DepthModel(path, preprocess=SMALL)
    assert model.fixed_hw == (28, 42) and model.fixed_batch == 1
    out = model.predict([tiny.half_bright(30, 40), tiny.half_bright(60, 90)])
    assert [o.shape for o in out] == [(30, 40), (60, 90)]


def test_fp16_input_model_and_custom_io_names(tmp_path):
    path = tiny.brightness_model(tmp_path / "m.onnx", fp16=True, input_name="pixel_values", output_name="predicted_depth")
    model = DepthModel(path, preprocess=SMALL)
    assert model.input_dtype == np.float16 and model.input_name == "pixel_values"
    (d,) = model.predict([tiny.half_bright(30, 40)])
    assert d[:, :15].mean() > d[:, 25:].mean()


def test_corrupt_file_is_a_model_error_naming_the_fix(tmp_path):
    bad = tmp_path / "broken.onnx"
    good = tiny.brightness_model(tmp_path / "m.onnx").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="broken.onnx: not a loadable ONNX model.*download it again"):
        DepthModel(bad)
    bad.write_bytes(b"this is not protobuf" * 10)
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        DepthModel(bad)


@pytest.mark.parametrize(
    "make, message",
    [
        (tiny.rgb_passthrough_model, r"must output \[N,H,W\] or \[N,1,H,W\]"),
        (tiny.classifier_model, r"must output \[N,H,W\]"),
        (tiny.greyscale_input_model, r"expected one image input of shape \[N,3,H,W\]"),
    ],
)
def test_wrong_shaped_models_are_refused_at_load(tmp_path, make, message):
    with pytest.raises(ModelError, match=message):
        DepthModel(make(tmp_path / "m.onnx"))


def test_output_that_is_not_a_depth_map_is_refused_at_run(tmp_path):
    model = DepthModel(tiny.scalar_map_model(tmp_path / "m.onnx"), preprocess=SMALL)
    with pytest.raises(ModelError, match="not a depth model"):
        model.predict([tiny.half_bright(30, 40)])
    model = DepthModel(tiny.nan_model(tmp_path / "n.onnx"), preprocess=SMALL)
    with pytest.raises(ModelError, match="NaN"):
        model.predict([tiny.half_bright(30, 40)])


def test_missing_file_and_bad_output_kind(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        DepthModel(tmp_path / "nope.onnx")
    with pytest.raises(OptionError, match="--depth-output"):
        DepthModel(tmp_path / "nope.onnx", output="disparity")


def test_provider_order_is_tensorrt_cuda_cpu_and_unavailable_requests_fail():
    from gpurelief.depth.onnx import _providers_for

    everything = ["AzureExecutionProvider", "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert _providers_for(None, everything) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert _providers_for(None, ["CPUExecutionProvider", "CUDAExecutionProvider"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert _providers_for(["cuda", "cpu"], everything) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers(["cpu"]) == ["CPUExecutionProvider"]
    assert select_providers()[-1] == "CPUExecutionProvider"
    with pytest.raises(DeviceError, match="TensorrtExecutionProvider is not available.*onnxruntime-gpu"):
        _providers_for(["tensorrt"], ["CPUExecutionProvider"])


def test_tensorrt_options_key_the_engine_cache_by_model_gpu_version_and_shape(tmp_path, monkeypatch):
    from gpurelief.depth import onnx as dep

    monkeypatch.setenv("GPURELIEF_HOME", str(tmp_path))
    monkeypatch.setattr(dep, "gpu_name", lambda: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(dep, "tensorrt_version", lambda: "10.9.0")
    sha = "ab" * 32
    opts = dep.tensorrt_options(sha, "pixel_values", precision="fp32", shape=(518, 518))
    folder = tmp_path / "engines" / f"{'ab' * 8}-nvidia-h100-80gb-hbm3-trt10.9.0-518x518"
    assert opts["trt_engine_cache_path"] == opts["trt_timing_cache_path"] == str(folder)
    assert opts["trt_engine_cache_enable"] == opts["trt_timing_cache_enable"] == "True"
    assert opts["trt_fp16_enable"] == "True"
    assert opts["trt_profile_min_shapes"] == opts["trt_profile_max_shapes"] == "pixel_values:1x3x518x518"
    # fp16 exports run in fp16 as they are; TensorRT 11 has no fp16 builder flag at all
    assert "trt_fp16_enable" not in dep.tensorrt_options(sha, "x", precision="fp16", shape=None)
    monkeypatch.setattr(dep, "tensorrt_version", lambda: "11.4.0.106")
    assert "trt_fp16_enable" not in dep.tensorrt_options(sha, "x", precision="fp32", shape=None)
    assert dep.engine_key(sha, None).endswith("-trt11.4.0.106-dynamic")
    assert dep.engine_key(sha, (518, 700)) != dep.engine_key("cd" * 32, (518, 700))


def test_depth_eval_scores_an_onnx_model_like_the_method_it_computes(tmp_path):
    from bench.depth_eval.run import evaluate, methods_with_models

    path = str(tiny.brightness_model(tmp_path / "b.onnx"))
    r = evaluate(range(3), (48, 64), methods_with_models([path]))
    # the tiny model outputs brightness: it must score like the luminance baseline, not like the ramp
    assert abs(r[path]["spearman"] - r["luminance"]["spearman"]) < 0.15
    assert r[path]["spearman"] < r["lower-is-nearer"]["spearman"] - 0.5
