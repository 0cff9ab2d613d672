"""JPEGs of indexed people: the whole frame with the box drawn, or a small crop around the box."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

BOX_COLOUR = (255, 64, 32)


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    """JPEG bytes of ``image`` (full colour resolution: thin coloured box lines stay crisp)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def frame_with_box(rgb: np.ndarray, box=None, max_side: int = 1280) -> bytes:
    """The frame (shrunk to ``max_side`` at most) with ``box`` [x1, y1, x2, y2] outlined (if any), as JPEG."""
    image = Image.fromarray(np.asarray(rgb, np.uint8))
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    if box is not None:  # thick enough to see on a small preview, with a dark rim for contrast
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        width = max(2, round(max(image.size) / 160))
        draw = ImageDraw.Draw(image)
        draw.rectangle([x1 - width, y1 - width, x2 + width, y2 + width], outline=(0, 0, 0), width=1)
        draw.rectangle([x1 - width + 1, y1 - width + 1, x2 + width - 1, y2 + width - 1], outline=BOX_COLOUR,
                       width=width)
    return encode_jpeg(image)


def person_crop(rgb: np.ndarray, box, height: int = 160, margin: float = 0.1) -> bytes:
    """The person in ``box`` with ``margin`` (fraction of the box) around it, ``height`` px tall, as JPEG."""
    rgb = np.asarray(rgb, np.uint8)
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(rgb.shape[1], int(np.ceil(x2 + mx))), min(rgb.shape[0], int(np.ceil(y2 + my)))
    if right <= left or bottom <= top:
        raise ValueError(f"box {list(box)} has no area inside the {rgb.shape[1]}x{rgb.shape[0]} image")
    crop = Image.fromarray(rgb[top:bottom, left:right])
    width = max(1, round(crop.width * height / crop.height))
    return encode_jpeg(crop.resize((width, height), Image.BILINEAR))
