"""crackseg: pixel-level crack segmentation with ViT, Segmenter and U-Net built from first principles."""

from crackseg.engine.checkpoint import load_model
from crackseg.errors import CrackSegError
from crackseg.models import build_model, list_models
from crackseg.weights import bundled_models

__version__ = "0.1.0"
__all__ = [
    "CrackSegError",
    "build_model",
    "bundled_models",
    "list_models",
    "load_model",
    "__version__",
]
