"""--device auto|cpu|cuda[:N] -> the array backend (numpy_ops or cupy_ops) and the device it runs on.

auto takes the GPU when CuPy sees one and otherwise the CPU, saying why (Backend.note). An explicit
cuda[:N] never falls back: no CuPy -> DependencyError (extra `gpu`), no device -> DeviceError.
GPU failures while running (out of memory, kernel compile errors, CUDA errors) are turned into
DeviceError by `Backend.activate()`.
"""
from __future__ import annotations

import contextlib
import ctypes
import re
from dataclasses import dataclass
from types import ModuleType

from ..errors import DependencyError, DeviceError, OptionError, require
from . import numpy_ops

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def parse_device(text: str) -> tuple[str, int | None]:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> (kind, index or None); anything else raises OptionError."""
    t = str(text).strip().lower()
    if t in ("auto", "cpu", "cuda"):
        return t, (0 if t == "cuda" else None)
    m = re.fullmatch(r"cuda:(\d+)", t)
    if m:
        return "cuda", int(m.group(1))
    raise OptionError(f"--device: expected {DEVICE_CHOICES} (e.g. cuda:0), got {text!r}")


@dataclass
class Backend:
    """The selected array backend. `ops` has numpy_ops' functions; `name` is 'cpu' or 'cuda:N'."""

    name: str
    ops: ModuleType
    description: str
    device_index: int | None = None
    note: str | None = None  # why `auto` settled on the CPU

    @property
    def is_gpu(self) -> bool:
        return self.device_index is not None

    @contextlib.contextmanager
    def activate(self):
        """Run the enclosed stages on this device; CuPy failures come out as one-line DeviceErrors."""
        if not self.is_gpu:
            yield self
            return
        cupy = self.ops.cupy
        try:
            with cupy.cuda.Device(self.device_index):
                yield self
        except DeviceError:
            raise
        except cupy.cuda.memory.OutOfMemoryError as exc:
            raise DeviceError(
                f"{self.name}: out of GPU memory ({_first_line(exc)}); lower --max-size, free the GPU, "
                "or run with --device cpu"
            ) from exc
        except cupy.cuda.compiler.CompileException as exc:
            raise DeviceError(f"{self.name}: a CUDA kernel does not compile ({_first_line(exc)}); run with --device cpu") from exc
        except (cupy.cuda.runtime.CUDARuntimeError, cupy.cuda.driver.CUDADriverError) as exc:
            raise DeviceError(f"{self.name}: CUDA error ({_first_line(exc)}); run with --device cpu") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cpu_backend(note: str | None = None) -> Backend:
    import numpy

    return Backend("cpu", numpy_ops, f"cpu (numpy {numpy.__version__})", None, note)


def driver_present() -> bool:
    """Cheap probe for the NVIDIA driver library, so `auto` on a GPU-less machine skips importing CuPy."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _gpu_backend(index: int) -> Backend:
    """cuda:index -> Backend on it; DependencyError without CuPy, DeviceError without that device."""
    cupy = require("cupy", "gpu", purpose=f"--device cuda:{index}")
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, insufficient driver, ...
        raise DeviceError(
            f"--device cuda:{index}: no CUDA device is usable ({_first_line(exc)}); "
            "check the NVIDIA driver (nvidia-smi) or use --device cpu"
        ) from exc
    if count == 0:
        raise DeviceError(f"--device cuda:{index}: CuPy sees no CUDA device; check nvidia-smi or use --device cpu")
    if index >= count:
        raise DeviceError(
            f"--device cuda:{index}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1}); "
            "pick one of those or check CUDA_VISIBLE_DEVICES"
        )
    from . import cupy_ops

    props = cupy.cuda.runtime.getDeviceProperties(index)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    desc = (
        f"cuda:{index} ({name}, compute {props['major']}.{props['minor']}, "
        f"{props['totalGlobalMem'] / 2**30:.0f} GiB, CuPy {cupy.__version__})"
    )
    return Backend(f"cuda:{index}", cupy_ops, desc, index, None)


def select_backend(device: str = "auto") -> Backend:
    """--device value -> Backend. auto: the first GPU when CuPy sees one, else the CPU with a note."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return cpu_backend()
    if kind == "cuda":
        return _gpu_backend(index)
    if not driver_present():
        return cpu_backend("auto: no NVIDIA driver (libcuda.so.1) on this machine")
    try:
        return _gpu_backend(0)
    except DependencyError:
        return cpu_backend("auto: CuPy is not installed (pip install 'gpurelief[gpu]' for the GPU path)")
    except DeviceError as exc:
        return cpu_backend(f"auto: {str(exc).split(': ', 1)[-1]}")
