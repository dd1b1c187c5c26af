"""Build gpurelief/kernels/*.cu as host C++ (tests/kernel_host_shim.h) and launch them through ctypes.

One shared library per kernel family, with one generated `host_launch_<kernel>(grid, block, args)`
wrapper per kernel that loops over the launch grid serially. Compiled with -ffp-contract=off so
GCC does not fuse a*b+c (the GPU build uses --fmad=false for the same reason).

GPURELIEF_HOST_ASAN=1 builds with AddressSanitizer instead; the Python process must then run with
LD_PRELOAD=$(g++ -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 (see .ci/run).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from gpurelief.backend import kernels as K
from gpurelief.backend.kernel_ops import KernelOps

SHIM = Path(__file__).with_name("kernel_host_shim.h")

CXXFLAGS = ["-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", "-Wall", "-Wno-unused-function"]
ASAN_FLAGS = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1"]

_CTYPES = {
    "float": ctypes.c_float,
    "double": ctypes.c_double,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "long long": ctypes.c_longlong,
    "unsigned long long": ctypes.c_ulonglong,
}


def asan_enabled() -> bool:
    return os.environ.get("GPURELIEF_HOST_ASAN") == "1"


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def wrapper_source(family: str) -> str:
    """C++ translation unit: the shim, the family's (expanded) kernel source, one launcher per kernel."""
    return wrapper_for_source(K.kernel_source(family))


def wrapper_for_source(source: str) -> str:
    """Any kernel source -> the shim, the source, and one host_launch_<kernel> per extern "C" kernel."""
    parts = [f'#include "{SHIM}"', "// ---- kernel source", source, "// ---- host launchers"]
    for name, params in K.parse_signatures(source).items():
        decl = ", ".join(
            f"{'const ' if p.pointer else ''}{p.ctype}{'*' if p.pointer else ''} {p.name}" for p in params
        )
        call_args = ", ".join(
            f"const_cast<{p.ctype}*>({p.name})" if p.pointer else p.name for p in params
        )
        parts.append(
            f'extern "C" void host_launch_{name}(unsigned int launch_gx, unsigned int launch_gy, unsigned int launch_gz, '
            f"unsigned int launch_bx, unsigned int launch_by, unsigned int launch_bz{', ' if decl else ''}{decl}) {{\n"
            f"    HOST_LAUNCH_LOOP(launch_gx, launch_gy, launch_gz, launch_bx, launch_by, launch_bz, {name}({call_args}));\n}}"
        )
    return "\n".join(parts) + "\n"


class HostKernels:
    """Shared libraries of every kernel family, built once into `build_dir`."""

    def __init__(self, build_dir: Path, *, asan: bool | None = None):
        self.build_dir = Path(build_dir)
        self.asan = asan_enabled() if asan is None else asan
        self.libs: dict[str, ctypes.CDLL] = {}

    def build(self, family: str) -> Path:
        cxx = compiler()
        if cxx is None:
            raise RuntimeError("g++ is not installed; the kernel host tests need a C++17 compiler")
        src = wrapper_source(family)
        flags = CXXFLAGS + (ASAN_FLAGS if self.asan else [])
        key = hashlib.sha256((src + SHIM.read_text() + " ".join(flags)).encode()).hexdigest()[:16]
        so = self.build_dir / f"{family}-{key}.so"
        if not so.exists():
            cpp = self.build_dir / f"{family}-{key}.cpp"
            cpp.write_text(src)
            proc = subprocess.run([cxx, *flags, str(cpp), "-o", str(so)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"host build of kernels/{family}.cu failed:\n{proc.stderr[-4000:]}")
        return so

    def lib(self, family: str) -> ctypes.CDLL:
        if family not in self.libs:
            self.libs[family] = ctypes.CDLL(str(self.build(family)))
        return self.libs[family]

    def __call__(self, family: str, kernel: str, grid: tuple, block: tuple, args) -> None:
        """Launcher for KernelOps: numpy arrays go by pointer, scalars by their C type."""
        params = K.kernel_signatures(family)[kernel]
        c_args = []
        for p, a in zip(params, args):
            if p.pointer:
                assert isinstance(a, np.ndarray) and a.flags.c_contiguous, f"{kernel}.{p.name}: need a C-contiguous array"
                assert a.dtype == p.dtype, f"{kernel}.{p.name}: expected {p.dtype}, got {a.dtype}"
                c_args.append(ctypes.c_void_p(a.ctypes.data))
            else:
                c_args.append(_CTYPES[p.ctype](a.item() if hasattr(a, "item") else a))
        fn = getattr(self.lib(family), f"host_launch_{kernel}")
        fn.restype = None
        fn(*(ctypes.c_uint(int(v)) for v in (*grid, *block)), *c_args)


def host_ops(build_dir: Path) -> KernelOps:
    """KernelOps with numpy arrays and the host-shim launcher: cupy_ops' glue, run on the CPU."""
    return KernelOps(np, HostKernels(build_dir))
