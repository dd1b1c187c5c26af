"""Where gpurelief keeps its caches: one home for models, engines and compiled kernels."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def home_dir() -> Path:
    """$GPURELIEF_HOME, else the user's cache dir + /gpurelief (~/.cache/gpurelief on Linux,
    ~/Library/Caches/gpurelief on macOS, %LOCALAPPDATA%/gpurelief on Windows)."""
    env = os.environ.get("GPURELIEF_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gpurelief"
