"""Where gpurelief keeps downloaded models and built engines, and how it downloads them.

Home: $GPURELIEF_HOME, else the user's cache dir (~/.cache/gpurelief on Linux, ~/Library/Caches/gpurelief
on macOS, %LOCALAPPDATA%\\gpurelief on Windows). models/ holds .onnx files, engines/ TensorRT caches.
Downloads go to NAME.part, resume with an HTTP Range request, are checked against the registry's sha256
and only then renamed into place, so a model file in the cache is always complete.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from ..errors import ModelError
from ..paths import home_dir  # noqa: F401  (re-exported: cache.home_dir)
from .registry import ModelSpec

CHUNK = 1 << 20
TIMEOUT_S = 30.0


def models_dir() -> Path:
    return home_dir() / "models"


def engines_dir() -> Path:
    return home_dir() / "engines"


def model_path(spec: ModelSpec) -> Path:
    return models_dir() / spec.filename


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _tofu_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded_sha256(path: Path) -> str | None:
    """The hash recorded at download time for a model without a pinned hash (trust on first use)."""
    p = _tofu_path(path)
    return p.read_text().split()[0] if p.exists() else None


def record_sha256(path: Path, digest: str | None = None) -> str:
    """Write NAME.onnx.sha256 (trust on first use) for a file whose hash the registry does not pin."""
    digest = digest or sha256_file(path)
    _tofu_path(path).write_text(f"{digest}  {path.name}  (recorded on first use; not pinned)\n")
    return digest


def expected_sha256(spec: ModelSpec, path: Path) -> str | None:
    return spec.sha256 or recorded_sha256(path)


def verify(spec: ModelSpec, path: Path) -> str:
    """Check a cached file against the pinned (or recorded) sha256; -> 'verified', 'recorded' or 'unverified'."""
    expected = expected_sha256(spec, path)
    if expected is None:
        return "unverified"
    st = path.stat()
    stamp = f"{st.st_size} {st.st_mtime_ns} {expected}"
    marker = path.with_name(path.name + ".verified")
    if marker.exists() and marker.read_text() == stamp:  # hashed before and untouched since: skip re-hashing
        return "verified" if spec.sha256 else "recorded"
    got = sha256_file(path)
    if got != expected:
        raise ModelError(
            f"{path}: sha256 {got} does not match the expected {expected} for {spec.name}; the file is damaged "
            f"or not this model: delete it and run `gpurelief models pull {spec.name}`"
        )
    marker.write_text(stamp)
    return "verified" if spec.sha256 else "recorded"


def _offline_error(spec: ModelSpec, dest: Path, why: str) -> ModelError:
    return ModelError(
        f"{spec.name}: cannot download {spec.url} ({why}). Offline? Download that file by other means and "
        f"put it at {dest} (or set GPURELIEF_HOME), then rerun; a partial download is resumed"
    )


def download(
    spec: ModelSpec,
    *,
    allow_unverified: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> Path:
    """Fetch spec.url into the cache (resuming NAME.part), verify it, -> the final path.

    Without a pinned sha256 it refuses unless allow_unverified, and then records the hash it saw.
    """
    dest = model_path(spec)
    if dest.exists():
        verify(spec, dest)
        return dest
    if spec.sha256 is None and not allow_unverified:
        raise ModelError(
            f"{spec.name}: no sha256 is pinned for {spec.url}, so the download cannot be verified; "
            "pass --allow-unverified to download it anyway (its hash is recorded and checked from then on)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if spec.size_bytes is not None and have > spec.size_bytes:  # cannot be a prefix of the pinned file
        part.unlink()
        have = 0
    req = urllib.request.Request(spec.url, headers={"User-Agent": "gpurelief"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our .part is already the whole file (or longer): check it below
            resp = None
        else:
            raise _offline_error(spec, dest, f"HTTP {exc.code} {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, timeout, reset
        raise _offline_error(spec, dest, str(getattr(exc, "reason", exc))) from exc
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # server ignored Range: start over
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            got = have
            try:
                with open(part, "ab" if have else "wb") as f:
                    while True:
                        block = resp.read(CHUNK)
                        if not block:
                            break
                        f.write(block)
                        got += len(block)
                        if progress:
                            progress(got, total)
            except (OSError, http.client.HTTPException) as exc:
                raise ModelError(
                    f"{spec.name}: the download from {spec.url} stopped at {got:,} bytes ({exc}); "
                    f"rerun `gpurelief models pull {spec.name}` to resume"
                ) from exc
            if total is not None and got < total:
                raise ModelError(
                    f"{spec.name}: the download from {spec.url} stopped at {got:,} of {total:,} bytes; "
                    f"rerun `gpurelief models pull {spec.name}` to resume"
                )
    if spec.size_bytes is not None and part.stat().st_size != spec.size_bytes:
        size = part.stat().st_size
        part.unlink()
        raise ModelError(
            f"{spec.name}: the file downloaded from {spec.url} is {size:,} bytes, expected {spec.size_bytes:,}; "
            "it was deleted. Retry; if it persists the upstream file changed and the registry needs updating"
        )
    digest = sha256_file(part)
    if spec.sha256 is not None and digest != spec.sha256:
        part.unlink()
        raise ModelError(
            f"{spec.name}: the file downloaded from {spec.url} has sha256 {digest}, expected {spec.sha256}; "
            "it was deleted. Retry; if it persists the upstream file changed and the registry needs updating"
        )
    os.replace(part, dest)
    if spec.sha256 is None:
        record_sha256(dest, digest)
    return dest


def locate(spec: ModelSpec) -> Path:
    """The cached file of a registry model, verified; ModelError naming pull/URL/path when it is absent."""
    dest = model_path(spec)
    if not dest.exists():
        size = f", about {spec.size_mb:g} MB" if spec.size_mb else ""
        raise ModelError(
            f"{spec.name}: not downloaded yet; run `gpurelief models pull {spec.name}` or put {spec.url}{size} at {dest}"
        )
    if verify(spec, dest) == "unverified":  # put there by hand, no pinned hash: record it, check it from now on
        record_sha256(dest)
    return dest
