"""gpurelief: one photograph -> a textured 3D relief model (GLB, glTF).

    import gpurelief
    gpurelief.convert("photo.jpg", "photo.glb", relief=0.15)
"""
__version__ = "0.1.0"

from .errors import GpureliefError  # noqa: E402
from .pipeline import ConvertOptions, ConvertResult, convert, depth  # noqa: E402
from .decode import load_image, image_from_array  # noqa: E402
from .depth import estimate_depth, load_depth_map  # noqa: E402
from .condition import condition  # noqa: E402
from .mesh.grid import grid_mesh  # noqa: E402
from .texture import make_texture  # noqa: E402
from .writers.glb import write_glb  # noqa: E402
from .writers.gltf import write_gltf  # noqa: E402

__all__ = [
    "ConvertOptions", "ConvertResult", "GpureliefError", "condition", "convert", "depth",
    "estimate_depth", "grid_mesh", "image_from_array", "load_depth_map", "load_image",
    "make_texture", "write_glb", "write_gltf", "__version__",
]
