"""Write-to-temp-then-rename, so a failed or interrupted run never leaves a partial output file."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from ..errors import OutputError


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early (before any work) when the output cannot be written; -> Path."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name such as {path / 'relief.glb'}", path=path)
    if not parent.exists():
        raise OutputError(
            f"{path}: the folder {parent} does not exist; create it (mkdir -p {parent}) or choose another output",
            path=path,
        )
    if not parent.is_dir():
        raise OutputError(f"{path}: {parent} is not a folder; choose another output path", path=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {parent} is not writable; choose another output or fix its permissions", path=path)
    return path


def _os_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"{path}: the disk is full; free space or write elsewhere", path=path)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{path}: permission denied ({exc.strerror}); choose another output", path=path)
    if exc.errno == errno.ENOENT:
        return OutputError(f"{path}: the folder {path.parent} does not exist; create it first", path=path)
    return OutputError(f"{path}: cannot be written ({exc.strerror or exc})", path=path)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike):
    """Context manager -> binary file object on a temp file beside `path`, renamed onto it on success."""
    path = Path(path)
    check_output_path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    except OSError as exc:
        raise _os_error(path, exc) from exc
    ok = False
    try:
        with os.fdopen(fd, "wb", buffering=0) as f:
            yield f
        # match what a plain open() would have created (mkstemp uses 0600)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        ok = True
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise _os_error(path, exc) from exc
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
