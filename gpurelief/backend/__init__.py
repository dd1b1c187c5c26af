"""Array backends: numpy_ops is the reference; cupy_ops (GPU) has the same names and signatures."""
