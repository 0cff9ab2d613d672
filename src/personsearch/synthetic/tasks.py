"""Render jobs of the synthetic benchmark: one picklable task per output image.

Each task carries its own seed, so results do not depend on worker count or execution order.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..utils.files import atomic_write_bytes
from .camera import Camera, jpeg_quality
from .config import Difficulty
from .identity import Identity
from .scene import place_people, render_crop, render_scene


@dataclass(frozen=True)
class CropTask:
    """A Market-style person crop written to ``path``."""

    path: str
    camera: Camera
    identity: Identity
    occluder: Identity | None
    width: int
    height: int
    seed: tuple[int, ...]
    difficulty: Difficulty


@dataclass(frozen=True)
class SceneTask:
    """A whole scene with ``identities`` placed in it, written to ``path``."""

    path: str
    camera: Camera
    identities: tuple[Identity, ...]
    width: int
    height: int
    seed: tuple[int, ...]
    difficulty: Difficulty


SceneResult = tuple[np.ndarray, np.ndarray]  # boxes (N, 4) float32, visibility (N,) float32


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Deterministic baseline JPEG bytes of an RGB uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def run_task(task: CropTask | SceneTask) -> SceneResult | None:
    """Render one task and write its JPEG atomically; scenes return their boxes and visibility."""
    rng = np.random.default_rng(np.random.SeedSequence(list(task.seed)))
    if isinstance(task, CropTask):
        image = render_crop(task.camera, task.identity, rng, task.difficulty,
                            width=task.width, height=task.height, occluder=task.occluder)
        result = None
    else:
        people = place_people(list(task.identities), task.camera, task.width, task.height, rng, task.difficulty)
        image, boxes, visibility = render_scene(task.camera, people, task.width, task.height, rng, task.difficulty)
        result = (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(visibility, np.float32))
    quality = jpeg_quality(task.camera, rng, task.difficulty)
    atomic_write_bytes(task.path, encode_jpeg(image, quality))
    return result
