"""Image checks and loading with clear errors (a DatasetError naming the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from personsearch.data.errors import DatasetError, require_file

# Lower-case suffixes of the image files the folder readers pick up.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# What PIL raises on unreadable input: UnidentifiedImageError and "image file is truncated" are
# OSErrors; broken headers raise SyntaxError / ValueError; bombs raise DecompressionBombError.
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def is_image_file(path: Path) -> bool:
    """True if ``path`` has an image extension (jpg/jpeg/png/bmp, any case)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def verify_image(path: str | Path) -> None:
    """Raise DatasetError naming ``path`` if it is missing, not an image, corrupt or truncated.

    Runs PIL's ``verify()`` (header/structure, PNG CRCs) and then a full decode, which is what
    catches truncated JPEGs. Note: if some code sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES =
    True`` globally, Pillow pads truncated data instead of failing and truncation goes unseen.
    """
    path = Path(path)
    require_file(path, "image file")
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:  # verify() leaves the image unusable: reopen to decode
            im.load()
    except _PIL_ERRORS as err:
        raise DatasetError(path, f"corrupt or unreadable image: {err}") from err


_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16-bit, 32-bit integer and float grey


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB, with the full range of 16-bit grey kept (0..65535 -> 0..255).

    PIL's own ``convert("RGB")`` clips wide grey modes at 255, so a 16-bit PNG comes out white.
    Integer grey (``I;16*``, ``I``) is read as 16-bit; float grey (``F``) as 0..1 if it stays within
    that range, else as 0..255. Every other mode (palette, alpha, CMYK, ...) goes through PIL.
    """
    if image.mode not in _WIDE_GREY:
        return image.convert("RGB")
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size and 0.0 <= finite.min() and finite.max() <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0
    grey = np.nan_to_num(values * scale, nan=0.0).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def read_image(path: str | Path) -> Image.Image:
    """Load ``path`` fully as an RGB image (file closed on return); DatasetError if unreadable.

    16-bit grey keeps its range (see ``to_rgb``).
    """
    path = Path(path)
    require_file(path, "image file")
    try:
        with Image.open(path) as im:
            return to_rgb(im)  # decodes everything; returns a new, detached image
    except _PIL_ERRORS as err:
        raise DatasetError(path, f"corrupt or unreadable image: {err}") from err
