"""Ahead-of-time TensorRT engines through onnxruntime's TensorRT provider (`gpurelief engines build`).

Building = opening a session with the TensorRT provider, its engine and timing caches enabled and a fixed
shape profile, then running once: onnxruntime compiles the engine and stores it under
engines/<model sha256>-<gpu>-trt<version>-<HxW>/, which later runs with the same shape load instead of
rebuilding. Unverified on the project's machines: they have no GPU and TensorRT cannot be installed there.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DeviceError, OptionError
from . import cache
from .onnx import engine_key, load_model, resolve, select_providers


def parse_shape(text: str) -> tuple[int, int]:
    """'518x518' (H x W) -> (518, 518)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--shape: expected HxW such as 518x518, got {text!r}") from None
    if h < 1 or w < 1:
        raise OptionError(f"--shape: expected positive sizes, got {text!r}")
    return h, w


def build_engine(model: str, shape: tuple[int, int], *, accept_license: Sequence[str] = ()) -> Path:
    """Registry name or PATH.onnx, (H, W) -> the engine cache folder, after a build-and-run of that shape
    (batch 1, the profile `convert` uses)."""
    providers = select_providers()
    if "TensorrtExecutionProvider" not in providers:
        raise DeviceError(
            "engines build: this onnxruntime has no TensorrtExecutionProvider (providers: "
            f"{', '.join(providers)}); install onnxruntime-gpu and TensorRT 10 on a machine with an NVIDIA GPU"
        )
    path, _ = resolve(model, accept_license=accept_license)
    m = load_model(model, providers=["TensorrtExecutionProvider", "CUDAExecutionProvider"],
                   accept_license=accept_license, engine_shape=shape)
    m.run(np.zeros((1, 3, shape[0], shape[1]), dtype=m.input_dtype))
    return cache.engines_dir() / engine_key(cache.sha256_file(path), shape)
