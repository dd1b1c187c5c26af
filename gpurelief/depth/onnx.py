"""Neural depth through ONNX Runtime: Image pixels -> DepthMap, larger = nearer.

Any ONNX model of shape [N,3,H,W] -> [N,H,W] or [N,1,H,W] works; input/output names are read from the
model. Registry models (registry.py) bring their own preprocessing and output meaning; a bare PATH.onnx
gets Depth-Anything-style preprocessing (short side >= 518, multiple of 14, ImageNet mean/std) unless told
otherwise. Providers: TensorRT (fp16, engine + timing cache) -> CUDA -> CPU, whichever this onnxruntime
has, or the list given with --providers.

GPU note: the TensorRT and CUDA paths (provider options, engine cache keys, CuPy I/O binding) are written
against the documented onnxruntime APIs but could not be run on the project's machines (no GPU, and
TensorRT cannot be installed there); only the CPU provider is exercised by the tests.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image as PILImage

from ..backend import numpy_ops as ops
from ..errors import DeviceError, ModelError, OptionError, require
from ..types import DepthMap
from . import cache
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, check_licence, get_model

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider",
}
OUTPUT_KINDS = ("auto", "inverse-depth", "depth")


@dataclass(frozen=True)
class Preprocess:
    """How a photo becomes the model's input tensor (see ModelSpec)."""

    input_size: int = 518
    multiple_of: int = 14
    resize: str = "lower_bound"   # or 'square'
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "Preprocess":
        return cls(spec.input_size, spec.multiple_of, spec.resize, spec.mean, spec.std)


def _ort():
    return require("onnxruntime", "onnx", purpose="--depth-model (neural depth through ONNX Runtime)")


def _multiple(x: float, m: int, min_val: int) -> int:
    """Round x to a multiple of m, never below min_val (the DPT 'lower_bound' rule)."""
    y = int(round(x / m) * m)
    if y < min_val:
        y = int(math.ceil(x / m) * m)
    return max(m, y)


def input_shape(image_size: tuple[int, int], pre: Preprocess, fixed_hw: tuple[int | None, int | None] = (None, None)):
    """(H, W) of the photo -> (h, w) of the model input."""
    fh, fw = fixed_hw
    if fh and fw:
        return fh, fw
    if pre.resize == "square":
        s = _multiple(pre.input_size, pre.multiple_of, pre.input_size)
        return s, s
    h, w = image_size
    scale = pre.input_size / min(h, w)
    return _multiple(h * scale, pre.multiple_of, pre.input_size), _multiple(w * scale, pre.multiple_of, pre.input_size)


def preprocess(pixels: np.ndarray, shape: tuple[int, int], pre: Preprocess, dtype=np.float32) -> np.ndarray:
    """(H, W, 3|4) uint8 RGB -> (3, h, w) `dtype`: bicubic resize, x / 255, (x - mean) / std."""
    h, w = shape
    img = PILImage.fromarray(np.ascontiguousarray(pixels[..., :3]))
    if img.size != (w, h):
        img = img.resize((w, h), PILImage.Resampling.BICUBIC)
    x = np.asarray(img, dtype=np.float32) * np.float32(1 / 255)
    x = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=dtype)


def _dim(d) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def _providers_for(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if not requested:
        return [p for p in PROVIDER_ORDER if p in available] or list(available)
    chosen = []
    for name in requested:
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full not in available:
            raise DeviceError(
                f"--providers: {full} is not available in this onnxruntime (available: {', '.join(available)}); "
                "for CUDA/TensorRT install onnxruntime-gpu (and TensorRT 10 for the TensorRT provider)"
            )
        chosen.append(full)
    return chosen


def select_providers(requested: Sequence[str] | None = None) -> list[str]:
    """--providers list (aliases: tensorrt, cuda, cpu) or the best available order -> provider names."""
    return _providers_for(requested, _ort().get_available_providers())


def gpu_name() -> str | None:
    """Name of GPU 0 (CuPy, else nvidia-smi), or None."""
    try:
        import cupy

        if cupy.cuda.is_available():
            name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - any CuPy failure means "no usable GPU through CuPy"
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def tensorrt_version() -> str | None:
    try:
        import tensorrt

        return str(tensorrt.__version__)
    except Exception:  # noqa: BLE001 - not installed or its libraries are missing
        return None


def engine_key(model_sha256: str, shape: tuple[int, int] | None) -> str:
    """Engine cache folder name: model hash, GPU, TensorRT version and shape profile (an engine is valid for
    exactly that combination)."""
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name() or "nogpu").strip("-").lower()
    trt = tensorrt_version() or "trt-unknown"
    prof = f"{shape[0]}x{shape[1]}" if shape else "dynamic"
    return f"{model_sha256[:16]}-{gpu}-trt{trt}-{prof}"


def tensorrt_options(
    model_sha256: str, input_name: str, *, precision: str, shape: tuple[int, int] | None, batch: int = 1
) -> dict:
    """Provider options for onnxruntime's TensorRT provider: engine + timing cache under engines/<key>/.

    fp16: from an fp32 model via the builder flag (TensorRT <= 10); TensorRT 11 removed that flag (networks are
    strongly typed), so there only an fp16 ONNX export (e.g. depth-anything-v2-small-fp16) runs in fp16.
    """
    folder = cache.engines_dir() / engine_key(model_sha256, shape)
    opts = {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(folder),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(folder),
    }
    trt = tensorrt_version()
    if precision == "fp32" and (trt is None or int(trt.split(".")[0]) < 11):
        opts["trt_fp16_enable"] = "True"
    if shape:
        s = f"{input_name}:{batch}x3x{shape[0]}x{shape[1]}"
        opts.update(trt_profile_min_shapes=s, trt_profile_opt_shapes=s, trt_profile_max_shapes=s)
    return opts


class DepthModel:
    """An ONNX depth model ready to run. `predict([pixels, ...]) -> [depth (H, W) float32, ...]`, larger = nearer."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        spec: ModelSpec | None = None,
        providers: Sequence[str] | None = None,
        output: str = "auto",
        preprocess: Preprocess | None = None,
        engine_shape: tuple[int, int] | None = None,
    ):
        ort = _ort()
        self.path = Path(path)
        self.spec = spec
        if output not in OUTPUT_KINDS:
            raise OptionError(f"--depth-output: expected one of {', '.join(OUTPUT_KINDS)}, got {output!r}")
        if output == "auto":
            output = "depth" if spec is not None and spec.output == "depth" else "inverse-depth"
        self.output = output
        self.pre = preprocess or (Preprocess.from_spec(spec) if spec else Preprocess())
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file; give an .onnx path or a registry name (`gpurelief models list`)")
        available = ort.get_available_providers()
        self.providers = _providers_for(providers, available)
        sess_opts = ort.SessionOptions()
        sess_opts.log_severity_level = 3
        provider_list: list = []
        for p in self.providers:
            if p == "TensorrtExecutionProvider":
                sha = cache.sha256_file(self.path)
                provider_list.append((p, tensorrt_options(sha, self._peek_input_name(), precision=self._precision(), shape=engine_shape)))
            else:
                provider_list.append(p)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=sess_opts, providers=provider_list)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own non-builtin classes for every load failure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{self.path}: not a loadable ONNX model ({first[:300]}); the file is corrupt or incomplete: "
                "download it again (`gpurelief models pull NAME`) or re-export it"
            ) from exc
        self._check_io()

    def _precision(self) -> str:
        return self.spec.precision if self.spec else "fp32"

    def _peek_input_name(self) -> str:
        try:
            import onnx

            return onnx.load(str(self.path), load_external_data=False).graph.input[0].name
        except Exception:  # noqa: BLE001 - the session load below reports a broken file properly
            return "pixel_values"

    def _check_io(self) -> None:
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        desc = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or _dim(inputs[0].shape[1]) not in (None, 3):
            raise ModelError(
                f"{self.path}: expected one image input of shape [N,3,H,W], got {desc or 'none'}; "
                "gpurelief runs image -> depth models (e.g. `gpurelief models list`)"
            )
        inp = inputs[0]
        if inp.type not in ("tensor(float)", "tensor(float16)"):
            raise ModelError(f"{self.path}: input {inp.name} is {inp.type}; expected float32 or float16 pixels")
        out = outputs[0]
        rank = len(out.shape)
        if rank not in (3, 4) or (rank == 4 and _dim(out.shape[1]) not in (None, 1)):
            raise ModelError(
                f"{self.path}: output {out.name} has shape {out.shape}; a depth model must output [N,H,W] or "
                "[N,1,H,W] (this looks like another kind of model)"
            )
        self.input_name, self.output_name = inp.name, out.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.fixed_hw = (_dim(inp.shape[2]), _dim(inp.shape[3]))
        self.fixed_batch = _dim(inp.shape[0])

    def input_shape(self, image_size: tuple[int, int]) -> tuple[int, int]:
        return input_shape(image_size, self.pre, self.fixed_hw)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) input tensor -> (N, oh, ow) float32 raw model output."""
        try:
            (raw,) = self.session.run([self.output_name], {self.input_name: batch})[:1]
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{self.path}: inference failed on input {list(batch.shape)} ({first[:300]}); "
                "the model may need a fixed input size or be of another kind"
            ) from exc
        raw = np.asarray(raw)
        if raw.ndim == 4 and raw.shape[1] == 1:
            raw = raw[:, 0]
        n, h, w = batch.shape[0], batch.shape[2], batch.shape[3]
        if raw.ndim != 3 or raw.shape[0] != n:
            raise ModelError(f"{self.path}: output {self.output_name} has shape {list(raw.shape)} for input "
                             f"{list(batch.shape)}; expected [{n},H,W]: not a depth map")
        oh, ow = raw.shape[1:]
        if oh < 2 or ow < 2 or abs(math.log((oh / ow) / (h / w))) > 0.25:
            raise ModelError(f"{self.path}: output {self.output_name} is {oh}x{ow} for a {h}x{w} input; a depth map "
                             "keeps the image's aspect ratio: this is not a depth model")
        raw = raw.astype(np.float32)
        if not np.isfinite(raw).all():
            raise ModelError(f"{self.path}: the model output contains NaN/inf; it is broken or was exported wrongly")
        return raw

    def to_nearness(self, raw: np.ndarray) -> np.ndarray:
        """Raw (h, w) output -> larger = nearer. Inverse depth passes through; depth d becomes 1 / d when
        every d > 0 (metric or positive relative depth), else -d (an affine-invariant map)."""
        if self.output == "inverse-depth":
            return raw
        if raw.min() > 0:
            return (np.float32(1) / raw).astype(np.float32)
        return -raw

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """[(H, W, 3|4) uint8, ...] -> [(H, W) float32, larger = nearer, at each photo's size]. Images that map
        to the same input shape run as one batch (unless the model has a fixed batch of 1)."""
        shapes = [self.input_shape(p.shape[:2]) for p in images]
        results: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(shapes):
            groups.setdefault(s, []).append(i)
        step = self.fixed_batch or len(images)
        for shape, idx in groups.items():
            for k in range(0, len(idx), step):
                chunk = idx[k:k + step]
                batch = np.stack([preprocess(images[i], shape, self.pre, self.input_dtype) for i in chunk])
                raw = self.run(batch)
                for j, i in enumerate(chunk):
                    results[i] = ops.resize(self.to_nearness(raw[j]), images[i].shape[:2])
        return results  # type: ignore[return-value]


    def predict_device(self, pixels: np.ndarray):
        """(H, W, 3|4) uint8 -> (oh, ow) float32 CuPy array on GPU 0, larger = nearer, at the model's output size.

        I/O binding: the input tensor is uploaded once as a CuPy array and the output is bound on the device, so
        the depth map stays on the GPU for the mesh stages (resampling to the grid is theirs). Needs the CUDA or
        TensorRT provider and CuPy. Written against onnxruntime's documented IOBinding API; not run on the
        project's machines (no GPU there).
        """
        cp = require("cupy", "gpu", purpose="keeping the depth map on the GPU")
        if self.providers[0] not in ("TensorrtExecutionProvider", "CUDAExecutionProvider"):
            raise DeviceError(
                f"{self.path}: GPU output needs the CUDA or TensorRT provider; this session runs on {self.providers[0]}"
            )
        shape = self.input_shape(pixels.shape[:2])
        x = cp.asarray(preprocess(pixels, shape, self.pre, self.input_dtype)[None])
        binding = self.session.io_binding()
        binding.bind_input(
            name=self.input_name, device_type="cuda", device_id=0, element_type=self.input_dtype,
            shape=tuple(x.shape), buffer_ptr=x.data.ptr,
        )
        binding.bind_output(self.output_name, "cuda", 0)
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{self.path}: GPU inference failed on input {list(x.shape)} ({str(exc)[:300]})") from exc
        value = binding.get_outputs()[0]
        dtype = cp.float16 if value.data_type() == "tensor(float16)" else cp.float32
        out_shape = tuple(value.shape())
        nbytes = int(np.prod(out_shape)) * cp.dtype(dtype).itemsize
        memory = cp.cuda.UnownedMemory(value.data_ptr(), nbytes, value)
        raw = cp.ndarray(out_shape, dtype=dtype, memptr=cp.cuda.MemoryPointer(memory, 0)).astype(cp.float32)  # copy
        raw = raw.reshape(out_shape[-2:])
        if not bool(cp.isfinite(raw).all()):
            raise ModelError(f"{self.path}: the model output contains NaN/inf; it is broken or was exported wrongly")
        return self.to_nearness(raw)


def resolve(model: str | os.PathLike, *, accept_license: Sequence[str] = ()) -> tuple[Path, ModelSpec | None]:
    """--depth-model NAME | PATH.onnx -> (file, spec or None). Registry names are checked for licence and cache."""
    text = str(model)
    if text.lower().endswith(".onnx") or os.sep in text or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise ModelError(f"--depth-model: {path}: no such file; give an existing .onnx path or a registry name")
        return path, None
    spec = get_model(text)
    check_licence(spec, tuple(accept_license))
    return cache.locate(spec), spec


_SESSIONS: dict[tuple, DepthModel] = {}


def load_model(
    model: str | os.PathLike,
    *,
    providers: Sequence[str] | None = None,
    accept_license: Sequence[str] = (),
    output: str = "auto",
    engine_shape: tuple[int, int] | None = None,
) -> DepthModel:
    """Resolve and open a model, reusing an open session for the same file, providers, output kind and
    TensorRT shape profile."""
    path, spec = resolve(model, accept_license=accept_license)
    key = (str(path.resolve()), path.stat().st_mtime_ns, tuple(providers or ()), output, engine_shape)
    if key not in _SESSIONS:
        _SESSIONS[key] = DepthModel(path, spec=spec, providers=providers, output=output, engine_shape=engine_shape)
    return _SESSIONS[key]


def model_depth(
    pixels: np.ndarray,
    model: str | os.PathLike,
    *,
    providers: Sequence[str] | None = None,
    accept_license: Sequence[str] = (),
    output: str = "auto",
    tiles: int = 0,
) -> DepthMap:
    """Photo (H, W, 3|4) uint8 -> DepthMap (H, W) float32, larger = nearer, from an ONNX model.

    tiles > 0: the model also runs on a tiles x tiles grid of overlapping crops, blended into the global
    pass (see tiled_depth), for detail beyond the model's input size.
    """
    engine_shape = None
    if select_providers(providers)[0] == "TensorrtExecutionProvider":
        # one TensorRT engine per input shape: the same key `gpurelief engines build --shape HxW` builds
        path, spec = resolve(model, accept_license=accept_license)
        pre = Preprocess.from_spec(spec) if spec else Preprocess()
        engine_shape = input_shape(pixels.shape[:2], pre)
    m = load_model(model, providers=providers, accept_license=accept_license, output=output, engine_shape=engine_shape)
    if tiles and tiles > 1:
        from .tiles import tiled_depth

        values = tiled_depth(m, pixels, tiles)
    else:
        values = m.predict([pixels])[0]
    return DepthMap(values=values, source=f"onnx:{m.path.name}")
