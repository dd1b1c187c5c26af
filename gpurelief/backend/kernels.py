"""The CUDA kernel sources (gpurelief/kernels/*.cu): where they are, how they are compiled, how launched.

No CuPy arrays here: the NVRTC compile check, the C++ host-shim tests and cupy_ops all read the
same sources, options, signatures and launch shapes from this module. `compile_cubin` uses CuPy's
NVRTC binding (it works without a GPU), imported only when called.

Kernels are compiled here rather than by cupy.RawModule(code=...), because CuPy appends
-ftz=true (flush subnormals to zero) to every NVRTC compile, which numpy does not do; the cubin
built with exactly COMPILE_OPTIONS is then loaded with cupy.RawModule(path=...).

The sources live inside the package (gpurelief/kernels/) so that a wheel ships exactly the files
the tests compiled (pyproject package-data); there is no second copy at the repository root.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..paths import home_dir

KERNEL_DIR = Path(__file__).resolve().parents[1] / "kernels"

# --fmad=false: no contraction of a*b+c into FMA, so results match the numpy twins bit for bit.
# --prec-div / --prec-sqrt: IEEE-rounded / and sqrtf (NVRTC's defaults, stated; never --use_fast_math).
# -ftz=false: keep subnormals, as numpy does (NVRTC's default; stated because CuPy's default is true).
COMPILE_OPTIONS: tuple[str, ...] = ("--std=c++17", "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "-ftz=false")

# Every family and the kernels it must define; a parity test covers each one.
FAMILIES: dict[str, tuple[str, ...]] = {
    "condition": ("condition_heights_f32", "range_partials_f32", "range_params_f32"),
    "grid": ("grid_positions_f32", "grid_uvs_f32"),
    "normals": ("grid_normals_f32",),
    "indices": ("grid_indices_u16", "grid_indices_u32"),
    "compact": ("cut_cells_u8", "used_vertices_u8", "compact_vertex_ids", "compact_indices_u16", "compact_indices_u32"),
    "quantize": ("quantize_positions_i16", "quantize_normals_i8", "quantize_uvs_u16"),
}

# Kernel sources beside the families above that have their own twin and driver: rtin.cu is the adaptive
# mesher's GPU twin (mesh/rtin_gpu.py, parity with the numba reference in tests/test_rtin_gpu.py).
OTHER_SOURCES: tuple[str, ...] = ("rtin.cu",)

# Bits of condition_heights_f32's `flags` (kernels/condition.cu).
CONDITION_NORMALIZE, CONDITION_INVERT, CONDITION_GAMMA, CONDITION_CONTRAST = 1, 4, 8, 16
# condition_heights_f32's params (device float32): lo, span, fill, flat, bad, scale
PARAM_LO, PARAM_SPAN, PARAM_FILL, PARAM_FLAT, PARAM_BAD, PARAM_SCALE = range(6)
PARAM_COUNT = 6

BLOCK_1D = 256
BLOCK_2D = (32, 8)
# the per-vertex and index kernels give each thread one 16-byte piece of their output (kernels/common.h)
STORE_BYTES = 16
# threads of range_partials_f32: enough loads in flight to fill a large GPU
RANGE_THREADS = 1 << 17

_SCALAR_DTYPES = {
    "float": np.float32,
    "double": np.float64,
    "int": np.int32,
    "unsigned int": np.uint32,
    "long long": np.int64,
    "unsigned long long": np.uint64,
}
_POINTER_DTYPES = {
    "float": np.float32,
    "unsigned char": np.uint8,
    "signed char": np.int8,
    "short": np.int16,
    "unsigned short": np.uint16,
    "int": np.int32,
    "unsigned int": np.uint32,
}


@dataclass(frozen=True)
class Param:
    """One kernel parameter: C type (qualifiers dropped), name, pointer or not, numpy dtype."""

    ctype: str
    name: str
    pointer: bool
    dtype: np.dtype


def kernel_path(family: str) -> Path:
    """Family name -> path of its .cu file (KeyError for an unknown family)."""
    if family not in FAMILIES:
        raise KeyError(f"unknown kernel family {family!r}; expected one of {', '.join(FAMILIES)}")
    return KERNEL_DIR / f"{family}.cu"


@lru_cache(maxsize=None)
def kernel_source(family: str) -> str:
    """-> the family's CUDA source with local `#include "x.h"` lines expanded in place.

    Expanded, not passed as -I, because CuPy's on-disk kernel cache keys on the source text only:
    an edited header must change the key.
    """
    return _expand(kernel_path(family), set())


def _expand(path: Path, seen: set[Path]) -> str:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if m:
            inc = (path.parent / m.group(1)).resolve()
            if inc not in seen:
                seen.add(inc)
                out.append(_expand(inc, seen))
            continue
        if line.strip() == "#pragma once":
            continue
        out.append(line)
    return "\n".join(out) + "\n"


_KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)


@lru_cache(maxsize=None)
def kernel_signatures(family: str) -> dict[str, tuple[Param, ...]]:
    """-> {kernel name: parameters} for every `extern "C" __global__` kernel in the family."""
    return parse_signatures(kernel_source(family))


def parse_signatures(source: str) -> dict[str, tuple[Param, ...]]:
    """CUDA source -> {kernel name: parameters} of its `extern "C" __global__` kernels."""
    return {
        name: tuple(_param(p) for p in params.split(",") if p.strip()) for name, params in _KERNEL_RE.findall(source)
    }


def _param(text: str) -> Param:
    text = " ".join(text.replace("__restrict__", " ").split())
    pointer = "*" in text
    text = text.replace("*", " ")
    words = [w for w in text.split() if w != "const"]
    name, ctype = words[-1], " ".join(words[:-1])
    table = _POINTER_DTYPES if pointer else _SCALAR_DTYPES
    if ctype not in table:
        raise ValueError(f"kernel parameter {text!r}: type {ctype!r} has no numpy mapping in gpurelief.backend.kernels")
    return Param(ctype=ctype, name=name, pointer=pointer, dtype=np.dtype(table[ctype]))


def launch_1d(count: int, block: int = BLOCK_1D) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Element count -> (grid, block) of a 1-D launch with one thread per element (count >= 1)."""
    return ((max(1, -(-count // block)), 1, 1), (block, 1, 1))


def groups(count: int, per_thread: int) -> int:
    """Items -> threads when each thread takes `per_thread` consecutive items (the last one may take fewer)."""
    return max(1, -(-count // per_thread))


def launch_2d(width: int, height: int, block: tuple[int, int] = BLOCK_2D) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(columns, rows) -> (grid, block) of a 2-D launch, x = column, y = row."""
    bx, by = block
    return ((max(1, -(-width // bx)), max(1, -(-height // by)), 1), (bx, by, 1))


def scalar_args(family: str, kernel: str, args: tuple) -> list:
    """Coerce a launch's scalar arguments to the exact numpy types the C signature declares.

    CuPy passes a Python float as a C double: a `float` parameter would read garbage. Checking the
    argument count here also turns a signature drift into an error instead of a wrong result.
    """
    params = kernel_signatures(family)[kernel]
    if len(params) != len(args):
        raise TypeError(f"{kernel}: expected {len(params)} arguments ({', '.join(p.name for p in params)}), got {len(args)}")
    return [a if p.pointer else p.dtype.type(a) for p, a in zip(params, args)]


def compile_error_message(family: str, device: str, log: str) -> str:
    """NVRTC log -> one line naming the kernel file, the first error and the way out."""
    text = str(log).strip()
    errors = [ln.strip() for ln in text.splitlines() if "error" in ln]
    first = errors[0] if errors else (text.splitlines() or ["(no compiler log)"])[0]
    return (
        f"gpurelief/kernels/{family}.cu does not compile for {device}: {first}; "
        "reinstall gpurelief (the kernel sources may be damaged) or run with --device cpu"
    )


def compile_cubin(family: str, arch: int | str) -> bytes:
    """Kernel family -> cubin for sm_<arch> compiled by NVRTC with exactly COMPILE_OPTIONS.

    Raises DeviceError (one line: file, first compiler error, fix) when NVRTC rejects the source or
    cannot target the architecture.
    """
    from ..errors import DeviceError, require

    nvrtc = require("cupy_backends.cuda.libs.nvrtc", "gpu", purpose="compiling the CUDA kernels")
    arch = str(arch)
    try:
        supported = [int(a) for a in nvrtc.getSupportedArchs()]
    except Exception as exc:  # libnvrtc not found: the nvidia-cuda-nvrtc wheel is missing
        raise DeviceError(
            f"NVRTC (the CUDA runtime compiler) cannot be loaded ({str(exc).splitlines()[0] if str(exc) else exc}); "
            "install it with: pip install 'gpurelief[gpu]'"
        ) from exc
    if int(arch) not in supported:
        raise DeviceError(
            f"NVRTC {'.'.join(map(str, nvrtc.getVersion()))} cannot compile for sm_{arch} (it supports "
            f"sm_{min(supported)}..sm_{max(supported)}); install a matching nvidia-cuda-nvrtc or use --device cpu"
        )
    prog = nvrtc.createProgram(kernel_source(family), f"{family}.cu", (), ())
    try:
        try:
            nvrtc.compileProgram(prog, [*COMPILE_OPTIONS, f"-arch=sm_{arch}"])
        except nvrtc.NVRTCError as exc:
            raise DeviceError(compile_error_message(family, f"sm_{arch}", nvrtc.getProgramLog(prog))) from exc
        return bytes(nvrtc.getCUBIN(prog))
    finally:
        nvrtc.destroyProgram(prog)


def kernel_cache_dir() -> Path:
    """$GPURELIEF_CACHE_DIR (kernels only), else kernels/ under the gpurelief home ($GPURELIEF_HOME or the
    user cache dir, where models/ and engines/ live too)."""
    if os.environ.get("GPURELIEF_CACHE_DIR"):
        return Path(os.environ["GPURELIEF_CACHE_DIR"])
    return home_dir() / "kernels"


def cached_cubin(family: str, arch: int | str, *, cache_dir: Path | None = None, nvrtc_version: str = "") -> Path:
    """-> path of the family's sm_<arch> cubin, compiled on first use and kept on disk.

    The file name hashes the expanded source, the options, the arch and the NVRTC version, so an
    edited kernel or a new compiler never loads a stale binary. An unwritable cache falls back to
    a temporary folder (compiled again in the next process).
    """
    key = hashlib.sha256(
        "\0".join([kernel_source(family), *COMPILE_OPTIONS, str(arch), nvrtc_version]).encode()
    ).hexdigest()[:20]
    directory = Path(cache_dir) if cache_dir is not None else kernel_cache_dir()
    path = directory / f"{family}-sm_{arch}-{key}.cubin"
    if path.exists():
        return path
    cubin = compile_cubin(family, arch)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".part")
    except OSError:  # read-only home, full disk: keep it for this process only
        directory = Path(tempfile.mkdtemp(prefix="gpurelief-kernels-"))
        path = directory / path.name
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(cubin)
    os.replace(tmp, path)  # atomic: a concurrent process never loads a half-written cubin
    return path
