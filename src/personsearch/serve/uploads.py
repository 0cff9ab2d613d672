"""Uploaded images and form fields, checked once: 415 for non-images, 422 for bad boxes."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.images import IMAGE_EXTENSIONS
from ..pipelines import check_boxes
from ..utils.files import atomic_write_bytes

MAX_PIXELS = 50_000_000  # larger images are refused (413) before they are decoded
_GENERIC_TYPES = ("", "application/octet-stream")  # what clients send when they do not know
_ORIENTATION = 0x0112  # EXIF tag
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


class ApiError(Exception):
    """An error answered to the client as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadedImage:
    """A decoded upload: RGB pixels, plus the bytes to store (original, or re-encoded if needed)."""

    name: str
    rgb: np.ndarray
    data: bytes
    suffix: str


def decode_image(data: bytes, content_type: str | None, name: str, field: str = "image") -> UploadedImage:
    """Check the content type and decode ``data`` to RGB (EXIF orientation applied, as browsers show it).

    Raises ApiError 415 for a non-image type, empty or undecodable bytes, 413 for too many pixels.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    where = f"{field} ({name})" if name else field
    if not (kind.startswith("image/") or kind in _GENERIC_TYPES):
        raise ApiError(415, f"{where}: content type '{kind}' is not an image; send a JPEG, PNG or BMP file")
    if not data:
        raise ApiError(415, f"{where}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ApiError(413, f"{where}: {im.width}x{im.height} pixels is more than the "
                                    f"{MAX_PIXELS // 1_000_000} megapixels the server accepts")
            fmt = (im.format or "").lower()
            rotated = im.getexif().get(_ORIENTATION, 1) != 1
            rgb = np.array((ImageOps.exif_transpose(im) if rotated else im).convert("RGB"), np.uint8)  # writable
    except UnidentifiedImageError:
        raise ApiError(415, f"{where}: the bytes could not be decoded as an image (not a format the "
                            "server reads: send a JPEG, PNG or BMP file)") from None
    except _PIL_ERRORS as err:
        raise ApiError(415, f"{where}: the bytes could not be decoded as an image ({err})") from None
    suffix = {"jpeg": ".jpg", "mpo": ".jpg"}.get(fmt, f".{fmt}")
    if rotated or suffix not in IMAGE_EXTENSIONS:  # store what the gallery readers read as shown
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG")
        data, suffix = buffer.getvalue(), ".png"
    return UploadedImage(name, rgb, data, suffix)


def parse_box(text: str | None, width: int, height: int) -> np.ndarray | None:
    """``"x1,y1,x2,y2"`` -> (4,) float32 box in an image of ``width`` x ``height``; None if empty.

    Raises ApiError 422 naming the ``box`` field for anything else.
    """
    if text is None or not text.strip():
        return None
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ApiError(422, f"box: '{text}' is not four numbers x1,y1,x2,y2") from None
    if len(values) != 4:
        raise ApiError(422, f"box: '{text}' has {len(values)} numbers; give four: x1,y1,x2,y2")
    try:
        return check_boxes([values], width, height, "box")[0]
    except ValueError as err:
        raise ApiError(422, str(err).replace("box[0]", "box", 1)) from None


def store_upload(upload: UploadedImage, folder: Path) -> Path:
    """Write the image under ``folder`` named by its content hash (never a client-supplied name)."""
    path = Path(folder) / (hashlib.sha256(upload.data).hexdigest()[:24] + upload.suffix)
    if not path.exists():
        atomic_write_bytes(path, upload.data)
    return path
