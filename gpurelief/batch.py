"""Many files: inputs -> mirrored output tree, pipelined workers, manifest + resume, progress, report.

The driver (this process) lists the inputs, drops those the manifest marks done (decided from
path, size, mtime and the options hash: no image byte is read), hands each worker a bounded
window of items, and is the only writer of the manifest and the report. A worker runs a
ReliefJob as three stages joined by queues of one: decode thread(s), depth + condition + mesh +
texture in the worker's main thread (the device stage), and writer thread(s); so at most a few
images are alive per worker, however long the batch. Engines (the local process pool here,
Ray Data in batch_ray.py) all call the same ReliefJob, and yield the same result rows.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import posixpath
import queue
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

import numpy as np

from . import __version__
from .decode import decode_image, load_image
from .errors import GpureliefError, InputMissingError, OptionError, OutputError, require
from .pipeline import (
    ConvertOptions, StageTimer, build_mesh, check_format_options, make_products, refuse_overwriting_inputs, write_mesh,
)
from .types import Image
from .writers import FORMATS
from .writers.atomic import atomic_open, check_output_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
LIST_SUFFIXES = (".txt", ".lst", ".list")
STATE_DIR = "_gpurelief"           # inside OUT_DIR: manifest (and shards on object stores)
MANIFEST = "manifest.jsonl"
STAGES = ("decode", "depth", "condition", "mesh", "texture", "write")


# ----------------------------------------------------------------------------- locations

def is_url(text: str) -> bool:
    return "://" in str(text)


def _fsspec():
    return require("fsspec", "remote", purpose="reading or writing URLs (s3://, gs://, memory://)")


def url_fs(url: str):
    """URL -> (fsspec filesystem, path inside it, local path or None). file:// URLs are treated as local paths."""
    fs, path = _fsspec().core.url_to_fs(url)
    if "file" in _protocols(fs):
        return fs, path, path
    return fs, path, None


def _protocols(fs) -> tuple[str, ...]:
    p = fs.protocol
    return (p,) if isinstance(p, str) else tuple(p)


def _join_url(fs, path: str) -> str:
    return fs.unstrip_protocol(path)


# ----------------------------------------------------------------------------- inputs

@dataclass
class BatchItem:
    """One input file. src: absolute local path or URL; rel: its path in the output tree (POSIX, no '..')."""

    src: str
    rel: str
    size: int = -1
    mtime: str = ""
    index: int = 0
    attempts: int = 0
    collision: str | None = None  # why its outputs cannot be written (taken by another input / would overwrite one)

    @property
    def key(self) -> str:
        return self.src


def safe_rel(rel: str) -> str:
    """A relative POSIX path that stays inside OUT_DIR: normalised, no leading '/', no '..' (else the name)."""
    rel = rel.replace("\\", "/")
    norm = posixpath.normpath(rel)
    if posixpath.isabs(norm) or norm == ".." or norm.startswith("../") or norm in ("", "."):
        norm = posixpath.basename(rel.rstrip("/")) or "image"
    norm = norm.lstrip("/")
    if norm in ("", ".", "..") or ".." in PurePosixPath(norm).parts:
        raise OptionError(f"{rel!r}: cannot be mapped to a name inside the output folder; rename the file")
    return norm


def _stat_fingerprint(st) -> tuple[int, str]:
    return int(st.st_size), str(st.st_mtime_ns)


def _info_fingerprint(info: dict) -> tuple[int, str]:
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or info.get(
        "updated") or info.get("created") or ""
    return int(info.get("size") or 0), str(stamp)


def _walk_local(root: Path, skip: Path | None) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d != STATE_DIR and (skip is None or (here / d).resolve() != skip)
        )
        names = set(filenames)
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            stem = name.rsplit(".", 1)[0]
            if stem.endswith("_texture") and stem[: -len("_texture")] + ".gltf" in names:
                continue  # the texture of a .gltf gpurelief wrote (output folder = input folder)
            yield here / name


def _glob_base(pattern: str) -> str:
    parts = pattern.replace("\\", "/").split("/")
    base = []
    for p in parts:
        if glob.has_magic(p):
            break
        base.append(p)
    return "/".join(base) or "."


def _local_items(arg: str, out_root: Path | None) -> list[BatchItem]:
    if glob.has_magic(arg):
        base = Path(_glob_base(arg))
        found = [Path(p) for p in sorted(glob.glob(arg, recursive=True)) if Path(p).is_file()]
        return [BatchItem(str(p.resolve()), safe_rel(p.relative_to(base).as_posix())) for p in found]
    path = Path(arg)
    if path.is_dir():
        return [BatchItem(str(p.resolve()), safe_rel(p.relative_to(path).as_posix())) for p in _walk_local(path, out_root)]
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return _list_items(arg, path.read_text(encoding="utf-8"), out_root)
    return [BatchItem(str(path.resolve()), safe_rel(path.name))] if path.exists() else []


def _list_items(list_arg: str, text: str, out_root: Path | None) -> list[BatchItem]:
    """A list file: one path or URL per line ('#' comments); relative paths are relative to the list's folder."""
    items = []
    base = posixpath.dirname(list_arg) if is_url(list_arg) else str(Path(list_arg).parent)
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if is_url(entry) or posixpath.isabs(entry) or os.path.isabs(entry):
            src, rel = entry, posixpath.basename(entry.rstrip("/"))
        else:
            src = posixpath.join(base, entry) if is_url(list_arg) else str(Path(base, entry))
            rel = entry
        if is_url(src):
            items += _url_items(src, out_root, rel=safe_rel(rel))
        else:
            p = Path(src)
            items.append(BatchItem(str(p.resolve()), safe_rel(rel)))
    return items


def _url_items(arg: str, out_root, *, rel: str | None = None) -> list[BatchItem]:
    fs, path, local = url_fs(arg)
    if local is not None:
        if rel is not None:
            return [BatchItem(str(Path(local).resolve()), rel)]
        return _local_items(local, out_root)
    if glob.has_magic(path):
        base = _glob_base(path)
        found = fs.glob(path, detail=True)
        entries = sorted((k, v) for k, v in found.items() if v.get("type") == "file")
    elif fs.isdir(path):
        base = path
        found = fs.find(path, detail=True)
        entries = sorted(
            (k, v) for k, v in found.items()
            if v.get("type") == "file" and k.lower().endswith(IMAGE_SUFFIXES)
            and not any(part.startswith(".") or part == STATE_DIR for part in PurePosixPath(k).parts)
        )
    elif fs.isfile(path):
        base = posixpath.dirname(path)
        entries = [(path, fs.info(path))]
    else:
        return []
    items = []
    for key, info in entries:
        size, stamp = _info_fingerprint(info)
        r = rel if rel is not None else posixpath.relpath(key, base.rstrip("/") or "/")
        items.append(BatchItem(_join_url(fs, key), safe_rel(r), size, stamp))
    return items


def collect_inputs(inputs: Iterable[str], out_dir: str | None = None) -> list[BatchItem]:
    """INPUTS (folders, recursive; globs; list files *.txt or @FILE; URLs) -> items in a stable order.

    Duplicates are dropped; an argument that matches nothing raises InputMissingError. Items whose output
    names collide with an earlier item's are kept with `collision` set, so they fail alone.
    """
    out_root = None
    if out_dir is not None and not is_url(out_dir):
        out_root = Path(out_dir).resolve()
    items: list[BatchItem] = []
    for arg in inputs:
        arg = str(arg)
        if arg.startswith("@"):
            lst = arg[1:]
            if is_url(lst):
                fs, p, _ = url_fs(lst)
                text = fs.cat_file(p).decode("utf-8")
            else:
                if not Path(lst).is_file():
                    raise InputMissingError(f"{lst}: list file not found; give one path per line", path=lst)
                text = Path(lst).read_text(encoding="utf-8")
            found = _list_items(lst, text, out_root)
        elif is_url(arg):
            found = _url_items(arg, out_root)
        else:
            found = _local_items(arg, out_root)
        if not found:
            raise InputMissingError(
                f"{arg}: matched no image files ({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}); check the path",
                path=arg,
            )
        items += found
    seen: set[str] = set()
    owner: dict[str, str] = {}
    unique = []
    for it in items:
        if it.src in seen:
            continue
        seen.add(it.src)
        stem = posixpath.splitext(it.rel)[0].lower()
        if stem in owner:
            it.collision = f"its output names are already taken by {owner[stem]} (same name, other suffix)"
        else:
            owner[stem] = it.src
        it.index = len(unique)
        unique.append(it)
    return unique


_TEXTURES = ("_texture.jpg", "_texture.png", "_texture.webp")
SIDECARS = {  # files a format writes beside it
    "gltf": (".bin", *_TEXTURES),
    "obj": (".mtl", *_TEXTURES),
    "ply": _TEXTURES,
}


def mark_input_overwrites(items: list[BatchItem], out: "OutputTree", formats: list[str]) -> None:
    """An item whose outputs (or a .gltf's .bin / texture) would replace another input fails alone, up front."""
    if out.local is None:
        return
    inputs = {it.src for it in items if not is_url(it.src)}
    for it in items:
        if it.collision:
            continue
        stem = posixpath.splitext(it.rel)[0]
        for fmt in formats:
            names = [stem + suffix_for(fmt)] + [stem + s for s in SIDECARS.get(fmt, ())]
            hit = next((str(out.local / n) for n in names if str(out.local / n) in inputs), None)
            if hit:
                it.collision = f"writing its {fmt} output would overwrite the input {hit}"
                break


def fingerprint(item: BatchItem, mode: str = "stat") -> None:
    """Fill item.size / item.mtime from the file system (stat) or a content hash, without decoding."""
    if is_url(item.src):
        fs, path, _ = url_fs(item.src)
        if mode == "sha256":
            item.size, item.mtime = int(fs.size(path)), "sha256:" + hashlib.sha256(fs.cat_file(path)).hexdigest()
        elif item.size < 0:
            item.size, item.mtime = _info_fingerprint(fs.info(path))
        return
    try:
        st = os.stat(item.src)
    except OSError:
        item.size, item.mtime = -1, ""
        return
    item.size, item.mtime = _stat_fingerprint(st)
    if mode == "sha256":
        h = hashlib.sha256()
        with open(item.src, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        item.mtime = "sha256:" + h.hexdigest()


# ----------------------------------------------------------------------------- formats and options

def suffix_for(fmt: str) -> str:
    """Format name -> the first suffix the writer registry (writers.FORMATS) maps to it."""
    for suffix, name in FORMATS.items():
        if name == fmt:
            return suffix
    raise OptionError(f"--formats: unknown format {fmt!r}; expected some of {', '.join(sorted(set(FORMATS.values())))}")


def parse_formats(text: str | Iterable[str]) -> list[str]:
    """'glb,gltf' -> ['glb', 'gltf'], checked against the writer registry; order kept, duplicates dropped."""
    names = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for n in names:
        n = n.strip().lower().lstrip(".")
        if not n:
            continue
        suffix_for(n)
        if n not in out:
            out.append(n)
    if not out:
        raise OptionError("--formats: expected at least one format, e.g. --formats glb,gltf")
    return out


def options_hash(opts: ConvertOptions, formats: list[str]) -> str:
    """Everything that changes the output bytes -> 16 hex digits (in the manifest; a change means recompute)."""
    d = {k: v for k, v in asdict(opts).items() if k != "format"}
    d["formats"] = list(formats)
    d["gpurelief"] = __version__
    text = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ----------------------------------------------------------------------------- outputs

class OutputTree:
    """OUT_DIR, a local folder (atomic temp + rename) or an fsspec URL (each file one upload, never a rename)."""

    def __init__(self, root: str | os.PathLike):
        root = str(root)
        self.url = root if is_url(root) else None
        self.fs = None
        if self.url:
            fs, path, local = url_fs(root)
            if local is not None:
                self.url = None
                root = local
            else:
                self.fs, self.path = fs, path.rstrip("/")
        if self.url is None:
            self.local = Path(root).resolve()
        else:
            self.local = None

    def __str__(self) -> str:
        return self.url or str(self.local)

    def prepare(self) -> None:
        if self.local is not None:
            try:
                (self.local / STATE_DIR).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"{self.local}: cannot create the output folder ({exc.strerror}); choose another -o") from exc
        else:
            self.fs.makedirs(self.path, exist_ok=True)

    def targets(self, item: BatchItem, formats: list[str]) -> list[tuple[str, str]]:
        """-> [(format, path relative to OUT_DIR)] for one item; checked to stay inside OUT_DIR."""
        stem = posixpath.splitext(item.rel)[0]
        out = []
        for fmt in formats:
            rel = stem + suffix_for(fmt)
            if self.local is not None:
                full = (self.local / rel).resolve()
                if not full.is_relative_to(self.local):
                    raise OutputError(f"{item.src}: its output {rel} would leave {self.local}; rename the input")
            out.append((fmt, rel))
        return out

    def exists_with_size(self, rel: str, size: int) -> bool:
        try:
            if self.local is not None:
                return (self.local / rel).stat().st_size == size
            return int(self.fs.size(self.path + "/" + rel)) == size
        except (OSError, FileNotFoundError):
            return False

    def write(
        self, rel: str, fmt: str, write_fn: Callable[[Path, str], list[Path]], *, source: str | None = None,
        options: ConvertOptions | None = None,
    ) -> list[tuple[str, int]]:
        """write_fn(local_path, fmt) writes the file(s); -> [(path relative to OUT_DIR, bytes)].

        source: the input file, which no output (nor a .gltf's sidecar) may replace.
        """
        if self.local is not None:
            target = self.local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if source is not None:
                refuse_overwriting_inputs(target, source, options or ConvertOptions())
            paths = write_fn(target, fmt)
            return [(p.relative_to(self.local).as_posix(), p.stat().st_size) for p in paths]
        with tempfile.TemporaryDirectory(prefix="gpurelief-") as tmp:
            local = Path(tmp) / posixpath.basename(rel)
            paths = write_fn(local, fmt)
            parent = posixpath.dirname(rel)
            written = []
            # sidecars (.bin, texture) first and the file that names them last, as the local writers do
            for p in paths[1:] + paths[:1]:
                key = posixpath.join(parent, p.name) if parent else p.name
                data = p.read_bytes()
                self.fs.pipe_file(self.path + "/" + key, data)  # one PUT: visible only when complete
                written.append((key, len(data)))
            return written[-1:] + written[:-1]

    def clean_stale_parts(self) -> int:
        """Remove temp files (.NAME.XXXX.part) a killed run left behind; -> how many."""
        if self.local is None:
            return 0
        n = 0
        for dirpath, _, filenames in os.walk(self.local):
            for name in filenames:
                if name.startswith(".") and name.endswith(".part"):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))
                        n += 1
        return n


# ----------------------------------------------------------------------------- manifest

class Manifest:
    """Append-only JSONL of finished files under OUT_DIR/_gpurelief; the last row per input wins.

    Local: one file, a line appended (and flushed) after each file's outputs are in place, so a
    SIGKILL loses at most the line being written (a torn last line is ignored on load). Object
    stores cannot append: rows are uploaded as numbered shard objects every few seconds.
    """

    def __init__(self, out: OutputTree, *, run_id: str | None = None, shard_seconds: float = 5.0):
        self.out = out
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self.rows: dict[str, dict] = {}
        self._f = None
        self._pending: list[str] = []
        self._shard = 0
        self._last_flush = time.monotonic()
        self.shard_seconds = shard_seconds

    def _lines(self) -> Iterator[str]:
        if self.out.local is not None:
            path = self.out.local / STATE_DIR / MANIFEST
            if path.exists():
                with open(path, encoding="utf-8", errors="replace") as f:
                    yield from f
        else:
            fs, base = self.out.fs, self.out.path + f"/{STATE_DIR}/manifest"
            if fs.exists(base):
                for key in sorted(fs.find(base)):
                    yield from fs.cat_file(key).decode("utf-8", "replace").splitlines()

    def load(self) -> "Manifest":
        for line in self._lines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill
            if isinstance(row, dict) and "input" in row:
                self.rows[row["input"]] = row
        return self

    def is_done(self, item: BatchItem, opts_hash: str) -> bool:
        row = self.rows.get(item.key)
        if not row or row.get("status") != "ok" or row.get("options") != opts_hash:
            return False
        if row.get("size") != item.size or row.get("mtime") != item.mtime:
            return False
        return all(self.out.exists_with_size(o["path"], o["bytes"]) for o in row.get("outputs", []))

    def append(self, row: dict) -> None:
        line = json.dumps(row, separators=(",", ":")) + "\n"
        self.rows[row["input"]] = row
        if self.out.local is not None:
            if self._f is None:
                self._f = open(self.out.local / STATE_DIR / MANIFEST, "a", encoding="utf-8")
            self._f.write(line)
            self._f.flush()
        else:
            self._pending.append(line)
            if time.monotonic() - self._last_flush > self.shard_seconds:
                self.flush()

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()
            with contextlib.suppress(OSError):
                os.fsync(self._f.fileno())
        if self._pending:
            key = f"{self.out.path}/{STATE_DIR}/manifest/{self.run_id}-{self._shard:06d}.jsonl"
            self.out.fs.pipe_file(key, "".join(self._pending).encode("utf-8"))
            self._pending.clear()
            self._shard += 1
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        if self._f is not None:
            self._f.close()
            self._f = None


# ----------------------------------------------------------------------------- the per-image job

@dataclass
class JobSpec:
    """Everything a worker needs to build its ReliefJob (picklable: goes to processes and Ray actors)."""

    options: ConvertOptions
    formats: list[str]
    out_root: str


class ReliefJob:
    """The unit of work every engine runs: setup() once per worker, then decode -> compute -> write per item."""

    def __init__(self, spec: JobSpec):
        self.spec = spec
        self.opts = spec.options
        self.formats = spec.formats
        self.out = OutputTree(spec.out_root)

    def setup(self) -> None:
        """Load what the depth stage needs (models, kernels) once, by running it on a tiny image."""
        y, x = np.mgrid[0:16, 0:16].astype(np.uint8)
        warm = Image(pixels=np.ascontiguousarray(np.stack([x * 8, y * 8, x + y], axis=2)))
        build_mesh(warm, self.opts, StageTimer())

    def decode(self, item: BatchItem, timer: StageTimer) -> Image:
        with timer.stage("decode"):
            if is_url(item.src):
                fs, path, local = url_fs(item.src)
                if local is not None:
                    return load_image(local, frame=self.opts.frame, max_pixels=self.opts.max_pixels)
                try:
                    data = fs.cat_file(path)
                except FileNotFoundError as exc:
                    raise InputMissingError(f"{item.src}: no such object; check the URL", path=item.src) from exc
                if not data:
                    raise InputMissingError(f"{item.src}: the file is empty (0 bytes)", path=item.src)
                return decode_image(
                    PurePosixPath(path).name, data, frame=self.opts.frame, max_pixels=self.opts.max_pixels
                )
            return load_image(item.src, frame=self.opts.frame, max_pixels=self.opts.max_pixels)

    def compute(self, image: Image, timer: StageTimer) -> dict:
        """Image -> {format: Product}: the device stage, one depth + heightfield for every format
        (one surface mesh for the glTF formats, one solid for the print formats, one texture)."""
        return make_products(image, self.opts, self.formats, timer)[0]

    def write(self, item: BatchItem, image: Image, products: dict, timer: StageTimer) -> list[dict]:
        outputs = []
        with timer.stage("write"):
            for fmt, rel in self.out.targets(item, self.formats):
                def write_fn(path: Path, fmt: str) -> list[Path]:
                    p = products[fmt]
                    return write_mesh(path, fmt, p.mesh, p.texture, image, self.opts, colors=p.colors)[0]

                src = None if is_url(item.src) else item.src
                written = self.out.write(rel, fmt, write_fn, source=src, options=self.opts)
                outputs += [{"path": p, "bytes": n} for p, n in written]
        return outputs

    def finish(self, item: BatchItem, image: Image, products: dict, timer: StageTimer, t0: float) -> dict:
        """Write every format of one item -> its result row."""
        outputs = self.write(item, image, products, timer)
        return ok_row(item, timer, t0, outputs, products[self.formats[0]].mesh, image)

    def process(self, item: BatchItem) -> dict:
        """One item start to finish (what a Ray actor or a serial loop calls) -> result row; never raises."""
        timer = StageTimer()
        t0 = time.perf_counter()
        try:
            check_item(item)
            image = self.decode(item, timer)
            return self.finish(item, image, self.compute(image, timer), timer, t0)
        except BaseException as exc:  # noqa: BLE001 - a bad file fails alone
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return error_row(item, timer, t0, exc)


def check_item(item: BatchItem) -> None:
    if item.collision:
        raise OutputError(
            f"{item.src}: {item.collision}; rename one of them or choose another -o", path=item.src,
        )


def _base_row(item: BatchItem, timer: StageTimer, t0: float) -> dict:
    return {
        "index": item.index, "input": item.src, "rel": item.rel, "size": item.size, "mtime": item.mtime,
        "timings": {k: round(v, 6) for k, v in timer.timings.items()}, "seconds": round(time.perf_counter() - t0, 6),
    }


def ok_row(item, timer, t0, outputs, mesh, image) -> dict:
    row = _base_row(item, timer, t0)
    row.update(
        status="ok", outputs=outputs, bytes=sum(o["bytes"] for o in outputs), error=None,
        vertex_count=mesh.vertex_count, triangle_count=mesh.triangle_count, image_size=[image.width, image.height],
    )
    if mesh.extras.get("notes"):  # e.g. a likely no-data value left in a --depth-map
        row["notes"] = list(mesh.extras["notes"])
    if mesh.extras.get("quality_pass") is not None:  # an adaptive mesh: its measured error and the pass that ran
        measured = mesh.extras.get("max_error")
        row.update(max_error=None if measured is None else float(measured), max_error_units=mesh.units,
                   quality_pass=mesh.extras["quality_pass"])
    return row


def error_message(exc: BaseException) -> str:
    if isinstance(exc, GpureliefError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; lower --max-size or --max-pixels"
    return f"internal error: {type(exc).__name__}: {exc}"


def error_row(item, timer, t0, exc: BaseException) -> dict:
    row = _base_row(item, timer, t0)
    row.update(status="error", outputs=[], bytes=0, error=error_message(exc), error_type=type(exc).__name__)
    return row


# ----------------------------------------------------------------------------- local engine: worker side

_STOP = threading.Event()  # set by SIGINT in a worker process: finish what is in flight, take nothing new


def _on_sigint(signum, frame) -> None:
    _STOP.set()


def _on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds atomic_open, which deletes its temp file


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the driver dies, so a killed batch leaves no orphan writing files."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def worker_loop(wid: int, job: ReliefJob, tasks, results, stop: threading.Event, io_threads: int = 1) -> None:
    """tasks: queue of BatchItem (None = end). results: ('start'|'done', wid, index|row).

    Three overlapped stages: `io_threads` decode threads -> the device stage in this thread -> `io_threads`
    writer threads, joined by queues of one slot.
    """
    decoded: queue.Queue = queue.Queue(maxsize=1)
    meshed: queue.Queue = queue.Queue(maxsize=1)

    def decode_stage():
        while True:
            try:
                item = tasks.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set():
                    break
                continue
            if item is None:
                tasks.put(None)  # the other decode threads end too
                break
            if stop.is_set():
                break
            results.put(("start", wid, item.index))
            timer, t0 = StageTimer(), time.perf_counter()
            try:
                check_item(item)
                decoded.put((item, timer, t0, job.decode(item, timer), None))
            except Exception as exc:  # noqa: BLE001
                decoded.put((item, timer, t0, None, exc))
        decoded.put(None)

    def write_stage():
        while (got := meshed.get()) is not None:
            item, timer, t0, image, result, exc = got
            if exc is None:
                try:
                    row = job.finish(item, image, result, timer, t0)
                except Exception as e:  # noqa: BLE001
                    row = error_row(item, timer, t0, e)
            else:
                row = error_row(item, timer, t0, exc)
            del got, image, result
            results.put(("done", wid, row))

    readers = [threading.Thread(target=decode_stage, name=f"decode-{wid}.{i}", daemon=True) for i in range(io_threads)]
    writers = [threading.Thread(target=write_stage, name=f"write-{wid}.{i}", daemon=True) for i in range(io_threads)]
    for t in readers + writers:
        t.start()
    ended = 0
    while ended < io_threads:
        got = decoded.get()
        if got is None:
            ended += 1
            continue
        item, timer, t0, image, exc = got
        result = None
        if exc is None:
            try:
                result = job.compute(image, timer)
            except Exception as e:  # noqa: BLE001 (MemoryError included)
                exc = e
        meshed.put((item, timer, t0, image, result, exc))
        del got, image, result
    for _ in writers:
        meshed.put(None)
    for t in writers + readers:
        t.join()


class _ResultSender:
    """A worker's own result channel to the driver: one pipe per worker, so a worker killed in the middle of a
    message (OOM killer, SIGKILL) can only break its own pipe. A queue shared by all workers would stay locked
    by the dead writer and hang every other worker and the driver. put() is called from several threads."""

    def __init__(self, conn) -> None:
        self.conn, self.lock = conn, threading.Lock()

    def put(self, msg) -> None:
        with self.lock:
            self.conn.send(msg)


def receive_ready(conns: dict, timeout: float, only: list[int] | None = None) -> list:
    """Driver side of the _ResultSender pipes: the messages ready on conns {wid: connection} (all, or `only`
    those wids), waiting up to timeout. A pipe at end-of-file, even one cut in the middle of a message by a
    killed worker, is closed and dropped from conns: nothing more will come from it."""
    from multiprocessing.connection import wait

    watched = {conns[w]: w for w in (conns if only is None else only) if w in conns}
    if not watched:
        time.sleep(timeout)
        return []
    msgs = []
    for conn in wait(list(watched), timeout=timeout):
        try:
            msgs.append(conn.recv())
        except (EOFError, OSError):
            conns.pop(watched[conn]).close()
    return msgs


def _worker_process(wid: int, spec: JobSpec, tasks, results_conn, parent_pid: int, io_threads: int = 1) -> None:
    results = _ResultSender(results_conn)
    _die_with_parent()
    if os.getppid() != parent_pid:  # the driver died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        job = ReliefJob(spec)
        job.setup()
    except BaseException as exc:  # noqa: BLE001
        status = int(getattr(exc, "exit_status", 1))
        results.put(("fatal", wid, (error_message(exc), status)))
        return
    results.put(("ready", wid, None))
    worker_loop(wid, job, tasks, results, _STOP, io_threads)
    results.put(("exit", wid, None))


# ----------------------------------------------------------------------------- local engine: driver side

class LocalEngine:
    """N worker processes (or, for workers=1, the three stages as threads in this process).

    Each worker holds at most `window` items (its queue + its pipeline), the driver hands out the
    next item to the least-loaded worker; a worker that dies is replaced and its items retried once.
    """

    name = "local"

    def __init__(self, spec: JobSpec, *, workers: int = 0, io_threads: int = 0, window: int = 0):
        self.spec = spec
        self.workers = max(1, workers or default_workers())
        # one process owning the device wants more than one decoder/writer to keep it fed
        self.io_threads = max(1, io_threads or (2 if self.workers == 1 else 1))
        self.window = max(1, window or 2 * self.io_threads + 1)
        self.stop = threading.Event()

    def request_stop(self) -> None:
        self.stop.set()

    def run(self, items: list[BatchItem]) -> Iterator[dict]:
        if not items:
            return
        if self.workers == 1:
            yield from self._run_inline(items)
        else:
            yield from self._run_pool(items)

    def _run_inline(self, items: list[BatchItem]) -> Iterator[dict]:
        job = ReliefJob(self.spec)
        job.setup()
        tasks: queue.Queue = queue.Queue(maxsize=self.window)
        results: queue.Queue = queue.Queue()
        stop = threading.Event()
        worker = threading.Thread(target=worker_loop, args=(0, job, tasks, results, stop, self.io_threads),
                                  daemon=True)
        worker.start()
        todo = iter(items)
        outstanding = 0
        fed_all = False
        while True:
            if self.stop.is_set():
                stop.set()
            while not fed_all and not stop.is_set() and outstanding < self.window:
                item = next(todo, None)
                if item is None:
                    tasks.put(None)
                    fed_all = True
                    break
                tasks.put(item)
                outstanding += 1
            try:
                kind, _, payload = results.get(timeout=0.1)
            except queue.Empty:
                if not worker.is_alive():
                    break
                continue
            if kind == "done":
                outstanding -= 1
                yield payload

    def _run_pool(self, items: list[BatchItem]) -> Iterator[dict]:
        import multiprocessing as mp

        from .errors import ExitStatus

        ctx = mp.get_context("spawn")
        conns: dict[int, object] = {}                  # wid -> the driver's end of its result pipe
        procs: dict[int, tuple] = {}                   # wid -> (process, its task queue)
        assigned: dict[int, dict[int, BatchItem]] = {}  # wid -> items handed to it and not done yet
        ended: set[int] = set()                         # workers that got their end-of-input marker
        todo = list(reversed(items))                    # pop() from the end = input order
        stopping = False
        next_wid = 0

        def start_worker() -> None:
            nonlocal next_wid
            wid, next_wid = next_wid, next_wid + 1
            tasks = ctx.Queue()
            receiver, sender = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker_process, args=(wid, self.spec, tasks, sender, os.getpid(), self.io_threads),
                            daemon=True, name=f"gpurelief-worker-{wid}")
            p.start()
            sender.close()  # the worker holds the only write end: its death reads as end-of-file here
            procs[wid], assigned[wid], conns[wid] = (p, tasks), {}, receiver

        def handle(msg) -> dict | None:
            kind, wid, payload = msg
            if kind == "done":
                assigned.get(wid, {}).pop(payload["index"], None)
                return payload
            if kind == "fatal":
                err = GpureliefError(f"a worker could not start: {payload[0]}")
                err.exit_status = ExitStatus(payload[1])  # the exit code of the error in the worker
                raise err
            if kind == "exit":
                p, _ = procs.pop(wid)
                p.join(timeout=5)
                if not stopping:
                    todo.extend(assigned.pop(wid, {}).values())
            return None

        for _ in range(min(self.workers, len(items))):
            start_worker()
        last_check = time.monotonic()
        try:
            while procs:
                if self.stop.is_set() and not stopping:
                    stopping = True
                    for p, _ in procs.values():
                        with contextlib.suppress(OSError):
                            os.kill(p.pid, signal.SIGINT)  # finish what is in flight, take nothing new
                if not stopping:  # hand out work: least-loaded first, at most `window` items per worker
                    for wid in sorted(procs, key=lambda w: len(assigned[w])):
                        if wid in ended:
                            continue
                        tasks = procs[wid][1]
                        while todo and len(assigned[wid]) < self.window:
                            item = todo.pop()
                            assigned[wid][item.index] = item
                            tasks.put(item)
                        if not todo:
                            tasks.put(None)
                            ended.add(wid)
                for msg in receive_ready(conns, 0.2):
                    row = handle(msg)
                    if row is not None:
                        yield row
                if time.monotonic() - last_check < 0.5:
                    continue
                last_check = time.monotonic()
                dead = [w for w, (p, _) in procs.items() if p.exitcode is not None]
                if not dead:
                    continue
                while any(w in conns for w in dead):  # what a dead worker sent before it died: take it first
                    for msg in receive_ready(conns, 0.05, only=dead):
                        row = handle(msg)
                        if row is not None:
                            yield row
                for wid in dead:  # killed (OOM killer, segfault): retry its items once, on a new worker
                    if wid not in procs:
                        continue  # it exited normally, handled above
                    p, _ = procs.pop(wid)
                    lost = assigned.pop(wid, {})
                    if stopping:
                        continue
                    for item in sorted(lost.values(), key=lambda it: -it.index):
                        item.attempts += 1
                        if item.attempts >= 2:
                            yield error_row(item, StageTimer(), time.perf_counter(), GpureliefError(
                                f"{item.src}: the worker process died (exit code {p.exitcode}) twice while "
                                "converting this file; it may be too large for memory (try --max-size)"))
                        else:
                            todo.append(item)
                    if todo:
                        start_worker()  # the others may already have their end-of-input marker
        finally:
            deadline = time.monotonic() + 10
            for p, tasks in procs.values():
                with contextlib.suppress(Exception):
                    tasks.put(None)
            for p, _ in procs.values():
                p.join(timeout=max(0.1, deadline - time.monotonic()))
                if p.is_alive():
                    p.terminate()  # SIGTERM -> SystemExit in the worker: its temp files are removed
                    p.join(timeout=5)
            for conn in conns.values():
                conn.close()


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# ----------------------------------------------------------------------------- progress and report

class Progress:
    """A one-line bar on a terminal (files, images/s, ETA, failures), plain periodic log lines otherwise."""

    def __init__(self, total: int, *, mode: str = "auto", stream=None, every_s: float = 10.0, verbose: bool = False):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "log"
        self.mode, self.total, self.every_s, self.verbose = mode, total, every_s, verbose
        self.done = self.failed = self.skipped = 0
        self.t0 = time.monotonic()
        self._last = 0.0

    def rate(self) -> float:
        dt = time.monotonic() - self.t0
        return (self.done - self.skipped) / dt if dt > 0 else 0.0

    def line(self) -> str:
        r = self.rate()
        left = self.total - self.done
        eta = left / r if r > 0 else float("nan")
        eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) else "--:--:--"
        return f"{self.done}/{self.total} files  {r:.2f} img/s  ETA {eta_s}  failures {self.failed}"

    def update(self, row: dict) -> None:
        self.done += 1
        if row["status"] == "error":
            self.failed += 1
            msg = row["error"] if row["error"].startswith(row["input"]) else f"{row['input']}: {row['error']}"
            self._print_above(f"FAILED {msg}")
        elif row["status"] == "skipped":
            self.skipped += 1
        elif self.verbose:
            self._print_above(f"ok {row['input']} ({row['seconds']:.2f}s, {row['bytes'] / 1e6:.1f} MB)")
        self.tick()

    def _print_above(self, text: str) -> None:
        if self.mode == "none":
            return
        if self.mode == "bar":
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self._last = 0.0

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.mode == "bar" and (force or now - self._last > 0.1):
            frac = self.done / self.total if self.total else 1.0
            width = 24
            fill = int(round(frac * width))
            self.stream.write(f"\r\x1b[2K[{'#' * fill}{'.' * (width - fill)}] {self.line()}")
            self.stream.flush()
            self._last = now
        elif self.mode == "log" and (force or now - self._last > self.every_s):
            if self._last or force:
                self.stream.write(f"gpurelief: {self.line()}\n")
                self.stream.flush()
            self._last = now

    def close(self) -> None:
        if self.mode == "bar":
            self.tick(force=True)
            self.stream.write("\n")
        elif self.mode == "log":
            self.tick(force=True)
        self.stream.flush()


class ReportWriter:
    """Streams rows to a temp file (memory stays flat), then writes {"summary": ..., "files": [...]} atomically."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self._tmp = tempfile.TemporaryFile("w+", encoding="utf-8") if self.path else None
        self._n = 0

    def add(self, row: dict) -> None:
        if self._tmp is not None:
            self._tmp.write(("" if self._n == 0 else ",\n") + json.dumps(row, separators=(",", ":")))
            self._n += 1

    def finish(self, summary: dict) -> None:
        if self._tmp is None:
            return
        self._tmp.seek(0)
        with atomic_open(self.path) as f:
            f.write(b'{"summary": ' + json.dumps(summary, indent=1).encode("utf-8") + b',\n"files": [\n')
            while block := self._tmp.read(1 << 20):
                f.write(block.encode("utf-8"))
            f.write(b"\n]}\n")
        self._tmp.close()


# ----------------------------------------------------------------------------- the batch driver

@dataclass
class BatchResult:
    summary: dict
    exit_status: int
    interrupted: bool = False
    aborted: bool = False


def _peak_rss_mb() -> dict:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"driver": round(own, 1), "largest_worker": round(kids, 1)}


def run_batch(
    inputs: Iterable[str],
    out_dir: str | os.PathLike,
    options: ConvertOptions | None = None,
    *,
    formats: Iterable[str] | str = ("glb",),
    workers: int = 0,
    io_threads: int = 0,
    engine: str = "local",
    address: str | None = None,
    resume: bool = False,
    fingerprint_mode: str = "stat",
    report: str | os.PathLike | None = None,
    max_failures: int | None = None,
    progress: str = "auto",
    verbose: bool = False,
    stream=None,
    handle_sigint: bool = True,
) -> BatchResult:
    """INPUTS -> OUT_DIR (mirrored tree, one output per format per image); -> BatchResult with the summary.

    A bad file fails alone (an error row). exit_status: 0 all done, ExitStatus.PARTIAL some failed,
    ExitStatus.INTERRUPTED stopped by Ctrl-C (rerun with resume=True to continue).
    """
    from .errors import ExitStatus

    stream = stream or sys.stderr
    opts = (options or ConvertOptions()).validate()
    formats = parse_formats(formats)
    if fingerprint_mode not in ("stat", "sha256"):
        raise OptionError(f"--fingerprint: expected stat or sha256, got {fingerprint_mode!r}")
    if max_failures is not None and max_failures < 1:
        raise OptionError(f"--max-failures: expected at least 1, got {max_failures}")
    check_format_options(opts, formats)  # e.g. --lithophane with glb: refused before any work
    if report:
        check_output_path(report)  # before hours of work, not after
    out = OutputTree(out_dir)
    t_start = time.perf_counter()
    items = collect_inputs(inputs, str(out_dir))
    out.prepare()
    mark_input_overwrites(items, out, formats)
    ohash = options_hash(opts, formats)
    manifest = Manifest(out).load()
    if resume:
        out.clean_stale_parts()
    pending, skipped_rows = [], []
    for it in items:
        fingerprint(it, fingerprint_mode)
        if resume and manifest.is_done(it, ohash):
            prev = manifest.rows[it.key]
            skipped_rows.append({
                "index": it.index, "input": it.src, "rel": it.rel, "size": it.size, "mtime": it.mtime,
                "status": "skipped", "outputs": prev.get("outputs", []), "bytes": 0, "error": None,
                "timings": {}, "seconds": 0.0,
            })
        else:
            pending.append(it)
    spec = JobSpec(options=opts, formats=formats, out_root=str(out))
    if engine == "local":
        if not workers and str(getattr(opts, "device", None) or "cpu") not in ("cpu", "auto"):
            workers = 1  # one process owns the GPU; its decode and write threads overlap with it
        runner = LocalEngine(spec, workers=workers, io_threads=io_threads)
    elif engine == "ray":
        require("ray", "ray", purpose="--engine ray")
        from . import batch_ray

        runner = batch_ray.RayEngine(spec, address=address, workers=workers)
    else:
        raise OptionError(f"--engine: expected local or ray, got {engine!r}")

    bar = Progress(len(items), mode=progress, stream=stream, verbose=verbose)
    rep = ReportWriter(report)
    stats = {"ok": 0, "error": 0, "skipped": 0, "bytes": 0, "stage_s": dict.fromkeys(STAGES, 0.0)}
    aborted = False

    def record(row: dict) -> None:
        stats[row["status"]] += 1
        stats["bytes"] += row.get("bytes", 0)
        for k, v in row.get("timings", {}).items():
            stats["stage_s"][k] = stats["stage_s"].get(k, 0.0) + v
        if row["status"] == "ok":
            manifest.append({
                "input": row["input"], "rel": row["rel"], "size": row["size"], "mtime": row["mtime"],
                "options": ohash, "status": "ok", "outputs": row["outputs"], "seconds": row["seconds"],
            })
        rep.add(row)
        bar.update(row)

    old_handler = None
    presses = 0

    def on_sigint(signum, frame):
        nonlocal presses
        presses += 1
        if presses > 1:
            raise KeyboardInterrupt
        runner.request_stop()
        bar._print_above("gpurelief: stopping after the files in flight (Ctrl-C again to quit at once)")

    if handle_sigint and threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        for row in skipped_rows:
            record(row)
        for row in runner.run(pending):
            record(row)
            if max_failures is not None and stats["error"] >= max_failures and not aborted:
                aborted = True
                bar._print_above(f"gpurelief: {stats['error']} files failed (--max-failures {max_failures}); aborting")
                runner.request_stop()
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
        manifest.close()
        bar.close()
    interrupted = runner.stop.is_set() and not aborted
    wall = time.perf_counter() - t_start
    converted = stats["ok"] + stats["error"]
    summary = {
        "gpurelief": __version__,
        "engine": runner.name,
        "workers": runner.workers,
        "out_dir": str(out),
        "formats": formats,
        "options_hash": ohash,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()},
        "total": len(items),
        "ok": stats["ok"],
        "failed": stats["error"],
        "skipped": stats["skipped"],
        "not_run": len(items) - stats["ok"] - stats["error"] - stats["skipped"],
        "interrupted": interrupted,
        "aborted": aborted,
        "wall_s": round(wall, 3),
        "images_per_s": round(converted / wall, 3) if wall > 0 else 0.0,
        "bytes_written": stats["bytes"],
        "mb_per_s": round(stats["bytes"] / 1e6 / wall, 3) if wall > 0 else 0.0,
        "stage_mean_s": {k: round(v / converted, 6) for k, v in stats["stage_s"].items() if converted},
        "peak_rss_mb": _peak_rss_mb(),
    }
    rep.finish(summary)
    if interrupted:
        status = ExitStatus.INTERRUPTED
    elif stats["error"] or aborted:
        status = ExitStatus.PARTIAL
    else:
        status = ExitStatus.OK
    return BatchResult(summary=summary, exit_status=int(status), interrupted=interrupted, aborted=aborted)
