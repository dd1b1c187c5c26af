"""Every kernel family compiles with NVRTC (the compiler CuPy uses at run time) for sm_80 and sm_90,
with the production options, on a machine without a GPU (the `nvrtc` extra: nvidia-cuda-nvrtc +
cuda-bindings). nvcc is not the judge: it accepts code NVRTC rejects (e.g. <cmath>).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from gpurelief.backend import kernels as K

if os.environ.get("GPURELIEF_REQUIRE_NVRTC") == "1":  # CI installs the extra: a missing NVRTC is a failure there
    from cuda.bindings import nvrtc
else:
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc", reason="needs the nvrtc extra: pip install 'gpurelief[nvrtc]'")

ARCHS = (80, 90)


def nvrtc_compile(source: str, name: str, options) -> tuple[bool, str, bytes, str]:
    """-> (ok, log, cubin, ptx)."""
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS
    opts = [o.encode() for o in options]
    (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    _, size = nvrtc.nvrtcGetProgramLogSize(prog)
    # NVRTC writes into the buffer: never pass an immutable bytes object (b" " * 1 is CPython's shared
    # one-byte b" " singleton, and overwriting it corrupts every later b" " in the process)
    log = bytearray(size)
    nvrtc.nvrtcGetProgramLog(prog, log)
    cubin = ptx = b""
    if result == nvrtc.nvrtcResult.NVRTC_SUCCESS:
        _, size = nvrtc.nvrtcGetCUBINSize(prog)
        cubin = bytearray(size)
        nvrtc.nvrtcGetCUBIN(prog, cubin)
        _, size = nvrtc.nvrtcGetPTXSize(prog)
        ptx = bytearray(size)
        nvrtc.nvrtcGetPTX(prog, ptx)
    nvrtc.nvrtcDestroyProgram(prog)
    return result == nvrtc.nvrtcResult.NVRTC_SUCCESS, bytes(log).rstrip(b"\0 ").decode(), bytes(cubin), bytes(ptx).decode(errors="replace")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", list(K.FAMILIES))
def test_kernel_family_compiles_with_nvrtc_without_warnings(family, arch):
    ok, log, cubin, _ = nvrtc_compile(K.kernel_source(family), f"{family}.cu", [*K.COMPILE_OPTIONS, f"-arch=sm_{arch}"])
    assert ok, log
    assert "warning" not in log.lower(), log
    for kernel in K.FAMILIES[family]:
        assert kernel.encode() in cubin, f"{kernel} missing from the sm_{arch} cubin"


@pytest.mark.parametrize("family", list(K.FAMILIES))
def test_production_build_has_no_fma_no_ftz_and_ieee_division(family):
    # --fmad=false is what makes the GPU results bit-exact with numpy. Our arithmetic is float32;
    # fma.rn.f64 may appear only inside libdevice's double pow (condition.cu's gamma), which uses
    # explicit FMAs by design, whatever --fmad says.
    ok, log, _, ptx = nvrtc_compile(K.kernel_source(family), f"{family}.cu", [*K.COMPILE_OPTIONS, "-arch=sm_90"])
    assert ok, log
    assert not re.search(r"\bfma\.rn\.f32\b", ptx)
    assert not re.search(r"\.ftz\.f32\b", ptx)  # subnormals kept, as in numpy (libdevice pow seeds with rcp.approx.ftz.f64)
    # float32 division, reciprocal and sqrt IEEE-rounded (.rn), never the approximate forms
    assert not re.search(r"\b(div|rcp|sqrt)\.(approx|full)(\.ftz)?\.f32\b", ptx)


def test_default_nvrtc_build_would_fuse_so_the_fma_check_can_fail():
    opts = [o for o in K.COMPILE_OPTIONS if not o.startswith("--fmad")] + ["-arch=sm_90"]
    ok, log, _, ptx = nvrtc_compile(K.kernel_source("normals"), "normals.cu", opts)
    assert ok, log
    assert re.search(r"\bfma\.rn\.f32\b", ptx)


def test_nvrtc_rejects_cmath_which_is_why_kernels_include_no_headers():
    ok, log, _, _ = nvrtc_compile("#include <cmath>\n" + K.kernel_source("grid"), "grid.cu", [*K.COMPILE_OPTIONS, "-arch=sm_90"])
    assert not ok and "cmath" in log


def test_compile_error_message_names_the_file_and_the_first_error():
    broken = K.kernel_source("normals").replace("sqrtf(", "sqrtff(")
    ok, log, _, _ = nvrtc_compile(broken, "normals.cu", [*K.COMPILE_OPTIONS, "-arch=sm_90"])
    assert not ok
    msg = K.compile_error_message("normals", "cuda:0", log)
    assert msg.startswith("gpurelief/kernels/normals.cu does not compile for cuda:0: ")
    assert "sqrtff" in msg and "--device cpu" in msg and "\n" not in msg


def import_cupy_nvrtc():
    if os.environ.get("GPURELIEF_REQUIRE_CUPY") == "1":
        from cupy_backends.cuda.libs import nvrtc as cupy_nvrtc

        return cupy_nvrtc
    return pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="needs the gpu extra (CuPy)")


@pytest.mark.parametrize("arch", ARCHS)
def test_runtime_compile_path_builds_every_family(arch, tmp_path):
    """K.cached_cubin / compile_cubin is what cupy_ops loads at run time (CuPy's NVRTC binding)."""
    import_cupy_nvrtc()
    for family in K.FAMILIES:
        path = K.cached_cubin(family, arch, cache_dir=tmp_path)
        cubin = path.read_bytes()
        assert path.name.startswith(f"{family}-sm_{arch}-") and all(k.encode() in cubin for k in K.FAMILIES[family])


def test_cached_cubin_compiles_once_and_keys_on_the_source(monkeypatch, tmp_path):
    import_cupy_nvrtc()
    calls = []
    real = K.compile_cubin
    monkeypatch.setattr(K, "compile_cubin", lambda family, arch: calls.append(family) or real(family, arch))
    first = K.cached_cubin("grid", 90, cache_dir=tmp_path)
    again = K.cached_cubin("grid", 90, cache_dir=tmp_path)
    assert first == again and calls == ["grid"]
    source = K.kernel_source
    monkeypatch.setattr(K, "kernel_source", lambda family: source(family) + "\n// edited\n")
    edited = K.cached_cubin("grid", 90, cache_dir=tmp_path)
    assert edited != first and calls == ["grid", "grid"]
    assert not list(tmp_path.glob("*.part"))


def test_runtime_compile_error_is_a_one_line_device_error(monkeypatch):
    import_cupy_nvrtc()
    from gpurelief.errors import DeviceError

    monkeypatch.setattr(K, "kernel_source", lambda family: "extern \"C\" __global__ void f() { undefined_call(); }\n")
    with pytest.raises(DeviceError, match=r"^gpurelief/kernels/grid\.cu does not compile for sm_90: .*undefined_call"):
        K.compile_cubin("grid", 90)


def test_runtime_compile_refuses_an_architecture_nvrtc_lacks():
    import_cupy_nvrtc()
    from gpurelief.errors import DeviceError

    with pytest.raises(DeviceError, match=r"cannot compile for sm_20"):
        K.compile_cubin("grid", 20)


def test_fast_math_build_would_use_approximate_ops_so_the_ieee_check_can_fail():
    ok, log, _, ptx = nvrtc_compile(K.kernel_source("normals"), "normals.cu", ["--use_fast_math", "-arch=sm_90"])
    assert ok, log
    assert re.search(r"\b(div|rcp|sqrt)\.(approx|full)(\.ftz)?\.f32\b", ptx)


def test_cached_cubin_survives_an_unusable_cache_dir(tmp_path):
    import_cupy_nvrtc()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    path = K.cached_cubin("indices", 90, cache_dir=blocker / "kernels")
    assert path.exists() and b"grid_indices_u32" in path.read_bytes()
    assert not str(path).startswith(str(blocker))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is optional (NVRTC above is the judge)")
@pytest.mark.parametrize("family", list(K.FAMILIES))
def test_kernel_family_is_warning_free_and_spill_free_under_nvcc(family, tmp_path):
    src = tmp_path / f"{family}.cu"
    src.write_text(K.kernel_source(family))
    proc = subprocess.run(
        ["nvcc", "-arch=sm_90", "--cubin", "-Werror", "all-warnings", "--fmad=false", "-Xptxas", "-v", str(src),
         "-o", str(tmp_path / f"{family}.cubin")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", proc.stderr)]
    assert not any(spills), proc.stderr


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", K.OTHER_SOURCES)
def test_other_kernel_sources_compile_with_nvrtc_without_warnings(source, arch):
    """rtin.cu (the adaptive mesher's GPU twin) as CuPy compiles it at run time, for both architectures."""
    ok, log, cubin, _ = nvrtc_compile((K.KERNEL_DIR / source).read_text(), source, ["--std=c++17", f"-arch=sm_{arch}"])
    assert ok, log
    assert "warning" not in log.lower(), log
    assert cubin[:4] == b"\x7fELF"
