"""CLI: --depth-model on convert/depth, `models list|pull|path`, `engines build`, `doctor`."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from gpurelief.cli import main
from gpurelief.depth import registry
from gpurelief.errors import ExitStatus

pytest.importorskip("onnxruntime")
from tests import onnx_tiny as tiny  # noqa: E402
from tests.test_models_download import PAYLOAD, SHA, server  # noqa: E402,F401  (fixture)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GPURELIEF_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "half.png"
    Image.fromarray(tiny.half_bright(48, 64)).save(path)
    return path


def test_convert_with_an_onnx_model_file_writes_a_valid_glb(tmp_path, photo, gltf_validator):
    model = tiny.brightness_model(tmp_path / "tiny.onnx")
    out = tmp_path / "r.glb"
    assert main(["convert", str(photo), "-o", str(out), "--depth-model", str(model), "--providers", "cpu"]) == 0
    gltf_validator(out)


@pytest.mark.parametrize("kind", ["inverse-depth", "depth"])
def test_depth_command_with_model_puts_the_bright_half_up(tmp_path, photo, kind):
    model = tiny.brightness_model(tmp_path / "tiny.onnx", kind="depth" if kind == "depth" else "inverse")
    out = tmp_path / "d.npy"
    assert main(["depth", str(photo), "-o", str(out), "--depth-model", str(model), "--depth-output", kind]) == 0
    h = np.load(out)
    assert h.shape == (48, 64) and h[:, :28].mean() > h[:, 36:].mean() + 0.5


def test_unknown_model_name_and_missing_download_are_model_errors(tmp_path, photo, home, capsys):
    out = tmp_path / "r.glb"
    assert main(["convert", str(photo), "-o", str(out), "--depth-model", "dav2-huge"]) == ExitStatus.MODEL
    assert "no model named 'dav2-huge'" in capsys.readouterr().err
    assert main(["convert", str(photo), "-o", str(out), "--depth-model", "midas-v2.1-small"]) == ExitStatus.MODEL
    err = capsys.readouterr().err
    assert "gpurelief models pull midas-v2.1-small" in err and str(home) in err and not out.exists()


def test_non_commercial_model_needs_accept_license(tmp_path, photo, home, capsys):
    out = tmp_path / "r.glb"
    assert main(["convert", str(photo), "-o", str(out), "--depth-model", "depth-anything-v2-large"]) == ExitStatus.MODEL
    assert "--accept-license depth-anything-v2-large" in capsys.readouterr().err
    # accepted: it gets past the licence to the (missing) download
    args = ["convert", str(photo), "-o", str(out), "--depth-model", "depth-anything-v2-large",
            "--accept-license", "depth-anything-v2-large"]
    assert main(args) == ExitStatus.MODEL
    assert "not downloaded yet" in capsys.readouterr().err


def test_corrupt_model_file_is_one_line_model_error(tmp_path, photo, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    out = tmp_path / "r.glb"
    assert main(["convert", str(photo), "-o", str(out), "--depth-model", str(bad)]) == ExitStatus.MODEL
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpurelief: error: ") and "not a loadable ONNX model" in err and "\n" not in err
    assert not out.exists()


def test_depth_map_and_depth_model_together_is_an_option_error(tmp_path, photo, capsys):
    out = tmp_path / "r.glb"
    args = ["convert", str(photo), "-o", str(out), "--depth-map", str(photo), "--depth-model", "x.onnx"]
    assert main(args) == ExitStatus.OPTION


def test_unavailable_provider_is_a_device_error(tmp_path, photo, capsys):
    model = tiny.brightness_model(tmp_path / "tiny.onnx")
    args = ["convert", str(photo), "-o", str(tmp_path / "r.glb"), "--depth-model", str(model), "--providers", "tensorrt"]
    assert main(args) == ExitStatus.DEVICE
    assert "TensorrtExecutionProvider is not available" in capsys.readouterr().err


def test_models_list_and_path(home, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in registry.MODELS:
        assert name in out
    assert "CC-BY-NC-4.0" in out and "Apache-2.0" in out and "MIT" in out
    assert main(["models", "list", "-v"]) == 0
    out = capsys.readouterr().out
    da2 = registry.MODELS["depth-anything-v2-small"]
    assert f"sha256: {da2.sha256}, {da2.size_bytes:,} bytes" in out and f"revision {da2.revision})" in out
    assert main(["models", "path", "midas-v2.1-small"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "models" / "midas-v2.1-small.onnx")
    assert main(["models", "path", "nope"]) == ExitStatus.MODEL


def test_models_pull_from_a_local_server(server, home, monkeypatch, capsys):  # noqa: F811
    spec = replace(registry.MODELS["midas-v2.1-small"], url=f"http://127.0.0.1:{server.server_port}/m.onnx", sha256=SHA,
                   size_bytes=None)
    monkeypatch.setitem(registry.MODELS, spec.name, spec)
    assert main(["models", "pull", spec.name, "-q"]) == 0
    path = home / "models" / spec.filename
    assert capsys.readouterr().out.strip() == str(path) and path.read_bytes() == PAYLOAD
    unpinned = replace(spec, sha256=None, name="unpinned", filename="unpinned.onnx")
    monkeypatch.setitem(registry.MODELS, "unpinned", unpinned)
    assert main(["models", "pull", "unpinned", "-q"]) == ExitStatus.MODEL
    assert "--allow-unverified" in capsys.readouterr().err
    assert main(["models", "pull", "unpinned", "-q", "--allow-unverified"]) == 0
    assert SHA in capsys.readouterr().err


def test_engines_build_without_tensorrt_is_a_device_error(tmp_path, capsys):
    import onnxruntime

    if "TensorrtExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("TensorRT present: see the gpu-marked test")
    model = tiny.brightness_model(tmp_path / "tiny.onnx")
    assert main(["engines", "build", str(model), "--shape", "518x518"]) == ExitStatus.DEVICE
    assert "no TensorrtExecutionProvider" in capsys.readouterr().err
    assert main(["engines", "build", str(model), "--shape", "518by518"]) in (ExitStatus.OPTION, ExitStatus.DEVICE)


def test_doctor_reports_providers_and_cache_paths(home, capsys):
    import onnxruntime

    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert f"onnxruntime   {onnxruntime.__version__}" in text and "CPUExecutionProvider" in text
    assert f"cache home    {home} (from GPURELIEF_HOME)" in text and str(home / "engines") in text
    assert "TensorRT" in text and "CuPy" in text and "GPU" in text
    assert main(["doctor", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["providers"] == onnxruntime.get_available_providers()
    assert r["cache"]["models"] == str(home / "models")


@pytest.mark.gpu
def test_tensorrt_engine_build_and_cuda_inference_on_a_gpu(tmp_path, home):
    """Runs only where onnxruntime has the GPU providers (never on the project's CPU machines)."""
    import onnxruntime

    avail = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" not in avail:
        pytest.skip("no CUDAExecutionProvider in this onnxruntime")
    from gpurelief.depth.onnx import DepthModel

    model = tiny.brightness_model(tmp_path / "tiny.onnx")
    m = DepthModel(model, providers=["cuda", "cpu"])
    (d,) = m.predict([tiny.half_bright(48, 64)])
    assert d[:, :28].mean() > d[:, 36:].mean()
    if "TensorrtExecutionProvider" in avail:
        assert main(["engines", "build", str(model), "--shape", "518x518"]) == 0
        assert any((home / "engines").iterdir())


def test_depth_tiles_through_the_cli(tmp_path, photo, capsys):
    model = tiny.context_model(tmp_path / "ctx.onnx")
    out = tmp_path / "d.npy"
    assert main(["depth", str(photo), "-o", str(out), "--depth-model", str(model), "--depth-tiles", "2"]) == 0
    assert np.load(out).shape == (48, 64)
    assert main(["depth", str(photo), "-o", str(out), "--depth-tiles", "2"]) == ExitStatus.OPTION
    assert "--depth-tiles needs --depth-model" in capsys.readouterr().err
    assert main(["depth", str(photo), "-o", str(out), "--depth-model", str(model), "--depth-tiles", "1"]) == ExitStatus.OPTION


@pytest.mark.gpu
def test_io_binding_keeps_the_depth_map_on_the_gpu(tmp_path):
    """Runs only with onnxruntime-gpu and a CUDA device."""
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("no CUDAExecutionProvider in this onnxruntime")
    cp = pytest.importorskip("cupy")
    if not cp.cuda.is_available():
        pytest.skip("CuPy sees no CUDA device")
    from gpurelief.depth.onnx import DepthModel

    m = DepthModel(tiny.brightness_model(tmp_path / "tiny.onnx"), providers=["cuda"])
    d = m.predict_device(tiny.half_bright(48, 64))
    assert isinstance(d, cp.ndarray) and d.dtype == cp.float32
    from gpurelief.depth.onnx import preprocess

    x = preprocess(tiny.half_bright(48, 64), m.input_shape((48, 64)), m.pre)[None]
    host = DepthModel(m.path, providers=["cpu"]).run(x)[0]
    np.testing.assert_allclose(cp.asnumpy(d), host, rtol=1e-4, atol=1e-4)


def test_gpu_output_on_a_cpu_session_is_a_device_error(tmp_path):
    pytest.importorskip("cupy")
    from gpurelief.depth.onnx import DepthModel
    from gpurelief.errors import DeviceError

    m = DepthModel(tiny.brightness_model(tmp_path / "tiny.onnx"), providers=["cpu"])
    with pytest.raises(DeviceError, match="needs the CUDA or TensorRT provider"):
        m.predict_device(tiny.half_bright(8, 8))
