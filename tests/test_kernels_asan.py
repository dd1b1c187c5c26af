"""The AddressSanitizer route of the kernel host tests catches what it is there to catch.

.ci/run reruns tests/test_kernels_host.py with GPURELIEF_HOST_ASAN=1; these tests prove that such
a run is not vacuous: an off-by-one kernel is reported, and the ASan build really is instrumented.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kernel_host import ASAN_FLAGS, CXXFLAGS, HostKernels, asan_enabled, compiler, wrapper_for_source

TESTS = Path(__file__).resolve().parent


def libasan() -> str | None:
    cxx = compiler()
    if cxx is None:
        return None
    path = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


pytestmark = pytest.mark.skipif(libasan() is None, reason="needs g++ with libasan for the sanitizer route")

# one past the end: `i > n` where `i >= n` was meant
BAD_KERNEL = textwrap.dedent(
    """
    extern "C" __global__ void scale_f32(const float* __restrict__ src, float* __restrict__ dst, long long n, float k)
    {
        long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
        if (i > n) return;
        dst[i] = src[i] * k;
    }
    """
)


def test_asan_host_build_reports_an_out_of_bounds_kernel_write(tmp_path):
    cpp = tmp_path / "bad.cpp"
    so = tmp_path / "bad.so"
    cpp.write_text(wrapper_for_source(BAD_KERNEL))
    subprocess.run([compiler(), *CXXFLAGS, *ASAN_FLAGS, str(cpp), "-o", str(so)], check=True, capture_output=True)
    script = textwrap.dedent(
        f"""
        import ctypes, numpy as np
        lib = ctypes.CDLL({str(so)!r})
        n = 1000
        src = np.ones(n, np.float32); dst = np.empty(n, np.float32)
        u = ctypes.c_uint
        lib.host_launch_scale_f32(u(4), u(1), u(1), u(256), u(1), u(1), ctypes.c_void_p(src.ctypes.data),
                                  ctypes.c_void_p(dst.ctypes.data), ctypes.c_longlong(n), ctypes.c_float(2.0))
        print("no report")
        """
    )
    env = dict(os.environ, LD_PRELOAD=libasan(), ASAN_OPTIONS="detect_leaks=0")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "heap-buffer-overflow" in proc.stderr
    assert "scale_f32" in proc.stderr  # the report points into the kernel


@pytest.mark.skipif(not asan_enabled(), reason="only in the ASan run (GPURELIEF_HOST_ASAN=1, see .ci/run)")
def test_asan_run_builds_instrumented_kernel_libraries(tmp_path):
    so = HostKernels(tmp_path).build("normals")
    symbols = subprocess.run(["nm", "-D", str(so)], capture_output=True, text=True).stdout
    assert "__asan_" in symbols


@pytest.mark.skipif(asan_enabled(), reason="this is the test that starts the ASan run")
def test_kernel_host_parity_passes_under_asan(tmp_path):
    """The CI job of the issue: every host-shim kernel build and parity test again, under AddressSanitizer."""
    env = dict(
        os.environ, GPURELIEF_HOST_ASAN="1", LD_PRELOAD=libasan(), ASAN_OPTIONS="detect_leaks=0", PYTHONUNBUFFERED="1"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'asan'}",
         str(TESTS / "test_kernels_host.py"), str(TESTS / "test_kernels_asan.py")],
        capture_output=True, text=True, env=env, timeout=900, cwd=TESTS.parent,
    )
    tail = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert "AddressSanitizer" not in proc.stderr, tail
    # the instrumented-build check ran (it skips outside the ASan run), and parity tests ran
    assert "only in the ASan run" not in proc.stdout, tail
    assert " passed" in proc.stdout, tail
