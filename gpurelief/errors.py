"""Error tree: every failure a user can cause maps to one class, one exit code and one line.

Each class is still catchable as the matching builtin (InputError is a ValueError, ...), so library
users can handle them without importing gpurelief.errors.
"""
from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes of the CLI; one per kind of failure so scripts can branch on them."""

    OK = 0
    INTERNAL = 1          # a bug: please report it (run with --traceback)
    USAGE = 2             # bad command line (argparse uses 2 as well)
    INPUT_MISSING = 3     # the input path does not exist / is a directory / is empty
    INPUT_UNREADABLE = 4  # not an image, truncated, corrupt, unsupported format
    INPUT_TOO_LARGE = 5   # decompression-bomb guard
    INPUT_TOO_SMALL = 6   # fewer than 2x2 pixels
    OUTPUT = 7            # the output cannot be written
    OPTION = 8            # an option value is out of range or inconsistent
    DEPENDENCY = 9        # an optional dependency (extra) is missing
    MODEL = 10            # a depth model is missing, corrupt or of the wrong shape
    DEVICE = 11           # GPU / CUDA problem
    PARTIAL = 12          # a batch where some files failed
    INTERRUPTED = 130     # Ctrl-C


class GpureliefError(Exception):
    """Base class. `str(err)` is the one line shown to the user: what, where, and the fix."""

    exit_status: ExitStatus = ExitStatus.INTERNAL

    def __init__(self, message: str, *, path: object | None = None):
        super().__init__(message)
        self.path = path


class InputError(GpureliefError, ValueError):
    """The input file cannot be used (unreadable, corrupt, unsupported)."""

    exit_status = ExitStatus.INPUT_UNREADABLE


class InputMissingError(InputError, FileNotFoundError):
    """The input path does not exist, is a directory, or is empty."""

    exit_status = ExitStatus.INPUT_MISSING


class ImageTooLargeError(InputError):
    """More pixels than the decompression-bomb guard allows."""

    exit_status = ExitStatus.INPUT_TOO_LARGE


class ImageTooSmallError(InputError):
    """Fewer than 2x2 pixels: no cell to triangulate."""

    exit_status = ExitStatus.INPUT_TOO_SMALL


class OutputError(GpureliefError, OSError):
    """The output cannot be written (missing folder, permissions, disk full, size limits)."""

    exit_status = ExitStatus.OUTPUT


class OptionError(GpureliefError, ValueError):
    """An option is out of range or contradicts another."""

    exit_status = ExitStatus.OPTION


class DependencyError(GpureliefError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    exit_status = ExitStatus.DEPENDENCY


class ModelError(GpureliefError, ValueError):
    """A depth model is missing, corrupt, or does not produce a depth map."""

    exit_status = ExitStatus.MODEL


class DeviceError(GpureliefError, RuntimeError):
    """The GPU path cannot run (no device, no CuPy, out of memory, kernel compile failure)."""

    exit_status = ExitStatus.DEVICE


def require(module: str, extra: str, *, purpose: str):
    """Import an optional dependency or raise DependencyError naming the pip extra that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{purpose} needs the Python package '{module.split('.')[0]}' ({exc}); "
            f"install it with: pip install 'gpurelief[{extra}]'"
        ) from exc
