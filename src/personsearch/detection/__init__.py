"""Person detectors."""

from .nanodet import NanodetPersonDetector, nanodet_model_path
from .ssdlite import SsdlitePersonDetector, default_model_path

__all__ = ["NanodetPersonDetector", "SsdlitePersonDetector", "default_model_path", "nanodet_model_path"]
