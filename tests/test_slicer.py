"""A real slicer (CuraEngine, Debian's cura-engine) turns small reliefs into G-code with the right layer count.

Printer definitions come from Debian's `cura` package unpacked without installing it (see .ci/run):
$GPURELIEF_CURA_DEFS (default /opt/cura-defs) holds its definitions/ and extruders/ folders.
Locally the test is skipped when CuraEngine is absent; CI sets GPURELIEF_REQUIRE_SLICER=1, so there a
missing slicer fails instead.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from gpurelief import convert

from conftest import photo_like

CURA_DEFS = Path(os.environ.get("GPURELIEF_CURA_DEFS", "/opt/cura-defs"))
LAYER_MM, FIRST_LAYER_MM = 0.2, 0.3


def cura_engine() -> str:
    exe = shutil.which("CuraEngine")
    if exe is None:
        if os.environ.get("GPURELIEF_REQUIRE_SLICER"):
            pytest.fail("CuraEngine is not installed; .ci/run installs it (apt-get install cura-engine)")
        pytest.skip("CuraEngine is not installed (apt-get install cura-engine; definitions: see .ci/run)")
    if not (CURA_DEFS / "definitions" / "fdmprinter.def.json").is_file():
        pytest.fail(
            f"CuraEngine is installed but its printer definitions are not in {CURA_DEFS}; unpack them as .ci/run "
            "does (apt-get download cura && dpkg-deb -x) or set GPURELIEF_CURA_DEFS"
        )
    return exe


def slice_stl(stl: Path, gcode: Path) -> str:
    env = dict(os.environ, CURA_ENGINE_SEARCH_PATH=f"{CURA_DEFS / 'definitions'}:{CURA_DEFS / 'extruders'}")
    cmd = [
        cura_engine(), "slice", "-j", str(CURA_DEFS / "definitions" / "fdmprinter.def.json"),
        "-s", f"layer_height={LAYER_MM}", "-s", f"layer_height_0={FIRST_LAYER_MM}", "-s", "center_object=true",
        "-l", str(stl), "-o", str(gcode),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return gcode.read_text()


def extrusion_extent(gcode: str, layer: int) -> tuple[float, float]:
    """X and Y span of the extruding moves of one layer (walls of the model, no travel)."""
    body = gcode.split(f";LAYER:{layer}\n", 1)[1].split(";LAYER:", 1)[0]
    xs, ys = [], []
    x = y = None
    for line in body.splitlines():
        if not line.startswith(("G0", "G1")):
            continue
        mx, my = re.search(r"X([-\d.]+)", line), re.search(r"Y([-\d.]+)", line)
        x = float(mx.group(1)) if mx else x
        y = float(my.group(1)) if my else y
        if line.startswith("G1") and " E" in line and x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return max(xs) - min(xs), max(ys) - min(ys)


@pytest.mark.parametrize("extra", [
    dict(relief_mm=1.95, base_mm=1.0),                                  # 2.95 mm: 13.25 + 0.5 -> 14 layers
    dict(lithophane=True, relief_mm=2.2, base_mm=0.85, border_mm=3.0),  # 3.05 mm: 13.75 + 0.5 -> 15 layers
], ids=["plaque", "framed-lithophane"])
def test_curaengine_slices_the_stl_into_the_expected_layers(tmp_path, extra):
    cura_engine()
    src = tmp_path / "photo.png"
    Image.fromarray(photo_like(36, 48)).save(src)
    stl = tmp_path / "relief.stl"
    result = convert(src, stl, width_mm=30.0, **extra)
    width, height, thickness = result.size_mm
    gcode = slice_stl(stl, tmp_path / "relief.gcode")
    layers = re.findall(r"^;LAYER:(\d+)$", gcode, flags=re.M)
    # Cura cuts each layer at its mid-height: layer i >= 1 exists while 0.3 + (i - 0.5) * 0.2 < thickness.
    # The two cases sit a quarter layer either side of a boundary, so floor / ceil / off-by-one all fail.
    expected = 1 + math.floor((thickness - FIRST_LAYER_MM) / LAYER_MM + 0.5)
    assert f";LAYER_COUNT:{expected}\n" in gcode
    assert [int(n) for n in layers] == list(range(expected))
    extruding = [ln for ln in gcode.splitlines() if ln.startswith("G1") and " E" in ln]
    assert len(extruding) > 100
    # the second layer's outer wall traces the model's footprint (minus half a 0.4 mm line on each side)
    span_x, span_y = extrusion_extent(gcode, 1)
    assert span_x == pytest.approx(width - 0.4, abs=0.25)
    assert span_y == pytest.approx(height - 0.4, abs=0.25)
