"""Known depth models: where to get them, what they expect, what they output, under which licence.

Facts come from the project's field notes (shared/notes/depth-models.md), which cite the model cards and
repositories. Pins (commit, sha256, exact byte size) of Depth Anything V2 Small (fp32 and fp16) and of the
MiDaS v2.1 small release asset could not be computed here (no network); they are the values that several
independent public projects pin for these same URLs, and they agree with each other (see PIN_SOURCES). A
download that does not match them is refused and deleted, so a wrong pin fails loudly, never silently.
Where a fact is not known it is None here and says so, instead of a guess:
  - sha256 None: no checksum is known for the file (Depth Anything V2 Base / Large). `gpurelief models pull`
    then refuses to download unless --allow-unverified is given, and records the hash it saw (trust on first
    use) so later loads at least detect a changed or damaged file.
  - revision "main" with pinned=False: no commit is pinned; the URL follows the repository's head.
  - size_bytes: the exact size, checked before hashing (a wrong size is refused at once); size_mb: for messages.
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
    size_bytes: int | None = None
    size_mb: float | None = None
    precision: str = "fp32"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sha256_known(self) -> bool:
        return self.sha256 is not None


_HF_DA2 = "https://huggingface.co/onnx-community/depth-anything-v2-{size}/resolve/{rev}/onnx/{file}"
_DA2_EXPORT = "onnx-community export: input pixel_values [B,3,H,W] -> predicted_depth [B,H,W], dynamic axes"
# onnx-community/depth-anything-v2-small at this commit holds onnx/model.onnx and onnx/model_fp16.onnx below
DA2_SMALL_REVISION = "4472b7362082ad9968fee890ca0f1e5aca36b93d"

# Where the pins were read (public projects that download and check these exact files; cross-checked):
PIN_SOURCES = (
    "Depth Anything V2 Small fp32: sha256 afb6a5c2... and 99,060,839 bytes at revision 4472b736 are pinned "
    "alike by several independent public projects (Nix fetchurl, JS and shell download scripts)",
    "Depth Anything V2 Small fp16: sha256 2df6223f... and 49,642,442 bytes, pinned alike by eight or more "
    "public projects, one of them noting it equals Hugging Face's own x-linked-etag for the file",
    "MiDaS v2.1 small (isl-org/MiDaS release v2_1): sha256 2d8c6cb8... and 66,764,249 bytes, pinned alike by "
    "eight or more public projects; one project lists another hash (f319b72b...), treated as an outlier",
)


def _da2(size: str, file: str, precision: str, licence: str, commercial: bool, size_mb: float,
         revision: str = "main", sha256: str | None = None, size_bytes: int | None = None) -> ModelSpec:
    suffix = "" if precision == "fp32" else "-fp16"
    pinned = revision != "main"
    return ModelSpec(
        name=f"depth-anything-v2-{size}{suffix}",
        url=_HF_DA2.format(size=size, rev=revision, file=file),
        filename=f"depth-anything-v2-{size}{suffix}.onnx",
        licence=licence,
        commercial=commercial,
        output="inverse_depth",
        input_size=518,
        multiple_of=14,
        resize="lower_bound",
        revision=revision,
        pinned=pinned,
        sha256=sha256,
        size_bytes=size_bytes,
        size_mb=size_mb,
        precision=precision,
        notes=(_DA2_EXPORT,) + (() if pinned else ("revision not pinned and sha256 unknown: "
                                                    "`models pull` needs --allow-unverified",)),
    )


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        _da2("small", "model.onnx", "fp32", "Apache-2.0", True, 99.1, DA2_SMALL_REVISION,
             "afb6a5c28f3b6bf1618c6e43f02073ef9dfdc70e937502d51603e57b0a1df10c", 99_060_839),
        _da2("small", "model_fp16.onnx", "fp16", "Apache-2.0", True, 49.6, DA2_SMALL_REVISION,
             "2df6223f206b5164e21f664ace61dabeb9bb6a49b8b5a3e00510b4807d0f5b04", 49_642_442),
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
            sha256="2d8c6cb8f415229daf1eb041024208e2608c9f98e17c81cc7c6ecb449c56fd58",
            size_bytes=66_764_249,
            size_mb=66.8,
            notes=(
                "official isl-org/MiDaS release asset; input name read from the model at run time",
                "preprocessing assumed RGB + ImageNet mean/std (field notes); a third-party card claims BGR "
                "input: unverified",
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
