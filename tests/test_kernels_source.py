"""The kernel sources: one family per file, each kernel names its numpy twin, and the package ships them."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpurelief.backend import kernels as K
from gpurelief.backend import numpy_ops

ROOT = Path(__file__).resolve().parents[1]


def test_kernel_dir_holds_exactly_the_known_families():
    assert K.KERNEL_DIR == ROOT / "gpurelief" / "kernels"
    assert sorted(p.name for p in K.KERNEL_DIR.glob("*.cu")) == sorted([*(f"{f}.cu" for f in K.FAMILIES), *K.OTHER_SOURCES])


@pytest.mark.parametrize("family", list(K.FAMILIES))
def test_kernel_family_defines_its_kernels_extern_c_and_names_numpy_twins(family):
    raw = K.kernel_path(family).read_text()
    assert set(K.kernel_signatures(family)) == set(K.FAMILIES[family])
    refs = re.findall(r"^// ref: gpurelief\.backend\.numpy_ops\.(\w+)$", raw, re.M)
    assert refs, f"{family}.cu has no '// ref: gpurelief.backend.numpy_ops.<name>' line"
    for name in refs:
        assert callable(getattr(numpy_ops, name, None)), f"{family}.cu refers to missing numpy_ops.{name}"
    assert "#include <" not in K.kernel_source(family)  # NVRTC has no standard headers


def test_scalar_args_follow_the_c_signature():
    args = K.scalar_args("grid", "grid_uvs_f32", ("PTR", 3.0, 5))
    assert args[0] == "PTR" and type(args[1]) is np.int32 and type(args[2]) is np.int32
    with pytest.raises(TypeError, match="expected 3 arguments"):
        K.scalar_args("grid", "grid_uvs_f32", ("PTR", 3))


def test_launch_shapes_cover_every_element():
    for count in (1, 255, 256, 257, 10**6 + 3):
        (gx, _, _), (bx, _, _) = K.launch_1d(count)
        assert gx * bx >= count > (gx - 1) * bx
    (gx, gy, _), (bx, by, _) = K.launch_2d(3840, 2161)
    assert gx * bx >= 3840 and gy * by >= 2161 and (gy - 1) * by < 2161


def test_built_package_ships_the_kernel_sources_and_finds_them(tmp_path):
    """setuptools' build_py (what a wheel is made from) copies gpurelief/kernels/*.cu|*.h, and the
    installed copy's loader reads its own sources."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gpurelief", src / "gpurelief", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "build"
    proc = subprocess.run(
        [sys.executable, "-c", "import setuptools, sys; sys.argv[1:] = ['-q', 'build_py', '-d', sys.argv[1]]; setuptools.setup()", str(out)],
        cwd=src, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    shipped = sorted(p.name for p in (out / "gpurelief" / "kernels").iterdir())
    assert shipped == sorted([*(f"{f}.cu" for f in K.FAMILIES), *K.OTHER_SOURCES, "common.h"])
    probe = (
        "from gpurelief.backend import kernels as K; "
        "print(K.KERNEL_DIR); print(sum(len(K.kernel_signatures(f)) for f in K.FAMILIES))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(out), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    kernel_dir, count = proc.stdout.split()
    assert Path(kernel_dir) == out / "gpurelief" / "kernels"
    assert int(count) == sum(len(v) for v in K.FAMILIES.values())
