"""Tiny ONNX 'depth models' built with onnx.helper, so the neural path is tested without real weights.

The main one outputs the per-pixel mean of the normalised input channels (a brightness map): larger for
brighter pixels. kind='depth' outputs 10 - that (larger = farther for brighter pixels), so after gpurelief
converts depth to nearness both must agree that bright is near.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

onnx = __import__("pytest").importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

OPSET = 17


def _save(nodes, inputs, outputs, path: Path, inits=()) -> Path:
    graph = helper.make_graph(nodes, "tiny_depth", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def brightness_model(
    path: Path,
    *,
    kind: str = "inverse",
    out_rank: int = 3,
    downsample: bool = False,
    fixed_hw: tuple[int, int] | None = None,
    batch: int | str = "N",
    fp16: bool = False,
    input_name: str = "image",
    output_name: str = "depth",
) -> Path:
    h, w = fixed_hw if fixed_hw else ("H", "W")
    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    x = helper.make_tensor_value_info(input_name, elem, [batch, 3, h, w])
    nodes, inits = [], []
    src = input_name
    if fp16:
        nodes.append(helper.make_node("Cast", [src], ["xf"], to=TensorProto.FLOAT))
        src = "xf"
    nodes.append(helper.make_node("ReduceMean", [src], ["m4"], axes=[1], keepdims=1))  # [N,1,H,W]
    cur = "m4"
    if downsample:
        nodes.append(helper.make_node("AveragePool", [cur], ["p4"], kernel_shape=[2, 2], strides=[2, 2]))
        cur = "p4"
    if kind == "depth":
        inits.append(helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]))
        nodes.append(helper.make_node("Sub", ["ten", cur], ["d4"]))
        cur = "d4"
    oh = ow = None
    if out_rank == 3:
        inits.append(helper.make_tensor("ax1", TensorProto.INT64, [1], [1]))
        nodes.append(helper.make_node("Squeeze", [cur, "ax1"], [output_name]))
        out = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, oh, ow])
    else:
        nodes.append(helper.make_node("Identity", [cur], [output_name]))
        out = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, 1, oh, ow])
    return _save(nodes, [x], [out], path, inits)


def context_model(path: Path) -> Path:
    """[N,3,H,W] -> [N,H,W]: brightness standardised per image, (m - mean(m)) / std(m).

    Like a real relative-depth model, its scale and shift depend on what else is in the picture, so two
    overlapping tiles disagree by an affine map: blending them raw leaves seams.
    """
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["N", "H", "W"])
    inits = [helper.make_tensor("eps", TensorProto.FLOAT, [], [1e-6]), helper.make_tensor("ax1", TensorProto.INT64, [1], [1])]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1], keepdims=1),
        helper.make_node("ReduceMean", ["m"], ["mu"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["m", "mu"], ["c"]),
        helper.make_node("Mul", ["c", "c"], ["c2"]),
        helper.make_node("ReduceMean", ["c2"], ["var"], axes=[2, 3], keepdims=1),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["c", "sd"], ["z"]),
        helper.make_node("Squeeze", ["z", "ax1"], ["depth"]),
    ]
    return _save(nodes, [x], [y], path, inits)


def rgb_passthrough_model(path: Path) -> Path:
    """[N,3,H,W] -> [N,3,H,W]: an image-to-image model, not depth."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["N", 3, "H", "W"])
    return _save([helper.make_node("Identity", ["image"], ["rgb"])], [x], [y], path)


def classifier_model(path: Path) -> Path:
    """[N,3,H,W] -> [N,3] (global average pool): a classifier-shaped output."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["g"]), helper.make_node("Flatten", ["g"], ["logits"])]
    return _save(nodes, [x], [y], path)


def scalar_map_model(path: Path) -> Path:
    """[N,3,H,W] -> [N,1,1,1]: passes the static rank check, but is no depth map."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["N", 1, 1, 1])
    return _save([helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1, 2, 3], keepdims=1)], [x], [y], path)


def nan_model(path: Path) -> Path:
    """[N,3,H,W] -> [N,H,W] of NaN (sqrt of a negative number)."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["N", "H", "W"])
    inits = [helper.make_tensor("neg", TensorProto.FLOAT, [], [-1.0]), helper.make_tensor("ax1", TensorProto.INT64, [1], [1])]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Abs", ["m"], ["a"]),
        helper.make_node("Sub", ["neg", "a"], ["c"]),
        helper.make_node("Sqrt", ["c"], ["s"]),
        helper.make_node("Squeeze", ["s", "ax1"], ["depth"]),
    ]
    return _save(nodes, [x], [y], path, inits)


def greyscale_input_model(path: Path) -> Path:
    """[N,H,W] -> [N,H,W]: wrong input rank."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W"])
    y = helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["N", "H", "W"])
    return _save([helper.make_node("Identity", ["image"], ["depth"])], [x], [y], path)


def half_bright(h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: left half bright, right half dark, with a little texture."""
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 40, np.uint8)
    img[:, : w // 2] = 210
    return np.clip(img.astype(np.int16) + rng.integers(-5, 6, img.shape), 0, 255).astype(np.uint8)
