"""Image checks and loading with clear errors (a DatasetError naming the file)."""

from __future__ import annotations

from pathlib import Path

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


def read_image(path: str | Path) -> Image.Image:
    """Load ``path`` fully as an RGB image (file closed on return); DatasetError if unreadable."""
    path = Path(path)
    require_file(path, "image file")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")  # decodes everything; returns a new, detached image
    except _PIL_ERRORS as err:
        raise DatasetError(path, f"corrupt or unreadable image: {err}") from err
