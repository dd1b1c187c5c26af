"""--engine ray on a local Ray instance with one logical GPU: the real num_gpus=1 actor path, no GPU needed.

Few and small on purpose: starting Ray costs 4-8 s on a 2-core machine (shared/notes/batch-engines.md).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, photo_like
from gpurelief.batch import STATE_DIR, run_batch
from gpurelief.errors import ExitStatus

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def ray_cluster():
    # the actors must import this checkout of gpurelief, not another installed copy
    env = {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray_in")
    (root / "sub").mkdir()
    for i in range(2):
        Image.fromarray(photo_like(48, 64, seed=i)).save(root / f"p_{i}.jpg", quality=90)
        Image.fromarray(photo_like(40, 30, seed=5 + i)).save(root / "sub" / f"q_{i}.png")
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_ray_engine_outputs_are_byte_identical_to_local_engine(ray_cluster, photos, tmp_path, gltf_validator):
    report = tmp_path / "ray.json"
    res = run_batch([photos.as_uri()], (tmp_path / "ray").as_uri(), formats="glb,gltf", engine="ray",
                    report=report, progress="none")
    assert res.exit_status == ExitStatus.PARTIAL  # the broken file is an error row, not a failed job
    assert (res.summary["ok"], res.summary["failed"], res.summary["engine"]) == (4, 1, "ray")
    rows = json.loads(report.read_text())["files"]
    bad = next(r for r in rows if r["rel"] == "sub/broken.png")
    assert bad["status"] == "error" and "broken.png" in bad["error"]
    good = [r for r in rows if r["status"] == "ok"]
    # each actor ran on the logical GPU Ray gave it, and chose CUDA only where the runtime has a device
    assert {tuple(r["worker"]["gpu_ids"]) for r in good} == {("0",)}
    from gpurelief.batch_ray import _cuda_really_available

    assert {r["worker"]["device"] for r in good} == {"cuda" if _cuda_really_available() else "cpu"}

    local = run_batch([str(photos)], tmp_path / "local", formats="glb,gltf", workers=1, progress="none")
    assert local.summary["ok"] == 4
    files = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*")
                   if p.is_file() and STATE_DIR not in p.parts)
    assert len(files) == 16
    for rel in files:
        assert (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes(), rel
    gltf_validator(tmp_path / "ray" / "p_0.glb")


def test_ray_run_writes_the_manifest_that_resume_uses(ray_cluster, photos, tmp_path):
    out = tmp_path / "out"
    first = run_batch([str(photos)], out, engine="ray", progress="none")
    assert first.summary["ok"] == 4
    rows = (out / STATE_DIR / "manifest.jsonl").read_text().splitlines()
    assert len(rows) == 4  # written by the driver from the small result rows
    again = run_batch([str(photos)], out, engine="ray", resume=True, progress="none")
    assert again.summary["skipped"] == 4 and again.summary["ok"] == 0 and again.summary["failed"] == 1
    local = run_batch([str(photos)], out, engine="local", workers=1, resume=True, progress="none")
    assert local.summary["skipped"] == 4
