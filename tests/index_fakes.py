"""A cheap, deterministic searcher and scenes for the index tests (also loadable by the CLI as
``--model py:index_fakes:make_searcher`` with this folder on PYTHONPATH).

Scenes are black images with coloured rectangles (the "people"). The fake detector boxes every
connected coloured region; the embedding is the unit vector of the region's mean colour minus grey,
padded to ``DIM``: same colour, same person. ``INDEX_FAKE_DELAY`` (seconds) slows each image down.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

DIM = 16
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 80, 230), (230, 220, 40), (200, 60, 210), (40, 210, 220),
           (250, 150, 30), (140, 90, 40), (250, 250, 250), (120, 120, 250)]


class FakeSearcher:
    """Boxes = coloured blobs; embedding = normalised mean colour (minus grey), zero-padded."""

    dim = DIM

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def _embed(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        out = np.zeros((len(boxes), DIM), np.float32)
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes).reshape(-1, 4).astype(int)):
            mean = image[max(0, y1):y2, max(0, x1):x2].reshape(-1, 3).mean(0) - 127.5
            out[i, :3] = mean
            out[i, 3] = 64.0  # keeps the vector away from zero for grey crops
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def __call__(self, image) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        image = np.asarray(image)
        labels, count = ndimage.label(image.max(axis=2) > 30)
        boxes = []
        for rows, cols in ndimage.find_objects(labels)[:count]:
            if (rows.stop - rows.start) * (cols.stop - cols.start) >= 20:
                boxes.append([cols.start, rows.start, cols.stop, rows.stop])
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.linspace(0.99, 0.6, len(boxes)).astype(np.float32)
        return {"boxes": boxes, "scores": scores, "embeddings": self._embed(image, boxes)}

    def extract_query(self, image, boxes) -> np.ndarray:
        return self._embed(np.asarray(image), np.asarray(boxes, np.float32))


def make_searcher() -> FakeSearcher:
    """Factory for ``py:index_fakes:make_searcher``."""
    return FakeSearcher(float(os.environ.get("INDEX_FAKE_DELAY", "0")))


def scene(people: list[int], width: int = 96, height: int = 64, shift: int = 0) -> np.ndarray:
    """A black RGB image with one 14x30 rectangle per entry of ``people`` (colour index), left to right."""
    image = np.zeros((height, width, 3), np.uint8)
    for slot, person in enumerate(people):
        x = 4 + slot * 22 + shift
        image[16:46, x:x + 14] = COLOURS[person % len(COLOURS)]
    return image


def write_scenes(folder: Path, count: int, per_image: int = 2) -> dict[str, list[int]]:
    """``count`` PNG scenes in ``folder``; returns file name -> the people (colour indices) in it."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(count):
        people = [(i + k) % len(COLOURS) for k in range(per_image)]
        name = f"scene_{i:04d}.png"
        Image.fromarray(scene(people)).save(folder / name)
        truth[name] = people
    return truth


def write_video(path: Path, frames: int, fps: float = 10.0) -> None:
    """An MJPG AVI whose frame i shows person i % 10 moving right (plus person 8 standing still)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 64))
    for i in range(frames):
        rgb = scene([i % len(COLOURS)], shift=(i * 2) % 40)
        rgb[16:46, 78:92] = COLOURS[8]
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def make_dying_searcher() -> "FakeSearcher":
    """Factory whose process dies (as if killed) on its first image while the file named by
    ``INDEX_FAKE_DIE_ONCE`` does not exist yet; it creates the file first, so the rerun survives."""
    return _Dying(Path(os.environ["INDEX_FAKE_DIE_ONCE"]))


class _Dying(FakeSearcher):
    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker

    def __call__(self, image):
        if not self.marker.exists():
            self.marker.write_text("died once")
            os._exit(17)
        return super().__call__(image)
