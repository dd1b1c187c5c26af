"""Array backends: numpy_ops is the reference; cupy_ops (GPU) has the same names and signatures."""
from __future__ import annotations

import numpy as np


def is_device_array(a) -> bool:
    """True for CuPy (any __cuda_array_interface__) arrays; numpy arrays and bytes are host data."""
    return hasattr(a, "__cuda_array_interface__") and not isinstance(a, (np.ndarray, bytes, bytearray, memoryview))


def array_module(a):
    """-> numpy for host arrays, cupy for device arrays (CuPy is imported only when one is given)."""
    if is_device_array(a):
        import cupy

        return cupy
    return np
