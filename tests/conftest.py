"""Shared fixtures: images made by code, and the Khronos glTF validator as the judge of every file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpurelief.synthetic import photo_like  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = ROOT / "tools" / "validate_gltf.mjs"


@pytest.fixture
def photo_jpeg(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo_like(48, 64)).save(path, quality=90)
    return path


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the glTF validator needs it (see .ci/run)")
    if not (ROOT / "node_modules" / "gltf-validator").is_dir():
        pytest.fail("the Khronos glTF validator is not installed; run `npm ci` in the repository root")
    return node


def validate(path: Path, *, allow_warnings: bool = False) -> dict:
    """Run the Khronos glTF validator on a .glb/.gltf; -> its report. Fails the test on any error or warning.

    The lent GPU machines have no node: there bench/gpu_session.sh sets GPURELIEF_VALIDATE_LATER to a folder,
    each file is copied into it (-> an empty report), and the session validates them on the dev machine."""
    later = os.environ.get("GPURELIEF_VALIDATE_LATER")
    if later and shutil.which("node") is None:
        dest = Path(later)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / f"{len(list(dest.iterdir())):03d}-{path.name}")
        return {}
    args = [_node(), str(VALIDATOR), str(path)] + (["--allow-warnings"] if allow_warnings else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"validator crashed on {path}: {proc.stderr[-2000:]}")
    issues = report["issues"]
    bad = [m for m in issues["messages"] if m["severity"] == 0 or (m["severity"] == 1 and not allow_warnings)]
    assert issues["numErrors"] == 0 and (allow_warnings or issues["numWarnings"] == 0), f"{path}: {bad}"
    return report


@pytest.fixture
def gltf_validator():
    return validate
