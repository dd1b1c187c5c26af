"""Benchmarks (pytest-benchmark); not part of the default test run. Height maps come from tests/heightmaps.py."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
