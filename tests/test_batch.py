"""gpurelief batch: input collection, mirrored outputs, failures, resume, kills, Ctrl-C, fsspec, bench."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, photo_like
from gpurelief import ConvertOptions, convert
from gpurelief.batch import (
    STATE_DIR,
    BatchItem,
    Manifest,
    OutputTree,
    collect_inputs,
    options_hash,
    parse_formats,
    run_batch,
)
from gpurelief.errors import ExitStatus, InputMissingError, OptionError

pytestmark = pytest.mark.timeout(180)


def make_tree(root: Path, n: int = 3, size=(60, 80)) -> list[Path]:
    """root/a_i.jpg and root/sub/b_i.png, deterministic photo-like content."""
    (root / "sub").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = root / f"a_{i}.jpg"
        Image.fromarray(photo_like(*size, seed=i)).save(p, quality=90)
        q = root / "sub" / f"b_{i}.png"
        Image.fromarray(photo_like(*size, seed=10 + i)).save(q)
        paths += [p, q]
    return paths


def check_glb(path: Path) -> dict:
    """Structural check of a whole GLB: header length = file size, JSON chunk parses, BIN chunk fits. -> glTF JSON."""
    data = path.read_bytes()
    assert len(data) >= 20, f"{path}: truncated ({len(data)} bytes)"
    magic, version, length = struct.unpack("<III", data[:12])
    assert (magic, version) == (0x46546C67, 2), f"{path}: not a GLB 2 file"
    assert length == len(data), f"{path}: header says {length} bytes, file has {len(data)}"
    jlen, jtype = struct.unpack("<II", data[12:20])
    gltf = json.loads(data[20 : 20 + jlen])
    blen, btype = struct.unpack("<II", data[20 + jlen : 28 + jlen])
    assert btype == 0x004E4942 and 28 + jlen + blen == len(data)
    assert gltf["buffers"][0]["byteLength"] <= blen
    return gltf


def gpurelief_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpurelief", *args]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ----------------------------------------------------------------------------- inputs and names

def test_collect_inputs_mirrors_folders_recursively_and_skips_hidden(tmp_path):
    make_tree(tmp_path / "in", n=2)
    (tmp_path / "in" / ".hidden").mkdir()
    Image.fromarray(photo_like(8, 8)).save(tmp_path / "in" / ".hidden" / "x.jpg")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    items = collect_inputs([str(tmp_path / "in")])
    assert sorted(it.rel for it in items) == ["a_0.jpg", "a_1.jpg", "sub/b_0.png", "sub/b_1.png"]


def test_collect_inputs_glob_and_list_file_never_escape_out_dir(tmp_path):
    make_tree(tmp_path / "in", n=2)
    outside = tmp_path / "outside.jpg"
    Image.fromarray(photo_like(8, 8)).save(outside)
    lst = tmp_path / "in" / "list.txt"
    lst.write_text(f"# a comment\nsub/b_0.png\n../outside.jpg\n{tmp_path / 'in' / 'a_0.jpg'}\n\n")
    items = collect_inputs([str(tmp_path / "in" / "sub" / "*.png"), f"@{lst}"])
    rels = [it.rel for it in items]
    assert rels == ["b_0.png", "b_1.png", "outside.jpg", "a_0.jpg"]  # b_0 from the list is the glob's duplicate
    out = OutputTree(tmp_path / "out")
    for it in items:
        for _, rel in out.targets(it, ["glb", "gltf"]):
            assert ".." not in Path(rel).parts and not Path(rel).is_absolute()
            assert (out.local / rel).resolve().is_relative_to(out.local)


def test_collect_inputs_rejects_an_input_matching_nothing(tmp_path):
    with pytest.raises(InputMissingError, match="matched no image files"):
        collect_inputs([str(tmp_path / "nothing" / "*.jpg")])


def test_parse_formats_uses_the_writer_registry():
    assert parse_formats("glb, gltf,glb") == ["glb", "gltf"]
    with pytest.raises(OptionError, match="unknown format 'nope'"):
        parse_formats("glb,nope")


# ----------------------------------------------------------------------------- the batch itself

def test_batch_writes_every_format_from_one_mesh_identical_to_convert(tmp_path, gltf_validator):
    make_tree(tmp_path / "in", n=2)
    report = tmp_path / "report.json"
    res = run_batch([str(tmp_path / "in")], tmp_path / "out", ConvertOptions(), formats="glb,gltf", workers=1,
                    report=report, progress="none")
    assert res.exit_status == ExitStatus.OK and res.summary["ok"] == 4
    rep = json.loads(report.read_text())
    assert rep["summary"]["total"] == 4 and len(rep["files"]) == 4
    row = next(r for r in rep["files"] if r["rel"] == "sub/b_1.png")
    assert row["status"] == "ok" and set(row["timings"]) >= {"decode", "depth", "mesh", "write"}
    assert {o["path"] for o in row["outputs"]} == {"sub/b_1.glb", "sub/b_1.gltf", "sub/b_1.bin", "sub/b_1_texture.png"}
    for o in row["outputs"]:
        assert (tmp_path / "out" / o["path"]).stat().st_size == o["bytes"]
    gltf_validator(tmp_path / "out" / "sub" / "b_1.glb")
    gltf_validator(tmp_path / "out" / "sub" / "b_1.gltf")
    # one depth + mesh feeds all formats, and the bytes are exactly what `convert` writes
    convert(tmp_path / "in" / "sub" / "b_1.png", tmp_path / "single.glb")
    assert (tmp_path / "single.glb").read_bytes() == (tmp_path / "out" / "sub" / "b_1.glb").read_bytes()


def test_batch_report_gives_an_adaptive_mesh_its_measured_error_and_pass(tmp_path):
    pytest.importorskip("numba")
    make_tree(tmp_path / "in", n=1)
    report = tmp_path / "report.json"
    opts = ConvertOptions(mesh="adaptive", max_error="1%")
    res = run_batch([str(tmp_path / "in")], tmp_path / "out", opts, formats="glb,stl", workers=1, report=report,
                    progress="none")
    assert res.exit_status == ExitStatus.OK
    rows = json.loads(report.read_text())["files"]
    for row in rows:
        single = convert(tmp_path / "in" / row["rel"], tmp_path / "single.glb", opts)
        assert row["quality_pass"] == "fast" and row["max_error_units"] == "m"
        assert row["max_error"] == pytest.approx(single.max_error, rel=1e-6) and 0 < row["max_error"]
        assert row["max_error"] <= 0.01 * 0.1 * (1 + 1e-5)  # 1% of the default relief (0.1 of a 1 m width)
    grid = tmp_path / "grid.json"
    run_batch([str(tmp_path / "in")], tmp_path / "out-grid", ConvertOptions(), formats="glb", workers=1,
              report=grid, progress="none")
    assert all("max_error" not in r and "quality_pass" not in r for r in json.loads(grid.read_text())["files"])


def test_batch_report_carries_the_depth_maps_note(tmp_path):
    """A --depth-map whose minimum looks like a no-data value: the note `convert` prints is in the report row."""
    make_tree(tmp_path / "in", n=1)
    elev = np.linspace(100.0, 900.0, 60 * 80, dtype=np.float32).reshape(60, 80)
    elev[:4, :4] = -9999.0
    np.save(tmp_path / "dem.npy", elev)
    report = tmp_path / "report.json"
    run_batch([str(tmp_path / "in")], tmp_path / "out", ConvertOptions(depth_map=str(tmp_path / "dem.npy")),
              formats="glb,stl", workers=1, report=report, progress="none")
    rows = json.loads(report.read_text())["files"]
    assert rows and all(any("--nodata -9999" in n for n in r["notes"]) for r in rows)
    run_batch([str(tmp_path / "in")], tmp_path / "out2", ConvertOptions(depth_map=str(tmp_path / "dem.npy"), nodata=-9999),
              formats="glb", workers=1, report=report, progress="none")
    assert all("notes" not in r for r in json.loads(report.read_text())["files"])


def test_batch_print_and_gltf_formats_share_one_depth_and_match_convert(tmp_path, gltf_validator):
    trimesh = pytest.importorskip("trimesh")
    make_tree(tmp_path / "in", n=1)
    opts = ConvertOptions(width_mm=80.0, max_size=40)  # --width-mm sizes the print outputs, the GLB keeps --width
    res = run_batch([str(tmp_path / "in")], tmp_path / "out", opts, formats="glb,stl,3mf,obj", workers=1,
                    progress="none")
    assert res.exit_status == ExitStatus.OK and res.summary["ok"] == 2
    out = tmp_path / "out"
    gltf_validator(out / "a_0.glb")
    solid = trimesh.load(out / "a_0.stl")
    assert solid.is_watertight and solid.is_winding_consistent and solid.volume > 0
    assert abs(solid.bounds[1][0] - solid.bounds[0][0] - 80.0) < 1e-3  # millimetres, not the glTF's metres
    assert (out / "a_0.mtl").exists() and (out / "a_0_texture.jpg").exists()
    for fmt in ("glb", "stl", "3mf"):  # each output is byte for byte what `convert` writes for that format
        convert(tmp_path / "in" / "a_0.jpg", tmp_path / f"single.{fmt}", opts if fmt != "glb" else replace(opts, width_mm=None))
        assert (tmp_path / f"single.{fmt}").read_bytes() == (out / f"a_0.{fmt}").read_bytes(), fmt


def test_batch_refuses_print_only_flags_with_gltf_formats_before_work(tmp_path):
    make_tree(tmp_path / "in", n=1)
    with pytest.raises(OptionError, match="--lithophane"):
        run_batch([str(tmp_path / "in")], tmp_path / "out", ConvertOptions(lithophane=True), formats="glb,stl",
                  workers=1, progress="none")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.*"))


def test_batch_process_pool_and_io_threads_match_inline_bytes(tmp_path):
    make_tree(tmp_path / "in", n=2)
    a = run_batch([str(tmp_path / "in")], tmp_path / "a", formats="glb", workers=1, progress="none")
    b = run_batch([str(tmp_path / "in")], tmp_path / "b", formats="glb", workers=2, progress="none")
    c = run_batch([str(tmp_path / "in")], tmp_path / "c", formats="glb", workers=1, io_threads=3, progress="none")
    assert a.summary["ok"] == b.summary["ok"] == c.summary["ok"] == 4 and b.summary["workers"] == 2
    for p in (tmp_path / "a").rglob("*.glb"):
        rel = p.relative_to(tmp_path / "a")
        assert p.read_bytes() == (tmp_path / "b" / rel).read_bytes() == (tmp_path / "c" / rel).read_bytes()


def test_bad_file_fails_alone_with_partial_exit_status(tmp_path):
    make_tree(tmp_path / "in", n=2)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "in" / "a_0.png").write_bytes(b"")  # also collides with a_0.jpg's output names
    report = tmp_path / "r.json"
    res = run_batch([str(tmp_path / "in")], tmp_path / "out", workers=2, report=report, progress="none")
    assert res.exit_status == ExitStatus.PARTIAL
    rows = {r["rel"]: r for r in json.loads(report.read_text())["files"]}
    assert rows["broken.jpg"]["status"] == "error" and "broken.jpg" in rows["broken.jpg"]["error"]
    assert rows["a_0.png"]["status"] == "error" and "a_0.jpg" in rows["a_0.png"]["error"]
    assert sum(r["status"] == "ok" for r in rows.values()) == 4
    check_glb(tmp_path / "out" / "a_0.glb")
    assert not (tmp_path / "out" / "broken.glb").exists()


def test_max_failures_aborts_a_broken_run(tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(12):
        (tmp_path / "in" / f"bad_{i:02d}.jpg").write_bytes(b"garbage")
    res = run_batch([str(tmp_path / "in")], tmp_path / "out", workers=1, max_failures=2, progress="none")
    assert res.aborted and res.exit_status == ExitStatus.PARTIAL
    assert 2 <= res.summary["failed"] < 12 and res.summary["not_run"] > 0


def test_resume_skips_done_inputs_and_redoes_changed_ones(tmp_path):
    make_tree(tmp_path / "in", n=2)
    args = ([str(tmp_path / "in")], tmp_path / "out")
    first = run_batch(*args, workers=1, progress="none")
    assert first.summary["ok"] == 4
    manifest = tmp_path / "out" / STATE_DIR / "manifest.jsonl"
    with open(manifest, "a") as f:
        f.write('{"input": "/torn')  # a line cut by a kill must be ignored
    Image.fromarray(photo_like(60, 80, seed=99)).save(tmp_path / "in" / "a_1.jpg", quality=90)  # changed input
    (tmp_path / "out" / "sub" / "b_0.glb").unlink()                                          # lost output
    again = run_batch(*args, workers=1, resume=True, progress="none", report=tmp_path / "r.json")
    assert again.summary["skipped"] == 2 and again.summary["ok"] == 2
    redone = {r["rel"] for r in json.loads((tmp_path / "r.json").read_text())["files"] if r["status"] == "ok"}
    assert redone == {"a_1.jpg", "sub/b_0.png"}
    # other options -> another options hash -> everything again
    third = run_batch(*args, ConvertOptions(relief=0.2), workers=1, resume=True, progress="none")
    assert third.summary["ok"] == 4 and third.summary["skipped"] == 0


def test_manifest_decides_from_stat_without_reading_image_bytes(tmp_path, monkeypatch):
    make_tree(tmp_path / "in", n=1)
    run_batch([str(tmp_path / "in")], tmp_path / "out", workers=1, progress="none")
    import gpurelief.batch as batch

    def no_reads(*a, **k):
        raise AssertionError("resume must not decode a finished input")

    monkeypatch.setattr(batch, "load_image", no_reads)
    res = run_batch([str(tmp_path / "in")], tmp_path / "out", workers=1, resume=True, progress="none")
    assert res.summary["skipped"] == 2 and res.exit_status == ExitStatus.OK


def test_options_hash_ignores_format_but_not_geometry():
    base = options_hash(ConvertOptions(), ["glb"])
    assert options_hash(ConvertOptions(format="gltf"), ["glb"]) == base
    assert options_hash(ConvertOptions(width=2.0), ["glb"]) != base
    assert options_hash(ConvertOptions(), ["glb", "gltf"]) != base


# ----------------------------------------------------------------------------- fsspec (memory filesystem)

def test_batch_reads_and_writes_fsspec_urls_by_single_upload(tmp_path, monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    from fsspec.implementations.memory import MemoryFileSystem

    fs = fsspec.filesystem("memory")
    make_tree(tmp_path / "in", n=1)
    for p in (tmp_path / "in").rglob("*.*"):
        fs.pipe_file(f"/photos/{p.relative_to(tmp_path / 'in').as_posix()}", p.read_bytes())

    def no_rename(*a, **k):
        raise AssertionError("object stores must get one upload per file, never a rename")

    monkeypatch.setattr(MemoryFileSystem, "mv", no_rename)
    monkeypatch.setattr(MemoryFileSystem, "rename", no_rename, raising=False)
    try:
        res = run_batch(["memory://photos"], "memory://models", formats="glb,gltf", workers=1, progress="none")
        assert res.summary["ok"] == 2, res.summary
        local = run_batch([str(tmp_path / "in")], tmp_path / "out", formats="glb,gltf", workers=1, progress="none")
        assert local.summary["ok"] == 2
        for name in ("a_0.glb", "a_0.gltf", "a_0.bin", "sub/b_0.glb", "sub/b_0_texture.png"):
            assert fs.cat_file(f"/models/{name}") == (tmp_path / "out" / name).read_bytes(), name
        assert fs.find(f"/models/{STATE_DIR}/manifest")  # manifest shards uploaded
        again = run_batch(["memory://photos"], "memory://models", formats="glb,gltf", workers=1, resume=True,
                          progress="none")
        assert again.summary["skipped"] == 2 and again.summary["ok"] == 0
    finally:
        fs.rm("/photos", recursive=True)
        fs.rm("/models", recursive=True)


# ----------------------------------------------------------------------------- real kills (subprocesses)

def _wait_for_manifest_rows(proc, manifest: Path, rows: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the batch ended (rc {proc.returncode}) before it could be interrupted")
        if manifest.exists():
            n = manifest.read_text().count("\n")
            if n >= rows:
                return n
        time.sleep(0.02)
    pytest.fail("the batch made no progress")


def _big_tree(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(photo_like(240, 320, seed=i)).save(root / f"img_{i:03d}.jpg", quality=85)


@pytest.mark.slow
def test_sigkilled_batch_resumes_to_a_complete_valid_tree(tmp_path, gltf_validator):
    n = 24
    _big_tree(tmp_path / "in", n)
    out = tmp_path / "out"
    cmd = gpurelief_cmd("batch", str(tmp_path / "in"), "-o", str(out), "--workers", "2", "--max-size", "full",
                        "--progress", "log")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_manifest_rows(proc, out / STATE_DIR / "manifest.jsonl", 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.5)  # the workers die with the driver (PR_SET_PDEATHSIG)
    done_before = len(list(out.glob("*.glb")))
    assert 3 <= done_before < n, "the kill must land mid-run"
    for p in out.glob("*.glb"):  # every output visible after the kill is whole
        check_glb(p)
    report = tmp_path / "r.json"
    rerun = subprocess.run(cmd + ["--resume", "--report", str(report)], cwd=ROOT, env=subprocess_env(),
                           capture_output=True, text=True, timeout=150)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(report.read_text())["summary"]
    assert summary["skipped"] >= 3 and summary["skipped"] + summary["ok"] == n
    glbs = sorted(out.glob("*.glb"))
    assert len(glbs) == n and not list(out.rglob("*.part"))
    for p in glbs:
        check_glb(p)
    gltf_validator(glbs[0])
    gltf_validator(glbs[-1])


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    n = 24
    _big_tree(tmp_path / "in", n)
    out = tmp_path / "out"
    cmd = gpurelief_cmd("batch", str(tmp_path / "in"), "-o", str(out), "--workers", "2", "--max-size", "full",
                        "--progress", "log")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for_manifest_rows(proc, out / STATE_DIR / "manifest.jsonl", 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert "--resume" in err and "Traceback" not in err
    assert not list(out.rglob("*.part"))
    rows = [json.loads(line) for line in (out / STATE_DIR / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) < n
    for r in rows:  # everything the manifest calls done is there and whole
        check_glb(out / r["outputs"][0]["path"])
    rerun = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                           timeout=150)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list(out.glob("*.glb"))) == n


def _worker_pids(driver_pid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == driver_pid and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.slow
def test_worker_killed_mid_batch_is_replaced_and_its_files_retried(tmp_path):
    n = 16
    _big_tree(tmp_path / "in", n)
    out = tmp_path / "out"
    report = tmp_path / "r.json"
    cmd = gpurelief_cmd("batch", str(tmp_path / "in"), "-o", str(out), "--workers", "2", "--max-size", "full",
                        "--progress", "log", "--report", str(report))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_manifest_rows(proc, out / STATE_DIR / "manifest.jsonl", 2)
    workers = _worker_pids(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)  # what the OOM killer does
    _, err = proc.communicate(timeout=150)
    assert proc.returncode == 0, err
    summary = json.loads(report.read_text())["summary"]
    assert summary["ok"] == n and summary["failed"] == 0
    for p in out.glob("*.glb"):
        check_glb(p)
    assert len(list(out.glob("*.glb"))) == n


def test_output_folder_equal_to_input_folder_never_overwrites_inputs(tmp_path):
    (tmp_path / "d").mkdir()
    Image.fromarray(photo_like(40, 50, seed=1)).save(tmp_path / "d" / "x.png")
    Image.fromarray(photo_like(40, 50, seed=2)).save(tmp_path / "d" / "x_texture.png")  # a gltf sidecar name
    before = (tmp_path / "d" / "x_texture.png").read_bytes()
    res = run_batch([str(tmp_path / "d")], tmp_path / "d", formats="gltf", workers=1, progress="none",
                    report=tmp_path / "r.json")
    rows = {r["rel"]: r for r in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert rows["x.png"]["status"] == "error" and "overwrite the input" in rows["x.png"]["error"]
    assert (tmp_path / "d" / "x_texture.png").read_bytes() == before
    assert res.exit_status == ExitStatus.PARTIAL


def test_cli_batch_reports_partial_failure_exit_code(tmp_path):
    make_tree(tmp_path / "in", n=1)
    (tmp_path / "in" / "zz.jpg").write_bytes(b"nope")
    proc = subprocess.run(
        gpurelief_cmd("batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--workers", "1",
                      "--formats", "gltf", "--report", str(tmp_path / "r.json")),
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == ExitStatus.PARTIAL, proc.stderr
    assert "FAILED" in proc.stderr and "zz.jpg" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "a_0.gltf").exists()
    bad = subprocess.run(gpurelief_cmd("batch", str(tmp_path / "in"), "-o", str(tmp_path / "o2"), "--formats", "xyz"),
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == ExitStatus.OPTION and "--formats" in bad.stderr


def test_bench_reports_stage_times_throughput_and_machine(tmp_path):
    proc = subprocess.run(
        gpurelief_cmd("bench", "--count", "3", "--size", "96x64", "--workers", "1", "--compare-serial",
                      "--json", str(tmp_path / "b.json")),
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["images"] == 3 and res["failed"] == 0
    assert res["images_per_s"] > 0 and res["mb_written"] > 0 and res["serial_images_per_s"] > 0
    assert set(res["stage_median_s"]) == {"decode", "depth", "condition", "mesh", "texture", "write"}
    assert res["machine"]["cores"] >= 1 and res["machine"]["numpy"] == np.__version__
    assert res["vertices_median"] == 96 * 64


def test_manifest_row_requires_outputs_with_recorded_sizes(tmp_path):
    out = OutputTree(tmp_path / "out")
    out.prepare()
    (tmp_path / "out" / "x.glb").write_bytes(b"12345")
    m = Manifest(out)
    item = BatchItem(src="/in/x.jpg", rel="x.jpg", size=10, mtime="1")
    m.append({"input": item.src, "rel": "x.jpg", "size": 10, "mtime": "1", "options": "h", "status": "ok",
              "outputs": [{"path": "x.glb", "bytes": 5}], "seconds": 0.1})
    m.close()
    loaded = Manifest(out).load()
    assert loaded.is_done(item, "h")
    assert not loaded.is_done(item, "other-options")
    (tmp_path / "out" / "x.glb").write_bytes(b"123")  # truncated output -> redo
    assert not loaded.is_done(item, "h")


def test_core_never_imports_ray_and_engine_ray_names_the_extra(tmp_path, monkeypatch):
    code = "import sys, gpurelief.cli, gpurelief.batch, gpurelief.bench; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), timeout=60).returncode == 0
    make_tree(tmp_path / "in", n=1)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    from gpurelief.errors import DependencyError

    with pytest.raises(DependencyError, match=r"gpurelief\[ray\]"):
        run_batch([str(tmp_path / "in")], tmp_path / "out", engine="ray", progress="none")


class _Tty:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_bar_on_a_terminal_shows_files_rate_eta_and_failures(tmp_path):
    make_tree(tmp_path / "in", n=1)
    (tmp_path / "in" / "x.jpg").write_bytes(b"bad")
    tty = _Tty()
    run_batch([str(tmp_path / "in")], tmp_path / "out", workers=1, stream=tty)
    last = tty.text.rsplit("\r", 1)[-1]
    assert "3/3 files" in last and "img/s" in last and "ETA" in last and "failures 1" in last
    assert "FAILED" in tty.text and "x.jpg" in tty.text


def test_worker_setup_failure_stops_the_batch_with_the_errors_exit_code(tmp_path):
    make_tree(tmp_path / "in", n=1)
    from gpurelief.errors import GpureliefError

    with pytest.raises(GpureliefError, match="missing.png: no such file") as info:
        run_batch([str(tmp_path / "in")], tmp_path / "out", ConvertOptions(depth_map=str(tmp_path / "missing.png")),
                  workers=2, progress="none")
    assert info.value.exit_status == ExitStatus.INPUT_MISSING


def test_batch_and_bench_take_every_convert_option():
    from gpurelief.cli import build_parser, options_from_args

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    convert_flags = {s for a in sub["convert"]._actions for s in a.option_strings} - {"-o", "--output", "--format"}
    for name in ("batch", "bench"):
        assert convert_flags <= {s for a in sub[name]._actions for s in a.option_strings}, name
    flags = ["--relief", "0.2", "--units", "cm", "--width", "30", "--max-size", "full", "--invert", "--clip", "2", "98",
             "--texture-format", "png", "--double-sided", "--smooth", "1.5"]
    one = options_from_args(parser.parse_args(["convert", "x.jpg", "-o", "x.glb", *flags]))
    many = options_from_args(parser.parse_args(["batch", "x.jpg", "-o", "out", *flags]))
    assert one == many and many.relief == 0.2 and many.max_size is None and many.clip_pct == (2.0, 98.0)


def test_a_worker_killed_mid_message_cannot_hang_the_driver():
    """Each worker has its own result pipe: a pipe cut inside a message (its writer killed) reads as end-of-file
    and is dropped, while the other workers' messages still arrive. (A queue shared by all workers would stay
    locked by the dead writer and hang the batch.)"""
    import multiprocessing as mp

    from gpurelief.batch import _ResultSender, receive_ready

    ctx = mp.get_context("spawn")
    cut_r, cut_w = ctx.Pipe(duplex=False)
    ok_r, ok_w = ctx.Pipe(duplex=False)
    os.write(cut_w.fileno(), struct.pack("!i", 1000) + b"\x80\x05 only part of the frame")  # header says 1000 B
    cut_w.close()  # the writer is gone mid-message
    _ResultSender(ok_w).put(("done", 1, {"index": 7}))
    conns = {0: cut_r, 1: ok_r}
    got, t0 = [], time.monotonic()
    while 0 in conns and time.monotonic() - t0 < 5:
        got += receive_ready(conns, 0.2)
    assert 0 not in conns and cut_r.closed  # dropped, not waited on
    assert ("done", 1, {"index": 7}) in got + receive_ready(conns, 0.2)
    assert receive_ready(conns, 0.05, only=[0]) == []  # nothing left to watch for the dead one: no error, no hang
    ok_w.close()
