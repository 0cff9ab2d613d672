"""Person detectors."""

from .ssdlite import SsdlitePersonDetector, default_model_path

__all__ = ["SsdlitePersonDetector", "default_model_path"]
