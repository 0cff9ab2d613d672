"""Compose people into camera frames: whole scenes for person search and detector-style ReID crops."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from personsearch.synthetic.camera import (
    PROP_COLORS,
    VIEW_ORDER,
    Camera,
    apply_imaging,
    camera_background,
    foot_for_scale,
    min_foot,
    person_scale,
)
from personsearch.synthetic.config import Difficulty
from personsearch.synthetic.figure import figure_aspect, render_person
from personsearch.synthetic.identity import Identity

CROP_BACKGROUND_SIZE = (256, 192)  # (width, height) of the camera background that crops are cut from
_MAX_BOX_OVERLAP = 0.55  # at most this fraction of a farther person's box may be covered by a nearer one


@dataclass
class PersonSpec:
    """One person in a scene. ``box`` is the full (unclipped) figure box x1, y1, x2, y2 in scene pixels:
    its height and foot line are exact, its width is the figure's nominal width."""

    identity: Identity
    box: tuple[float, float, float, float]
    view: str
    phase: float


def _view(camera: Camera, rng: np.random.Generator) -> str:
    return VIEW_ORDER[int(rng.choice(len(VIEW_ORDER), p=camera.view_mix))]


def _foot_and_scale(camera: Camera, rng: np.random.Generator, scale_range: tuple[float, float]) -> tuple[float, float]:
    """A random foot line on the visible ground (fraction of height) and the person scale there."""
    foot = foot_for_scale(camera, float(rng.uniform(*scale_range)), scale_range)
    foot = min(max(foot, min_foot(camera)), camera.near_y)
    return foot, person_scale(camera, foot, scale_range)


def _covered(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Fraction of the farther box (smaller foot y) covered by the nearer one."""
    far, near = (a, b) if a[3] <= b[3] else (b, a)
    iw = min(far[2], near[2]) - max(far[0], near[0])
    ih = min(far[3], near[3]) - max(far[1], near[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / ((far[2] - far[0]) * (far[3] - far[1]))


def place_people(identities: list[Identity], camera: Camera, width: int, height: int,
                 rng: np.random.Generator, difficulty: Difficulty) -> list[PersonSpec]:
    """Stand each identity on the camera's ground plane: farther people are higher and smaller (scale
    from ``difficulty.scale_range`` along the perspective, times stature). People may overlap
    partially; each box keeps >= 70% of its area inside the image."""
    specs: list[PersonSpec] = []
    for idt in identities:
        view, phase = _view(camera, rng), float(rng.random())
        aspect = figure_aspect(idt, view, phase)
        best: tuple[float, tuple[float, float, float, float]] | None = None
        for _ in range(16):
            foot, scale = _foot_and_scale(camera, rng, difficulty.scale_range)
            hp = min(scale * idt.height * height, 0.98 * height, 0.95 * width / aspect)
            y2 = min(max(foot * height, 0.92 * hp), height + 0.08 * hp)  # at most 8% below the bottom edge
            y1, wp = y2 - hp, aspect * hp
            inside_v = (min(y2, height) - max(y1, 0.0)) / hp
            lo = wp * (max(0.8, 0.72 / inside_v) - 0.5)  # centre range keeping enough width inside
            cx = float(rng.uniform(lo, width - lo)) if width - lo > lo else 0.5 * width
            box = (cx - 0.5 * wp, y1, cx + 0.5 * wp, y2)
            worst = max((_covered(box, s.box) for s in specs), default=0.0)
            if best is None or worst < best[0]:
                best = (worst, box)
            if worst <= _MAX_BOX_OVERLAP:
                break
        assert best is not None
        specs.append(PersonSpec(idt, tuple(float(v) for v in best[1]), view, phase))  # type: ignore[arg-type]
    return specs


def _shadow(canvas: np.ndarray, cx: float, cy: float, rx: float, ry: float, strength: float) -> None:
    """Darken a soft elliptic contact shadow on the ground (in place)."""
    h, w = canvas.shape[:2]
    x0, x1 = max(0, int(cx - rx)), min(w, int(math.ceil(cx + rx)))
    y0, y1 = max(0, int(cy - ry)), min(h, int(math.ceil(cy + ry)))
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    d = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2
    canvas[y0:y1, x0:x1] *= (1.0 - strength * np.clip(1.0 - d, 0.0, 1.0))[..., None]


def _blend(canvas: np.ndarray, sprite: Image.Image, ox: int, oy: int) -> tuple[int, int, np.ndarray]:
    """Alpha-composite an RGBA sprite at (ox, oy) onto a float canvas (in place); returns the clipped
    top-left corner and the sprite's alpha (0..1) over the clipped region."""
    spr = np.asarray(sprite)
    h, w = canvas.shape[:2]
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + spr.shape[1], w), min(oy + spr.shape[0], h)
    if x0 >= x1 or y0 >= y1:
        return x0, y0, np.zeros((0, 0), np.float32)
    part = spr[y0 - oy:y1 - oy, x0 - ox:x1 - ox].astype(np.float32)
    alpha = part[..., 3] * (1.0 / 255.0)
    region = canvas[y0:y1, x0:x1]
    region += alpha[..., None] * (part[..., :3] - region)
    return x0, y0, alpha


def _place_sprite(canvas: np.ndarray, sprite: Image.Image, cx: float, foot: float) -> tuple[int, int, np.ndarray]:
    """Contact shadow, then the sprite centred at ``cx`` with its bottom on ``foot``."""
    h = sprite.height
    _shadow(canvas, cx, foot - 0.01 * h, 0.2 * h, 0.035 * h, 0.35)
    return _blend(canvas, sprite, int(round(cx - 0.5 * sprite.width)), int(round(foot)) - h)


def render_scene(camera: Camera, people: list[PersonSpec], width: int, height: int, rng: np.random.Generator,
                 difficulty: Difficulty) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the background and the people back to front (by foot line), then the camera imaging.

    Returns (uint8 HxWx3 image, float32 (N, 4) tight person boxes in the order of ``people``, clipped to
    the image, float32 (N,) visibility = fraction of each person's in-image pixels not hidden by nearer
    people)."""
    canvas = camera_background(camera, width, height).astype(np.float32)
    n = len(people)
    boxes = np.zeros((n, 4), np.float32)
    layers: list[tuple[int, int, int, np.ndarray]] = []
    order = sorted(range(n), key=lambda i: (people[i].box[3], i))
    for i in order:
        p = people[i]
        x1, y1, x2, y2 = p.box
        sprite = render_person(p.identity, p.view, p.phase, max(2, int(round(y2 - y1))), rng)
        ox = int(round(0.5 * (x1 + x2) - 0.5 * sprite.width))
        oy = int(round(y2)) - sprite.height
        layers.append((i, *_place_sprite(canvas, sprite, 0.5 * (x1 + x2), y2)))
        boxes[i] = (ox, oy, ox + sprite.width, oy + sprite.height)
    np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
    visibility = np.zeros(n, np.float32)
    cover = np.zeros((height, width), np.float32)
    for i, x0, y0, alpha in reversed(layers):  # nearest first
        if alpha.size == 0:
            continue
        seen = cover[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
        total = float(alpha.sum())
        visibility[i] = float((alpha * (1.0 - seen)).sum()) / total if total > 0 else 0.0
        seen += alpha * (1.0 - seen)
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return apply_imaging(image, camera, rng, difficulty), boxes, visibility


@lru_cache(maxsize=64)
def _background_image(camera: Camera) -> Image.Image:
    """The camera background at CROP_BACKGROUND_SIZE as a PIL image (cached; never modified)."""
    return Image.fromarray(camera_background(camera, *CROP_BACKGROUND_SIZE))


def _prop_occluder(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """An RGBA layer with a pole at one side or a low object (bin, planter, railing) from the bottom."""
    ss = 2
    layer = Image.new("RGBA", (width * ss, height * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    color = PROP_COLORS[int(rng.integers(len(PROP_COLORS)))] + (255,)
    w, h = width * ss, height * ss
    side = 1 if rng.random() < 0.5 else -1
    if rng.random() < 0.4:
        half, x = rng.uniform(0.06, 0.12) * w, (0.5 + side * rng.uniform(0.25, 0.42)) * w
        draw.rectangle([x - half, 0, x + half, h], fill=color)
    else:
        top, reach = rng.uniform(0.6, 0.8) * h, rng.uniform(0.45, 1.0) * w
        x0, x1 = (w - reach, w + 2) if side > 0 else (-2, reach)
        draw.rectangle([x0, top, x1, h], fill=color)
        draw.rectangle([x0, top, x1, top + 0.04 * h], fill=tuple(int(c * 0.7) for c in color[:3]) + (255,))
    return layer.reduce(ss)


def render_crop(camera: Camera, identity: Identity, rng: np.random.Generator, difficulty: Difficulty,
                width: int = 64, height: int = 128, occluder: Identity | None = None) -> np.ndarray:
    """A Market-1501-style detected crop (uint8 height x width x 3): the person on a patch of the camera's
    background, framed by a mis-centred, mis-scaled box (``difficulty.crop_jitter``), in a view drawn from
    the camera's mix; with ``occluder`` another person (or a prop) partly hides one side."""
    view, phase = _view(camera, rng), float(rng.random())
    jit = difficulty.crop_jitter
    dx, dy, ds = (float(v) for v in rng.standard_normal(3))
    hp = height * float(rng.uniform(0.8, 0.94)) * math.exp(float(np.clip(0.8 * jit * ds, -0.5, 0.5)))
    cx = width * (0.5 + float(np.clip(0.8 * jit * dx, -0.3, 0.3)))
    foot = 0.5 * (height + hp) + height * float(np.clip(0.45 * jit * dy, -0.2, 0.2))
    # Background patch around where such a person would stand in the camera's view.
    bw, bh = CROP_BACKGROUND_SIZE
    foot_bg, scale = _foot_and_scale(camera, rng, difficulty.scale_range)
    k = min(scale * bh / hp, bh / height, bw / width)  # background pixels per crop pixel
    left = float(rng.uniform(0.0, bw - width * k))
    top = float(np.clip(foot_bg * bh - foot * k, 0.0, bh - height * k))
    patch = _background_image(camera).resize((width, height), Image.Resampling.BILINEAR,
                                             box=(left, top, left + width * k, top + height * k))
    canvas = np.asarray(patch, np.float32).copy()
    _place_sprite(canvas, render_person(identity, view, phase, max(2, int(round(hp))), rng), cx, foot)
    if occluder is not None:
        if rng.random() < 0.6:
            side = 1.0 if rng.random() < 0.5 else -1.0
            o_h = hp * float(rng.uniform(1.0, 1.2))
            sprite = render_person(occluder, _view(camera, rng), float(rng.random()), max(2, int(round(o_h))), rng)
            o_cx = cx + side * (0.5 * sprite.width + width * float(rng.uniform(0.05, 0.25)))
            _place_sprite(canvas, sprite, o_cx, foot + height * float(rng.uniform(0.0, 0.1)))
        else:
            _blend(canvas, _prop_occluder(rng, width, height), 0, 0)
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return apply_imaging(image, camera, rng, difficulty)

