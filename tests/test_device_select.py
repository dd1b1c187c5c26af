"""--device auto|cpu|cuda[:N]: backend selection, fallbacks and the errors a user sees, without a GPU."""
from __future__ import annotations

import contextlib
import inspect
import os
import sys
import types

import numpy as np
import pytest

from gpurelief import pipeline
from gpurelief.backend import device as D
from gpurelief.backend import numpy_ops
from gpurelief.cli import main
from gpurelief.errors import DependencyError, DeviceError, ExitStatus, OptionError


def cupy_sees_a_gpu() -> bool:
    try:
        import cupy

        return bool(cupy.cuda.is_available())
    except Exception:
        return False


def import_cupy():
    if os.environ.get("GPURELIEF_REQUIRE_CUPY") == "1":  # CI installs the gpu extra
        import cupy

        return cupy
    return pytest.importorskip("cupy", reason="needs the gpu extra (CuPy) installed")


no_gpu = pytest.mark.skipif(cupy_sees_a_gpu(), reason="checks the behaviour of a machine without a GPU")


@pytest.mark.parametrize(
    "text, want", [("auto", ("auto", None)), ("CPU", ("cpu", None)), ("cuda", ("cuda", 0)), ("cuda:3", ("cuda", 3))]
)
def test_parse_device_accepts_the_documented_forms(text, want):
    assert D.parse_device(text) == want


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:-1", "cuda:x", "", "tpu:0"])
def test_parse_device_rejects_other_values_naming_the_flag(text):
    with pytest.raises(OptionError, match=r"^--device: expected auto, cpu, cuda or cuda:N"):
        D.parse_device(text)


def test_cpu_backend_is_numpy_ops():
    b = D.select_backend("cpu")
    assert b.ops is numpy_ops and b.name == "cpu" and not b.is_gpu and b.note is None


def test_auto_without_driver_falls_back_to_cpu_with_a_note(monkeypatch):
    monkeypatch.setattr(D, "driver_present", lambda: False)
    b = D.select_backend("auto")
    assert b.ops is numpy_ops and "libcuda.so.1" in b.note


def test_auto_without_cupy_falls_back_to_cpu_naming_the_extra(monkeypatch):
    monkeypatch.setattr(D, "driver_present", lambda: True)
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    b = D.select_backend("auto")
    assert b.ops is numpy_ops and "gpurelief[gpu]" in b.note


@no_gpu
def test_auto_with_cupy_but_no_usable_device_falls_back_to_cpu(monkeypatch):
    import_cupy()
    monkeypatch.setattr(D, "driver_present", lambda: True)
    b = D.select_backend("auto")
    assert b.ops is numpy_ops and b.note.startswith("auto: no CUDA device is usable")


def test_cuda_without_cupy_names_the_gpu_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(DependencyError, match=r"pip install 'gpurelief\[gpu\]'"):
        D.select_backend("cuda")


@no_gpu
def test_cuda_without_a_device_is_a_device_error():
    import_cupy()
    with pytest.raises(DeviceError, match=r"^--device cuda:0: no CUDA device is usable .*--device cpu$"):
        D.select_backend("cuda:0")


def test_cuda_index_past_the_visible_devices_is_a_device_error(monkeypatch):
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime)))
    with pytest.raises(DeviceError, match=r"cuda:2: only 1 CUDA device\(s\) visible \(cuda:0..cuda:0\)"):
        D.select_backend("cuda:2")


def test_activate_turns_cupy_failures_into_one_line_device_errors(monkeypatch):
    cupy = import_cupy()
    monkeypatch.setattr(cupy.cuda, "Device", lambda index: contextlib.nullcontext())
    backend = D.Backend("cuda:0", types.SimpleNamespace(cupy=cupy), "cuda:0 (test)", 0)
    with pytest.raises(DeviceError, match=r"^cuda:0: out of GPU memory .*--device cpu$"):
        with backend.activate():
            raise cupy.cuda.memory.OutOfMemoryError(2**40, 2**30, 0)
    with pytest.raises(DeviceError, match=r"^cuda:0: CUDA error \(cudaErrorInsufficientDriver"):
        with backend.activate():
            raise cupy.cuda.runtime.CUDARuntimeError(35)  # cudaErrorInsufficientDriver


def test_cupy_ops_has_numpy_ops_names_and_signatures():
    import_cupy()
    from gpurelief.backend import cupy_ops

    twins = [
        "condition_heights", "box_blur", "gaussian_blur", "grid_positions", "grid_normals", "grid_uvs", "grid_indices",
        "cut_cells", "compact_grid", "quantization_transform", "quantize_positions", "quantize_normals", "quantize_uvs",
        "grid_shape", "grid_spacing", "index_dtype",
    ]
    for name in twins:
        want = inspect.signature(getattr(numpy_ops, name))
        got = inspect.signature(getattr(cupy_ops, name))
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == [
            (p.name, p.kind, p.default) for p in want.parameters.values()
        ], name


# ---- the pipeline: auto falls back when the GPU fails, cuda does not -----------------------------


def failing_backend(message: str) -> D.Backend:
    """A backend that behaves like a GPU failing mid-way (OOM, compile error) in grid_normals."""

    def grid_normals(*args, **kwargs):
        raise DeviceError(message)

    ops = types.SimpleNamespace(**{n: getattr(numpy_ops, n) for n in dir(numpy_ops) if not n.startswith("_")})
    ops.grid_normals = grid_normals
    return D.Backend("cuda:0", ops, "cuda:0 (failing test double)", None)


def test_auto_falls_back_to_cpu_when_the_gpu_fails_mid_way(monkeypatch, photo_jpeg, tmp_path, gltf_validator):
    monkeypatch.setattr(pipeline, "select_backend", lambda device: failing_backend("cuda:0: out of GPU memory (test)"))
    out = tmp_path / "a.glb"
    result = pipeline.convert(photo_jpeg, out, device="auto")
    assert result.device.startswith("cpu")
    assert result.notes == ["cuda:0: out of GPU memory (test); --device auto fell back to the CPU"]
    gltf_validator(out)


def test_auto_falls_back_when_the_gpu_path_has_a_bug_and_says_so(monkeypatch, photo_jpeg, tmp_path):
    backend = failing_backend("unused")

    def broken(*args, **kwargs):
        raise TypeError("simulated bug")

    backend.ops.grid_positions = broken
    monkeypatch.setattr(pipeline, "select_backend", lambda device: backend)
    result = pipeline.convert(photo_jpeg, tmp_path / "a.glb")
    assert result.device.startswith("cpu") and (tmp_path / "a.glb").stat().st_size > 0
    assert result.notes[0].startswith("the GPU path failed unexpectedly (TypeError: simulated bug)")
    monkeypatch.setattr(pipeline, "select_backend", lambda device: backend)
    with pytest.raises(TypeError):
        pipeline.convert(photo_jpeg, tmp_path / "b.glb", device="cuda")


def test_user_errors_on_the_gpu_path_are_not_retried_on_the_cpu(monkeypatch, photo_jpeg, tmp_path):
    backend = failing_backend("unused")
    calls = []

    def bad_option(*args, **kwargs):
        calls.append(1)
        raise OptionError("--relief: simulated user error")

    backend.ops.grid_positions = bad_option
    monkeypatch.setattr(pipeline, "select_backend", lambda device: backend)
    with pytest.raises(OptionError, match="simulated"):
        pipeline.convert(photo_jpeg, tmp_path / "a.glb")
    assert calls == [1]


def test_explicit_cuda_failure_is_an_error_and_leaves_no_file(monkeypatch, photo_jpeg, tmp_path, capsys):
    monkeypatch.setattr(pipeline, "select_backend", lambda device: failing_backend("cuda:0: out of GPU memory (test)"))
    out = tmp_path / "a.glb"
    rc = main(["convert", str(photo_jpeg), "-o", str(out), "--device", "cuda"])
    assert rc == ExitStatus.DEVICE
    err = capsys.readouterr().err
    assert err == "gpurelief: error: cuda:0: out of GPU memory (test)\n"
    assert not out.exists()
    assert not any(p.name.startswith(".a.glb") for p in tmp_path.iterdir())


def test_cli_prints_the_fallback_note_and_succeeds(monkeypatch, photo_jpeg, tmp_path, capsys):
    monkeypatch.setattr(pipeline, "select_backend", lambda device: failing_backend("cuda:0: kernel compile failed (test)"))
    out = tmp_path / "a.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(out)]) == ExitStatus.OK
    err = capsys.readouterr().err
    assert "gpurelief: note: cuda:0: kernel compile failed (test); --device auto fell back to the CPU" in err
    assert out.stat().st_size > 0


def test_cli_verbose_says_which_device_ran(photo_jpeg, tmp_path, capsys):
    assert main(["convert", str(photo_jpeg), "-o", str(tmp_path / "a.glb"), "--device", "cpu", "-v"]) == 0
    err = capsys.readouterr().err
    assert "\ndevice      cpu (numpy " in err


@no_gpu
def test_cli_auto_verbose_says_why_it_used_the_cpu(photo_jpeg, tmp_path, capsys):
    assert main(["convert", str(photo_jpeg), "-o", str(tmp_path / "a.glb"), "-v"]) == 0
    line = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("device  ")][0]
    assert "cpu (numpy" in line and "[auto: " in line


def test_cli_rejects_a_bad_device_value(photo_jpeg, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(photo_jpeg), "-o", str(tmp_path / "a.glb"), "--device", "gpu"])
    assert exc.value.code == 2
    assert "--device: expected auto, cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err


@no_gpu
def test_cli_cuda_on_a_machine_without_gpu_exits_device(photo_jpeg, tmp_path, capsys):
    import_cupy()
    out = tmp_path / "a.glb"
    assert main(["convert", str(photo_jpeg), "-o", str(out), "--device", "cuda:0"]) == ExitStatus.DEVICE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpurelief: error: --device cuda:0: no CUDA device is usable")
    assert not out.exists()


def test_convert_options_validate_the_device():
    with pytest.raises(OptionError, match="--device"):
        pipeline.ConvertOptions(device="metal").validate()
    assert np.all([pipeline.ConvertOptions(device=d).validate().device == d for d in ("auto", "cpu", "cuda:1")])
