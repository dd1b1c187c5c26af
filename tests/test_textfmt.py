"""writers/textfmt.py: vectorised number printing agrees with Python's own formatting."""
from __future__ import annotations

import numpy as np
import pytest

from gpurelief.writers import textfmt
from gpurelief.writers.textfmt import float_decimals, format_table, iter_hex_rows


def test_integers_print_exactly_like_percent_d(monkeypatch):
    monkeypatch.setattr(textfmt, "_BLOCK_ROWS", 1000)  # several blocks
    rng = np.random.default_rng(0)
    values = np.concatenate([[0, 1, 9, 10, 99, 100, 4294967295, -1, -10, -12345],
                             rng.integers(-10**12, 10**12, 3000), rng.integers(0, 20, 3000)])
    other = values[::-1].copy()
    text = format_table(["f ", "/", "\n"], [values, other], [0, 0])
    assert text == "".join(f"f {a}/{b}\n" for a, b in zip(values.tolist(), other.tolist())).encode()


@pytest.mark.parametrize("decimals", [1, 4, 6])
def test_floats_print_fixed_point_like_python_away_from_ties(decimals):
    rng = np.random.default_rng(decimals)
    values = np.concatenate([[0.0, -0.0, 1.0, -1.0, 0.5, 7.0, 150.0, -75.25, 0.0012, -0.0012],
                             rng.normal(0, 100, 5000), rng.normal(0, 1e-3, 2000)])
    scaled = values * 10.0**decimals
    values = values[np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6]  # exact .5 ties may round either way
    lines = format_table(['<v x="', '"/>\n'], [values], [decimals]).decode().splitlines()
    expected = [f'<v x="{x:.{decimals}f}"/>' for x in values.tolist()]
    expected = [e.replace('"-0.', '"0.') if float(e[6:-3]) == 0 else e for e in expected]  # we print 0, not -0
    assert lines == expected


def test_float_decimals_keep_seven_significant_digits():
    assert float_decimals(np.float32([150.0, -3.0])) == 4
    assert float_decimals(np.float32([0.5])) == 7
    assert float_decimals(np.zeros(3)) == 1


def test_hex_rows_are_upper_case_rrggbb():
    rgb = np.uint8([[0, 15, 255], [171, 205, 239]])
    assert b"".join(iter_hex_rows("#", rgb, "\n")) == b"#000FFF\n#ABCDEF\n"
