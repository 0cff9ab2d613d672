"""A cheap, deterministic stand-in for a searcher, images and a gallery made for it, and a loopback
server (serve tests).

Every image that is not almost black holds one "person": the middle of the image. Its embedding is
the normalised mean colour of the left and right halves of that region, so an image of the same
two colours finds itself, and other colour pairs rank lower.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

DIM = 6


def person_box(width: int, height: int) -> np.ndarray:
    """Where the fake detector "finds" the person in a width x height image."""
    return np.array([0.3 * width, 0.1 * height, 0.7 * width, 0.9 * height], np.float32)


class FakeSearcher:
    """``searcher(image)`` and ``extract_query(image, boxes)`` in a few microseconds; counts its calls.

    ``delay`` (seconds) makes every whole-image call sleep, to keep an add busy in concurrency tests.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def extract_query(self, image, boxes) -> np.ndarray:
        rgb = np.asarray(image, np.float32)
        out = []
        for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
            x1, y1 = max(0, int(x1)), max(0, int(y1))
            x2, y2 = max(x1 + 1, int(np.ceil(x2))), max(y1 + 1, int(np.ceil(y2)))
            crop = rgb[y1:y2, x1:x2]
            half = max(1, crop.shape[1] // 2)
            vec = np.concatenate([crop[:, :half].mean((0, 1)), crop[:, half:].mean((0, 1)) if crop.shape[1] > 1
                                  else crop.mean((0, 1))]) + 1.0
            out.append(vec / np.linalg.norm(vec))
        return np.asarray(out, np.float32).reshape(-1, DIM)

    def __call__(self, image) -> dict[str, np.ndarray]:
        import time

        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        rgb = np.asarray(image)
        if rgb.mean() < 8:
            return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
                    "embeddings": np.zeros((0, DIM), np.float32)}
        box = person_box(rgb.shape[1], rgb.shape[0])[None]
        return {"boxes": box, "scores": np.array([0.9], np.float32), "embeddings": self.extract_query(rgb, box)}


def scene(left: tuple[int, int, int], right: tuple[int, int, int], size: tuple[int, int] = (160, 120),
          background: tuple[int, int, int] = (90, 90, 90)) -> np.ndarray:
    """A width x height RGB image whose "person" (see ``person_box``) is ``left`` | ``right`` coloured."""
    width, height = size
    rgb = np.full((height, width, 3), background, np.uint8)
    x1, y1, x2, y2 = person_box(width, height).round().astype(int)
    middle = (x1 + x2) // 2
    rgb[y1:y2, x1:middle] = left
    rgb[y1:y2, middle:x2] = right
    return rgb


def encode(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    """Image bytes in ``fmt``."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    return buffer.getvalue()


COLOURS = [((220, 30, 30), (30, 30, 220)), ((30, 200, 30), (240, 240, 40)), ((250, 250, 250), (20, 20, 20)),
           ((200, 100, 20), (20, 160, 160)), ((150, 40, 200), (230, 130, 170))]


def gallery(folder: Path) -> Path:
    """An index (model "fake") in ``folder`` of one image per colour pair: person ids 0..4 in COLOURS order."""
    from personsearch.index import PersonIndex

    paths = []
    for i, (left, right) in enumerate(COLOURS):
        paths.append(folder / f"scene{i}.png")
        Image.fromarray(scene(left, right)).save(paths[-1])
    index = PersonIndex.create(folder / "index", model="fake", dim=DIM)
    assert index.add_images(FakeSearcher(), paths, progress=False).people == len(COLOURS)
    index.close()
    return folder / "index"


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
