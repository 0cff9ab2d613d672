"""Decoded inputs of the index: still images and every N-th frame of a video, with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..data.errors import DatasetError
from ..data.images import read_image


@dataclass
class Frame:
    """One image or video frame to index: ``rgb`` (H, W, 3) uint8, or None with the ``error``."""

    source: str
    kind: str  # "image" | "video"
    frame: int  # 0 for still images
    timestamp: float | None
    rgb: np.ndarray | None
    error: str | None = None


def source_key(path: str | Path) -> str:
    """How a file is named in the index: its absolute path."""
    return str(Path(path).absolute())


def image_frames(paths: Iterable[str | Path]) -> Iterator[Frame]:
    """Decode each image; unreadable ones come back with ``rgb=None`` and the reason."""
    for path in paths:
        key = source_key(path)
        try:
            rgb = np.array(read_image(path), np.uint8)  # writable: torch warns about read-only arrays
        except (DatasetError, OSError) as err:
            yield Frame(key, "image", 0, None, None, str(err))
            continue
        yield Frame(key, "image", 0, None, rgb)


def _is_still_image(path: str | Path) -> str | None:
    """The image format of ``path`` if it is a still image (OpenCV would open it as a 1-frame video)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.format or "image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None


def _open(path: str | Path):
    import cv2

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    still = _is_still_image(path)
    if still is not None:
        raise ValueError(f"{path}: a {still} image, not a video (index images with --images)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"{path}: cannot open the video (unknown format or corrupt file)")
    return capture


def _rate(capture) -> float | None:
    import cv2

    fps = float(capture.get(cv2.CAP_PROP_FPS))
    return fps if fps > 0 else None


def video_info(path: str | Path) -> tuple[float | None, int]:
    """(frames per second or None, frame count as the container states it, maybe approximate)."""
    import cv2

    capture = _open(path)
    try:
        return _rate(capture), max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        capture.release()


def wanted_frames(start: int, stop: int | None, every: int, count: int) -> range:
    """Frame numbers start, start + every, ... below ``stop`` (or the stated ``count``)."""
    if every < 1 or start < 0:
        raise ValueError(f"need every >= 1 and start >= 0, got every={every}, start={start}")
    end = count if stop is None else min(stop, count) if count else stop
    return range(start, max(start, end), every)


def video_frames(path: str | Path, every: int = 1, done: set[int] | frozenset = frozenset(),
                 start: int = 0, stop: int | None = None) -> Iterator[Frame]:
    """Frames ``start``, ``start + every``, ... (below ``stop``) not in ``done``, decoded to RGB.

    Other frames are only grabbed (not converted). Stops at the end of the stream; frame numbers
    count from 0, timestamps are frame / fps (None if the file states no rate). A stream that ends
    before the frame count its file states (a truncated or damaged video) yields a last Frame with
    ``rgb=None`` and the reason, so the video is reported and not taken as complete.
    """
    import cv2

    capture = _open(path)
    fps = _rate(capture)
    stated = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    key = source_key(path)
    try:
        index = 0
        while stop is None or index < stop:
            wanted = index >= start and (index - start) % every == 0 and index not in done
            ok, bgr = capture.read() if wanted else (capture.grab(), None)
            if not ok:
                if index < min(stated, stop if stop is not None else stated):
                    yield Frame(key, "video", index, None, None,
                                f"the stream ended at frame {index} of the {stated} the file states "
                                "(truncated or damaged); frames before it are indexed")
                return
            if wanted:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Frame(key, "video", index, index / fps if fps else None, rgb)
            index += 1
    finally:
        capture.release()


def read_video_frame(path: str | Path, frame: int) -> np.ndarray:
    """RGB uint8 frame number ``frame`` of a video (seek, then read); ValueError past the end."""
    import cv2

    capture = _open(path)
    try:
        if frame > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = capture.read()
        if not ok:
            raise ValueError(f"{path}: cannot read frame {frame}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def read_source(path: str, kind: str, frame: int) -> np.ndarray:
    """RGB uint8 image of an indexed image or video frame; FileNotFoundError if the file is gone."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: indexed {kind} is no longer on disk")
    if kind == "video":
        return read_video_frame(path, frame)
    return np.asarray(read_image(path), np.uint8)
