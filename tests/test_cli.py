"""The CLI as a user meets it: one-line errors, distinct exit codes, no tracebacks, no partial files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpurelief.errors import ExitStatus

from conftest import photo_like

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "gpurelief", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def assert_one_line_error(proc, code, *needles):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("gpurelief: error: ")
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_convert_writes_glb_and_reports_stages(tmp_path, photo_jpeg):
    out = tmp_path / "photo.glb"
    proc = run("convert", photo_jpeg, "-o", out, "-v")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"glTF"
    for stage in ("decode", "depth", "condition", "mesh", "texture", "write", "total"):
        assert stage in proc.stderr
    assert "3,072 vertices" in proc.stderr


def test_cli_version_and_help():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("gpurelief 0.")
    proc = run("convert", "--help")
    assert proc.returncode == 0 and "--relief" in proc.stdout and "--max-size" in proc.stdout
    proc = run()
    assert proc.returncode == ExitStatus.USAGE


def _bad_inputs(tmp_path: Path, photo_jpeg: Path) -> dict:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("these are my notes\n")
    data = photo_jpeg.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    corrupt = bytearray(data)
    corrupt[200:400] = b"\xff" * 200
    (tmp_path / "corrupt.jpg").write_bytes(bytes(corrupt))
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    Image.new("RGB", (1, 50)).save(tmp_path / "line.png")
    (tmp_path / "folder").mkdir()
    return {
        "missing": (tmp_path / "nope.jpg", ExitStatus.INPUT_MISSING, "no such file"),
        "folder": (tmp_path / "folder", ExitStatus.INPUT_MISSING, "is a folder"),
        "empty": (tmp_path / "empty.jpg", ExitStatus.INPUT_MISSING, "empty"),
        "text": (tmp_path / "notes.jpg", ExitStatus.INPUT_UNREADABLE, "not an image"),
        "truncated": (tmp_path / "cut.jpg", ExitStatus.INPUT_UNREADABLE, "truncated or corrupt"),
        "unsupported": (tmp_path / "doc.pdf", ExitStatus.INPUT_UNREADABLE, "supported: JPEG"),
        "1x1": (tmp_path / "dot.png", ExitStatus.INPUT_TOO_SMALL, "at least 2x2"),
        "1xN": (tmp_path / "line.png", ExitStatus.INPUT_TOO_SMALL, "at least 2x2"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "folder", "empty", "text", "truncated", "unsupported", "1x1", "1xN"]
)
def test_cli_bad_input_one_line_distinct_code_no_output(tmp_path, photo_jpeg, case):
    path, code, needle = _bad_inputs(tmp_path, photo_jpeg)[case]
    out = tmp_path / "out" / "x.glb"
    out.parent.mkdir()
    proc = run("convert", path, "-o", out)
    assert_one_line_error(proc, code, str(path), needle)
    assert list(out.parent.iterdir()) == []


def test_cli_corrupt_jpeg_data_fails_cleanly_or_converts(tmp_path, photo_jpeg):
    # damaged entropy data: Pillow may decode it with artefacts; either way no traceback, no partial file
    path = _bad_inputs(tmp_path, photo_jpeg)["text"][0].parent / "corrupt.jpg"
    out = tmp_path / "c.glb"
    proc = run("convert", path, "-o", out)
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, ExitStatus.INPUT_UNREADABLE)
    assert out.exists() == (proc.returncode == 0)


def test_cli_decompression_bomb_guard_and_override(tmp_path):
    src = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(src)
    proc = run("convert", src, "-o", tmp_path / "b.glb", "--max-pixels", "100000")
    assert_one_line_error(proc, ExitStatus.INPUT_TOO_LARGE, str(src), "--max-pixels 120000")
    proc = run("convert", src, "-o", tmp_path / "b.glb", "--max-pixels", "120000", "--max-size", "64")
    assert proc.returncode == 0, proc.stderr


def test_cli_output_folder_missing_or_unwritable(tmp_path, photo_jpeg):
    proc = run("convert", photo_jpeg, "-o", tmp_path / "no" / "such" / "x.glb")
    assert_one_line_error(proc, ExitStatus.OUTPUT, "does not exist", "mkdir -p")
    # a folder nobody may create files in: chmod 500 for a normal user, sysfs even for root (CI runs as root)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        target = locked if not os.access(locked, os.W_OK) else Path("/sys")
        proc = run("convert", photo_jpeg, "-o", target / "x.glb")
        assert proc.returncode == ExitStatus.OUTPUT, proc.stderr
        assert_one_line_error(proc, ExitStatus.OUTPUT, str(target / "x.glb"))
        assert "not writable" in proc.stderr or "permission denied" in proc.stderr
    finally:
        locked.chmod(0o700)


def test_cli_output_unwritable_as_root_via_readonly_target(tmp_path, photo_jpeg):
    # root ignores folder permissions; a target that is a folder is refused for everyone
    target = tmp_path / "x.glb"
    target.mkdir()
    proc = run("convert", photo_jpeg, "-o", target)
    assert_one_line_error(proc, ExitStatus.OUTPUT, "is a folder")


def test_cli_bad_options_name_the_flag(tmp_path, photo_jpeg):
    proc = run("convert", photo_jpeg, "-o", tmp_path / "x.obj2")
    assert_one_line_error(proc, ExitStatus.OPTION, "--format")
    proc = run("convert", photo_jpeg, "-o", tmp_path / "x.glb", "--width", "-3")
    assert_one_line_error(proc, ExitStatus.OPTION, "--width")
    proc = run("convert", photo_jpeg, "-o", tmp_path / "x.glb", "--clip", "90", "10")
    assert_one_line_error(proc, ExitStatus.OPTION, "--clip")
    proc = run("convert", photo_jpeg, "-o", tmp_path / "x.glb", "--frame", "3")
    assert_one_line_error(proc, ExitStatus.OPTION, "--frame")
    proc = run("convert", photo_jpeg, "-o", tmp_path / "x.glb", "--max-size", "1")
    assert proc.returncode == ExitStatus.USAGE and "--max-size" in proc.stderr
    assert not list(tmp_path.glob("x.*"))


def test_cli_traceback_flag_shows_the_traceback(tmp_path):
    proc = run("convert", tmp_path / "nope.jpg", "-o", tmp_path / "x.glb", "--traceback")
    assert proc.returncode == ExitStatus.INPUT_MISSING
    assert "Traceback" in proc.stderr and "gpurelief: error:" in proc.stderr


def test_cli_depth_map_errors(tmp_path, photo_jpeg):
    np.save(tmp_path / "bad.npy", np.zeros((3, 4, 5), np.float32))
    proc = run("convert", photo_jpeg, "-o", tmp_path / "x.glb", "--depth-map", tmp_path / "bad.npy")
    assert_one_line_error(proc, ExitStatus.INPUT_UNREADABLE, "bad.npy", "2-D")
    proc = run("convert", photo_jpeg, "-o", tmp_path / "x.glb", "--depth-map", tmp_path / "none.png")
    assert_one_line_error(proc, ExitStatus.INPUT_MISSING, "none.png")


def test_cli_depth_command(tmp_path):
    src = tmp_path / "p.png"
    Image.fromarray(photo_like(30, 40)).save(src)
    proc = run("depth", src, "-o", tmp_path / "d.png")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "d.png").size == (40, 30)
    proc = run("depth", src, "-o", tmp_path / "d.jpg")
    assert_one_line_error(proc, ExitStatus.OPTION, ".png", ".npy")
