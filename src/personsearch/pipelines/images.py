"""Whole-image inputs of the search pipelines: paths, PIL images or RGB arrays, checked once."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from ..data.images import read_image, to_rgb

ImageLike = Union[str, Path, Image.Image, np.ndarray]


def load_rgb(image: ImageLike, name: str = "image") -> np.ndarray:
    """RGB uint8 (H, W, 3) from a path, a PIL image or an array; errors name the file or ``name``."""
    if isinstance(image, (str, Path)):
        return np.array(read_image(image), np.uint8)  # writable; DatasetError / FileNotFoundError name the file
    array = np.asarray(to_rgb(image) if isinstance(image, Image.Image) else image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{name} must be RGB uint8 (H, W, 3), got {array.dtype} {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty ({array.shape[1]}x{array.shape[0]} pixels)")
    return array


def check_boxes(boxes, width: int, height: int, name: str = "boxes") -> np.ndarray:
    """(N, 4) float32 [x1, y1, x2, y2] pixel boxes, each finite, with area and overlapping the image.

    Raises ValueError naming ``name[i]`` and the image size for the first bad box.
    """
    array = np.asarray(boxes, np.float64)
    if array.size % 4 or (array.ndim > 1 and array.shape[-1] != 4):
        raise ValueError(f"{name} must be [x1, y1, x2, y2] rows, got shape {array.shape}")
    array = array.reshape(-1, 4)
    with np.errstate(over="ignore"):
        single = array.astype(np.float32)  # what is returned: finite here too (1e308 is not)
    for i, (x1, y1, x2, y2) in enumerate(array):
        label = f"{name}[{i}] = [{x1:g}, {y1:g}, {x2:g}, {y2:g}]"
        if not (np.isfinite([x1, y1, x2, y2]).all() and np.isfinite(single[i]).all()):
            raise ValueError(f"{label} is not finite (as 32-bit floats)")
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"{label} has zero area (need x2 > x1 and y2 > y1)")
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise ValueError(f"{label} lies outside the {width}x{height} image")
    return single
