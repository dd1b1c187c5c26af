"""Numbers -> ASCII for the text formats (OBJ, 3MF XML), vectorised: digits are scattered into one byte
buffer per block of rows instead of going through Python's `%` one number at a time (~5x faster).

A table is rows of `pieces[0] col0 pieces[1] col1 ... pieces[C]`. Integer columns print like %d; float
columns print fixed-point with a given number of decimals (rounded half to even, '-' when negative,
never an exponent), so the text is exact for what it states: 12.3456, -0.0012, 7.0000.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)   # 10 .. 10^18
_BLOCK_ROWS = 1 << 18                                # bounds the temporaries to a few tens of MB
_HEX = np.frombuffer(b"".join(b"%02X" % i for i in range(256)), dtype=np.uint8).reshape(256, 2)


def float_decimals(values: np.ndarray, significant: int = 7) -> int:
    """Decimals that keep `significant` digits of the largest magnitude (float32 holds ~7): 150 mm -> 4."""
    peak = float(np.abs(values).max()) if np.size(values) else 0.0
    if not peak > 0:
        return 1
    return int(np.clip(significant - np.ceil(np.log10(peak)), 1, 12))


def _scaled(column: np.ndarray, decimals: int) -> np.ndarray:
    if decimals == 0:
        return np.asarray(column).astype(np.int64, copy=False)
    return np.rint(np.asarray(column, dtype=np.float64) * 10.0**decimals).astype(np.int64)


def _widths(values: np.ndarray, decimals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (characters per number, digits printed, negative mask)."""
    negative = values < 0
    digits = 1 + np.searchsorted(_POWERS, np.abs(values), side="right")
    if decimals:
        digits = np.maximum(digits, decimals + 1)  # 0.0012: leading zeros down to the units digit
    return digits + negative + (1 if decimals else 0), digits, negative


def _put_number(out: np.ndarray, start: np.ndarray, values: np.ndarray, decimals: int,
                width: np.ndarray, digits: np.ndarray, negative: np.ndarray) -> None:
    out[start[negative]] = ord("-")
    last = start + width - 1
    rest = np.abs(values)
    every = int(digits.min())  # digits every number has: no mask needed for those
    for k in range(int(digits.max())):
        place = last - k - (1 if decimals and k >= decimals else 0)
        digit = (rest % 10).astype(np.uint8) + np.uint8(48)
        if k < every:
            out[place] = digit
        else:
            live = digits > k
            out[place[live]] = digit[live]
        rest //= 10
    if decimals:
        out[last - decimals] = ord(".")


def iter_table(pieces: Sequence[str], columns: Sequence[np.ndarray], decimals: Sequence[int]) -> Iterator[bytes]:
    """len(columns) + 1 literal pieces, (K,) columns, decimals per column (0 = integer) -> ASCII blocks of rows."""
    assert len(pieces) == len(columns) + 1 and len(decimals) == len(columns)
    literals = [np.frombuffer(p.encode("ascii"), dtype=np.uint8) for p in pieces]
    count = len(columns[0]) if columns else 0
    for first in range(0, count, _BLOCK_ROWS):
        block = [_scaled(c[first : first + _BLOCK_ROWS], d) for c, d in zip(columns, decimals)]
        shapes = [_widths(v, d) for v, d in zip(block, decimals)]
        row_len = sum(lit.size for lit in literals) + sum(w for w, _, _ in shapes)
        ends = np.cumsum(row_len)
        out = np.empty(int(ends[-1]), dtype=np.uint8)
        pos = ends - row_len
        for c, lit in enumerate(literals):
            for j, byte in enumerate(lit):  # one scatter per character beats a (K, len) index array
                out[pos + j] = byte
            pos = pos + lit.size
            if c < len(block):
                _put_number(out, pos, block[c], decimals[c], *shapes[c])
                pos = pos + shapes[c][0]
        yield out.tobytes()


def format_table(pieces: Sequence[str], columns: Sequence[np.ndarray], decimals: Sequence[int]) -> bytes:
    """iter_table joined into one bytes object."""
    return b"".join(iter_table(pieces, columns, decimals))


def iter_hex_rows(prefix: str, rgb: np.ndarray, suffix: str) -> Iterator[bytes]:
    """(K, 3) uint8 colours -> blocks of rows `prefix RRGGBB suffix` (upper-case hex), fixed width."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    tail = np.frombuffer(suffix.encode("ascii"), dtype=np.uint8)
    width = head.size + 6 + tail.size
    for first in range(0, rgb.shape[0], _BLOCK_ROWS):
        block = rgb[first : first + _BLOCK_ROWS]
        out = np.empty((block.shape[0], width), dtype=np.uint8)
        out[:, : head.size] = head
        out[:, head.size : head.size + 6] = _HEX[block].reshape(-1, 6)
        out[:, head.size + 6 :] = tail
        yield out.tobytes()
