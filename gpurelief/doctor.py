"""`gpurelief doctor`: what this machine offers gpurelief (ONNX Runtime providers, GPU, TensorRT, CuPy,
cache paths, downloaded models). Every probe is lazy and never raises: a missing piece is reported."""
from __future__ import annotations

import os
import platform
import sys

import numpy as np

from . import __version__


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "installed"))
    except Exception:  # noqa: BLE001 - ImportError, or a broken native library
        return None


def _cupy() -> dict:
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001
        return {"version": None, "error": f"{type(exc).__name__}: {exc}"[:200], "device": None}
    info: dict = {"version": cupy.__version__, "device": None}
    try:
        info["cuda_available"] = bool(cupy.cuda.is_available())
        if info["cuda_available"]:
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props["name"]
            info["device"] = name.decode() if isinstance(name, bytes) else str(name)
            info["compute_capability"] = f"{props['major']}.{props['minor']}"
    except Exception as exc:  # noqa: BLE001
        info["error"] = f"{type(exc).__name__}: {exc}"[:200]
    return info


def report() -> dict:
    """-> a JSON-able dict describing the environment."""
    from .depth import cache
    from .depth.onnx import gpu_name, tensorrt_version
    from .depth.registry import MODELS

    ort_version = _version("onnxruntime")
    providers: list[str] = []
    if ort_version:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    models = {}
    for name, spec in MODELS.items():
        path = cache.model_path(spec)
        if path.exists():
            models[name] = {"path": str(path), "bytes": path.stat().st_size,
                            "sha256": "pinned" if spec.sha256 else ("recorded" if cache.recorded_sha256(path) else "none")}
    engines = cache.engines_dir()
    return {
        "gpurelief": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": ort_version,
        "providers": providers,
        "gpu": gpu_name(),
        "tensorrt": tensorrt_version(),
        "cupy": _cupy(),
        "cache": {
            "home": str(cache.home_dir()),
            "home_from": "GPURELIEF_HOME" if os.environ.get("GPURELIEF_HOME") else "user cache dir",
            "models": str(cache.models_dir()),
            "engines": str(engines),
            "engine_count": sum(1 for _ in engines.iterdir()) if engines.is_dir() else 0,
        },
        "models": models,
    }


def format_report(r: dict) -> str:
    """report() -> the human-readable text `gpurelief doctor` prints, one fact per line, with fixes."""
    lines = [
        f"gpurelief     {r['gpurelief']} (Python {r['python']}, numpy {r['numpy']}, {r['platform']})",
    ]
    if r["onnxruntime"]:
        lines.append(f"onnxruntime   {r['onnxruntime']}; providers: {', '.join(r['providers'])}")
        missing = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p not in r["providers"]]
        if missing:
            lines.append(f"              no {', '.join(missing)} (GPU inference needs onnxruntime-gpu)")
    else:
        lines.append("onnxruntime   not installed: neural depth unavailable; pip install 'gpurelief[onnx]'")
    lines.append(f"onnx          {r['onnx'] or 'not installed (only needed to build/inspect models)'}")
    lines.append(f"GPU           {r['gpu'] or 'none found (CuPy and nvidia-smi see no device)'}")
    lines.append(f"TensorRT      {r['tensorrt'] or 'not installed (engines need TensorRT 10 + onnxruntime-gpu)'}")
    c = r["cupy"]
    if c.get("version"):
        state = f"device {c['device']} (compute {c.get('compute_capability')})" if c.get("device") else "no usable CUDA device"
        lines.append(f"CuPy          {c['version']}; {state}")
    else:
        lines.append("CuPy          not installed: GPU mesh stages unavailable; pip install 'gpurelief[gpu]'")
    cc = r["cache"]
    lines.append(f"cache home    {cc['home']} (from {cc['home_from']})")
    lines.append(f"models        {cc['models']}")
    for name, m in r["models"].items():
        lines.append(f"  {name:<32} {m['bytes'] / 1e6:8.1f} MB  sha256 {m['sha256']}")
    if not r["models"]:
        lines.append("  (none downloaded; `gpurelief models list`, `gpurelief models pull NAME`)")
    lines.append(f"engines       {cc['engines']} ({cc['engine_count']} cached)")
    return "\n".join(lines)
