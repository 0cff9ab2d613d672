"""Uploaded images and form fields, checked once: 415 for non-images, 422 for bad boxes."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.images import IMAGE_EXTENSIONS, to_rgb
from ..pipelines import check_boxes
from ..utils.files import atomic_write_bytes
from .contract import BOX_TEXT

MAX_IMAGE_PIXELS = 4096 * 4096  # default cap on one image's declared size, checked before decoding
MIN_SIDE = 8  # narrower images hold no person (and detectors refuse them)
_GENERIC_TYPES = ("", "application/octet-stream")  # what clients send when they do not know
_ORIENTATION = 0x0112  # EXIF tag
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_BLANK = re.compile(" *")
_BOX = re.compile(BOX_TEXT)


class ApiError(Exception):
    """An error answered to the client as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadedImage:
    """An upload: the bytes to store (original, or re-encoded upright if needed), its declared size,
    and its RGB pixels when it was decoded (``rgb`` is None for gallery uploads, decoded when indexed)."""

    name: str
    data: bytes
    suffix: str
    width: int
    height: int
    rgb: np.ndarray | None = None

    @property
    def pixels(self) -> int:
        """Declared width x height: what decoding it costs, counted before decoding."""
        return self.width * self.height


def _where(field: str, name: str) -> str:
    return f"{field} ({name})" if name else field


def probe_image(data: bytes, content_type: str | None, name: str, field: str = "image",
                max_pixels: int = MAX_IMAGE_PIXELS) -> UploadedImage:
    """Check the content type and the image header only (no pixel is decoded).

    Raises ApiError 415 for a non-image type, empty or unreadable bytes, 413 for more than
    ``max_pixels`` declared pixels (a decompression bomb is refused here, before any allocation),
    422 for an image under ``MIN_SIDE`` pixels on a side.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    where = _where(field, name)
    if not (kind.startswith("image/") or kind in _GENERIC_TYPES):
        raise ApiError(415, f"{where}: content type '{kind}' is not an image; send a JPEG, PNG or BMP file")
    if not data:
        raise ApiError(415, f"{where}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height, fmt = im.width, im.height, (im.format or "").lower()
    except UnidentifiedImageError:
        raise ApiError(415, f"{where}: the bytes could not be decoded as an image (not a format the "
                            "server reads: send a JPEG, PNG or BMP file)") from None
    except Image.DecompressionBombError as err:
        raise ApiError(413, f"{where}: {err}; send a smaller image") from None
    except _PIL_ERRORS as err:
        raise ApiError(415, f"{where}: the bytes could not be decoded as an image ({err})") from None
    if width * height > max_pixels:
        raise ApiError(413, f"{where}: {width}x{height} pixels is more than the {max_pixels / 1e6:.3g} "
                            "megapixels the server accepts per image (--max-image-mp); send a smaller image")
    if min(width, height) < MIN_SIDE:
        raise ApiError(422, f"{where}: {width}x{height} pixels is too small to hold a person "
                            f"(at least {MIN_SIDE} pixels on each side)")
    suffix = {"jpeg": ".jpg", "mpo": ".jpg"}.get(fmt, f".{fmt}")
    return UploadedImage(name, data, suffix, width, height)


def _decode(upload: UploadedImage, where: str) -> tuple[np.ndarray, bool]:
    """(RGB pixels as browsers show them: EXIF orientation applied, 16-bit grey kept; rotated?)."""
    try:
        with Image.open(io.BytesIO(upload.data)) as im:
            rotated = im.getexif().get(_ORIENTATION, 1) != 1
            upright = ImageOps.exif_transpose(im) if rotated else im
            return np.array(to_rgb(upright), np.uint8), rotated  # writable
    except _PIL_ERRORS as err:
        raise ApiError(415, f"{where}: the bytes could not be decoded as an image ({err})") from None


def decode_image(upload: UploadedImage, field: str = "image") -> UploadedImage:
    """``upload`` (from ``probe_image``) with its pixels decoded; stored bytes re-encoded as PNG when
    they are not what the gallery readers read as shown (EXIF-rotated, or not JPEG/PNG/BMP)."""
    rgb, rotated = _decode(upload, _where(field, upload.name))
    data, suffix = upload.data, upload.suffix
    if rotated or suffix not in IMAGE_EXTENSIONS:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG")
        data, suffix = buffer.getvalue(), ".png"
    return UploadedImage(upload.name, data, suffix, rgb.shape[1], rgb.shape[0], rgb)


def gallery_upload(upload: UploadedImage, field: str = "images") -> UploadedImage:
    """``upload`` ready to store for indexing: checked to decode, pixels dropped (the index decodes
    the stored file again, one image at a time)."""
    stored = decode_image(upload, field)
    return UploadedImage(stored.name, stored.data, stored.suffix, stored.width, stored.height)


def parse_box(text: str | None, width: int, height: int) -> np.ndarray | None:
    """``"x1,y1,x2,y2"`` -> (4,) float32 box in an image of ``width`` x ``height``; None if empty.

    Accepts exactly what ``contract.BOX_PATTERN`` describes (non-negative decimal numbers, commas,
    spaces around them) for a box with area that overlaps the image. Raises ApiError 422 naming
    the ``box`` field for anything else.
    """
    if text is None or _BLANK.fullmatch(text):
        return None
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ApiError(422, f"box: '{text}' is not four numbers x1,y1,x2,y2") from None
    if len(values) != 4:
        raise ApiError(422, f"box: '{text}' has {len(values)} numbers; give four: x1,y1,x2,y2")
    try:
        box = check_boxes([values], width, height, "box")[0]
    except ValueError as err:
        raise ApiError(422, str(err).replace("box[0]", "box", 1)) from None
    if not _BOX.fullmatch(text):
        raise ApiError(422, f"box: '{text}' is not written x1,y1,x2,y2 with non-negative decimal numbers "
                            "(digits and one optional decimal point each, separated by commas)")
    return box


def store_upload(upload: UploadedImage, folder: Path) -> tuple[Path, bool]:
    """Write the image under ``folder`` named by its content hash (never a client-supplied name).

    Returns (path, True if this call wrote the file; False if it was already there).
    """
    path = Path(folder) / (hashlib.sha256(upload.data).hexdigest()[:24] + upload.suffix)
    if path.exists():
        return path, False
    atomic_write_bytes(path, upload.data)
    return path, True
