"""--preset: named bundles of resolution, mesher, error, compression and texture size for one destination.

On the command line a preset fills every option not given explicitly (cli.apply_cli_preset); through the
Python API (ConvertOptions(preset=...)) it fills the options still at their default values.
"""
from __future__ import annotations

from dataclasses import fields, replace

from .errors import OptionError

PRESETS: dict[str, dict] = {
    # browsers / three.js / model-viewer: error-bounded mesh, meshopt streams, texture <= 4096
    "web": {"max_size": 2048, "mesh": "adaptive", "max_error": "0.1%", "compress": "meshopt", "texture_max": 4096},
    # Scene Viewer / Quick Look class devices: <= 100k triangles (+ the full quality pass: fewest triangles, and a
    # 1024 px grid keeps it under a second or two), texture <= 2048^2 JPEG, one UV set,
    # plain float streams (no extension a phone viewer might lack)
    "ar": {
        "max_size": 1024, "mesh": "adaptive", "max_error": "0.2%", "max_triangles": 100_000, "quality_pass": "full",
        "compress": "none",
        "texture_max": 2048, "texture_format": "jpeg",
    },
    # 3D printing: every pixel, tight error (0.02% of the relief), float streams, modest texture; at most 2M
    # triangles (the error rises only where needed): a grainy 12 MP photo needs 21M at 0.02% (a 1 GB STL,
    # refused), 2M is a ~100 MB STL that slicers load, with 1.5% of the relief as its error there
    "print": {"max_size": None, "mesh": "adaptive", "max_error": "0.02%", "max_triangles": 2_000_000,
              "compress": "none", "texture_max": 2048},
    # keep everything: full-resolution grid, lossless float geometry, the photo's own texture bytes
    "archive": {"max_size": None, "mesh": "grid", "compress": "none", "texture_max": None, "texture_format": "auto"},
}


def apply_preset(opts):
    """ConvertOptions with opts.preset set -> ConvertOptions with the preset's values where opts has defaults."""
    if not opts.preset:
        return opts
    if opts.preset not in PRESETS:
        raise OptionError(f"--preset: expected one of {', '.join(PRESETS)}, got {opts.preset!r}")
    defaults = {f.name: f.default for f in fields(type(opts))}
    changes = {k: v for k, v in PRESETS[opts.preset].items() if getattr(opts, k) == defaults[k]}
    return replace(opts, preset=None, **changes)
