"""Known depth models: where to get them, what they expect, what they output, under which licence.

Facts come from the project's field notes (shared/notes/depth-models.md), which cite the model cards and
repositories. Where a fact was not recorded there it is None here and says so, instead of a guess:
  - sha256 None: no checksum is known for the file. `gpurelief models pull` then refuses to download
    unless --allow-unverified is given, and records the hash it saw (trust on first use) so later loads at
    least detect a changed or damaged file. Put the real hash here once it is checked.
  - revision "main" with pinned=False: no commit was recorded; the URL follows the repository's head,
    which has been re-uploaded before. Pin it once a commit is checked.
  - size_mb: as listed on the model page (approximate), used for messages only, never for verification.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable ONNX depth model and its contract.

    Input: RGB float, (x / 255 - mean) / std, NCHW. Resize rule: 'lower_bound' keeps the aspect ratio and makes
    the short side >= input_size, then rounds each side to a multiple of `multiple_of`; 'square' resizes to
    input_size x input_size. output: 'inverse_depth' (larger = nearer, as relief wants) or 'depth' (larger =
    farther, converted on load).
    """

    name: str
    url: str
    filename: str
    licence: str
    commercial: bool
    output: str
    input_size: int
    multiple_of: int
    resize: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    revision: str = "main"
    pinned: bool = False
    sha256: str | None = None
    size_mb: float | None = None
    precision: str = "fp32"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sha256_known(self) -> bool:
        return self.sha256 is not None


_HF_DA2 = "https://huggingface.co/onnx-community/depth-anything-v2-{size}/resolve/{rev}/onnx/{file}"
_DA2_NOTES = (
    "onnx-community export: input pixel_values [B,3,H,W] -> predicted_depth [B,H,W], dynamic axes",
    "revision not pinned: no commit hash recorded in the field notes; sha256 unknown",
)


def _da2(size: str, file: str, precision: str, licence: str, commercial: bool, size_mb: float) -> ModelSpec:
    suffix = "" if precision == "fp32" else "-fp16"
    return ModelSpec(
        name=f"depth-anything-v2-{size}{suffix}",
        url=_HF_DA2.format(size=size, rev="main", file=file),
        filename=f"depth-anything-v2-{size}{suffix}.onnx",
        licence=licence,
        commercial=commercial,
        output="inverse_depth",
        input_size=518,
        multiple_of=14,
        resize="lower_bound",
        size_mb=size_mb,
        precision=precision,
        notes=_DA2_NOTES,
    )


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        _da2("small", "model.onnx", "fp32", "Apache-2.0", True, 99.1),
        _da2("small", "model_fp16.onnx", "fp16", "Apache-2.0", True, 49.6),
        ModelSpec(
            name="midas-v2.1-small",
            url="https://github.com/isl-org/MiDaS/releases/download/v2_1/model-small.onnx",
            filename="midas-v2.1-small.onnx",
            licence="MIT",
            commercial=True,
            output="inverse_depth",
            input_size=256,
            multiple_of=32,
            resize="square",
            revision="v2_1",  # a release tag: the asset does not move
            pinned=True,
            size_mb=None,
            notes=(
                "official isl-org/MiDaS release asset; input name read from the model at run time",
                "size and sha256 unknown (a third-party card claims 66-80 MB and BGR input: unverified)",
            ),
        ),
        _da2("base", "model.onnx", "fp32", "CC-BY-NC-4.0", False, 389.0),
        _da2("large", "model.onnx", "fp32", "CC-BY-NC-4.0", False, 1340.0),
    )
}
DEFAULT_MODEL = "depth-anything-v2-small"


def get_model(name: str) -> ModelSpec:
    """Registry name -> ModelSpec, or ModelError listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(
            f"--depth-model: no model named {name!r}; known: {', '.join(MODELS)} "
            "(or give a path to an .onnx file; `gpurelief models list` shows details)"
        ) from None


def check_licence(spec: ModelSpec, accepted: tuple[str, ...] | list[str] = ()) -> None:
    """Non-commercial weights need an explicit --accept-license NAME."""
    if not spec.commercial and spec.name not in accepted:
        raise ModelError(
            f"{spec.name}: its weights are {spec.licence} (not for commercial use); "
            f"to use them anyway pass --accept-license {spec.name}"
        )
