"""Numbers -> text for the text-based formats (OBJ, 3MF XML), one printf pass over a whole array."""
from __future__ import annotations

import numpy as np


def format_rows(row_format: str, values: np.ndarray) -> str:
    """(K, C) array + a printf format with C fields per row (ending in a newline) -> K formatted rows.

    One `%` over the flattened values: about 5x faster than np.savetxt, which formats row by row.
    """
    values = np.asarray(values)
    if values.size == 0:
        return ""
    return (row_format * values.shape[0]) % tuple(values.reshape(-1).tolist())
