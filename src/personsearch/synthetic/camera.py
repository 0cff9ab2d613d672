"""A synthetic surveillance camera: its static background, perspective and imaging pipeline.

The background is a wall (optional) above a ground plane seen in perspective, with textures and a
few static props; it is a pure function of the camera, so it is cached. Imaging (colour cast,
per-frame lighting, blur, noise, JPEG quality) is random per frame around the camera's own look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import special

from personsearch.synthetic.config import Difficulty, SubtaskDomain

RGB = tuple[int, int, int]
VIEW_ORDER = ("front", "back", "left", "right")
GROUND_COLORS: dict[str, tuple[RGB, ...]] = {
    "tiles": ((178, 172, 160), (150, 150, 152), (196, 184, 168), (164, 126, 108)),
    "paving": ((150, 98, 82), (140, 138, 132), (172, 152, 122)),
    "grass": ((84, 126, 56), (98, 138, 66), (72, 108, 52)),
    "asphalt": ((90, 90, 94), (106, 104, 102), (76, 78, 82)),
}
WALL_COLORS: dict[str, tuple[RGB, ...]] = {
    "bricks": ((150, 72, 54), (172, 112, 82), (190, 170, 132)),
    "concrete": ((172, 170, 162), (202, 198, 188), (142, 144, 148)),
    "panels": ((212, 214, 216), (122, 140, 160), (182, 172, 152)),
}
_GAUSS_LUT = (np.sqrt(2.0) * special.erfinv(np.linspace(-1, 1, 257)[:-1] + 1.0 / 256)).astype(np.float32)
PROP_COLORS: tuple[RGB, ...] = ((60, 62, 66), (96, 70, 48), (40, 70, 52), (120, 120, 124), (150, 60, 40))


@dataclass(frozen=True)
class Prop:
    """A static object of the background."""

    kind: str  # pole | bench | planter | bin (stand on the ground) | window | door (on the wall)
    x: float  # centre, fraction of image width
    y: float  # foot (ground props, doors) or centre (windows), fraction of image height
    size: float  # height, fraction of image height
    color: RGB


@dataclass(frozen=True)
class Camera:
    """One camera's look. Positions are fractions of the image height/width."""

    seed: int  # texture seed of the background
    horizon: float  # vanishing line of the ground plane (may be < 0 for a steep camera)
    ground_y: float  # wall / ground boundary (0 = no wall visible)
    near_y: float  # foot line of the largest people (near the bottom edge)
    ground_texture: str  # tiles | paving | grass | asphalt
    ground_color: RGB
    wall_texture: str  # bricks | concrete | panels
    wall_color: RGB
    props: tuple[Prop, ...]
    cast: tuple[float, float, float]  # RGB gains
    brightness: float
    saturation: float
    blur: float  # base Gaussian blur radius (pixels at output size)
    noise: float  # base noise std (0..255)
    jpeg_bias: float  # where in difficulty.jpeg_quality this camera's quality sits (0..1)
    view_mix: tuple[float, float, float, float]  # probabilities of VIEW_ORDER


def person_scale(camera: Camera, foot_y: float, scale_range: tuple[float, float]) -> float:
    """Person height / image height for a person whose feet are at ``foot_y`` (fraction of height):
    linear in the distance to the horizon, equal to ``scale_range[1]`` at the camera's near line."""
    return scale_range[1] * (foot_y - camera.horizon) / (camera.near_y - camera.horizon)


def foot_for_scale(camera: Camera, scale: float, scale_range: tuple[float, float]) -> float:
    """Inverse of :func:`person_scale`: the foot line (fraction of height) of a person of ``scale``."""
    return camera.horizon + scale * (camera.near_y - camera.horizon) / scale_range[1]


def min_foot(camera: Camera) -> float:
    """Farthest foot line (fraction of height) where a person stands in front of all props."""
    return max([camera.ground_y + 0.03] + [p.y + 0.01 for p in camera.props if p.kind not in ("window", "door")])


def _pick(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def _sample_props(rng: np.random.Generator, horizon: float, ground_y: float, near_y: float) -> tuple[Prop, ...]:
    props = []
    for _ in range(int(rng.integers(2, 6))):
        on_wall = ground_y > 0.12 and rng.random() < 0.4
        kind = str(_pick(rng, ("window", "door") if on_wall else ("pole", "bench", "planter", "bin")))
        x, color = float(rng.uniform(0.04, 0.96)), PROP_COLORS[int(rng.integers(len(PROP_COLORS)))]
        if kind == "window":
            size = float(rng.uniform(0.25, 0.5)) * ground_y
            props.append(Prop(kind, x, float(rng.uniform(0.35, 0.6)) * ground_y, size, color))
            continue
        # Ground props stand at the back (people in front of them are drawn over them).
        foot = ground_y if kind == "door" else (ground_y or 0.03) + float(rng.uniform(0.005, 0.04))
        person = 0.6 * (foot - horizon) / (near_y - horizon)  # height of a person standing there
        rel = {"pole": rng.uniform(1.5, 2.2), "bench": rng.uniform(0.25, 0.32), "planter": rng.uniform(0.3, 0.5),
               "bin": rng.uniform(0.4, 0.55), "door": rng.uniform(1.15, 1.3)}[kind]
        props.append(Prop(kind, x, foot, float(rel * person), color))
    return tuple(props)


def sample_camera(rng: np.random.Generator, difficulty: Difficulty) -> Camera:
    """One random camera; its look (cast, brightness, blur, noise) is scaled by ``difficulty``."""
    horizon = float(rng.uniform(-0.25, 0.3))
    ground_y = float(np.clip(horizon + rng.uniform(0.08, 0.22), 0.0, 0.5))
    ground_y = ground_y if ground_y >= 0.06 else 0.0
    near_y = float(rng.uniform(0.95, 1.04))
    ground_tex = str(_pick(rng, tuple(GROUND_COLORS)))
    wall_tex = str(_pick(rng, tuple(WALL_COLORS)))
    light = difficulty.lighting
    alpha = (1.5, 1.5, 1.0, 1.0) if rng.random() < 0.5 else (1.0, 1.0, 1.5, 1.5)  # walkway along / across
    mix = 0.04 + rng.dirichlet(alpha)
    return Camera(
        seed=int(rng.integers(2**31)),
        horizon=horizon,
        ground_y=ground_y,
        near_y=near_y,
        ground_texture=ground_tex,
        ground_color=_pick(rng, GROUND_COLORS[ground_tex]),  # type: ignore[arg-type]
        wall_texture=wall_tex,
        wall_color=_pick(rng, WALL_COLORS[wall_tex]),  # type: ignore[arg-type]
        props=_sample_props(rng, horizon, ground_y, near_y),
        cast=tuple(float(g) for g in 1.0 + light * rng.uniform(-0.5, 0.5, 3)),  # type: ignore[arg-type]
        brightness=float(1.0 + light * rng.uniform(-0.9, 0.5)),
        saturation=float(1.0 + light * rng.uniform(-1.2, 0.6)),
        blur=float(difficulty.blur_max * rng.uniform(0.0, 0.6)),
        noise=float(difficulty.noise_max * rng.uniform(0.2, 0.7)),
        jpeg_bias=float(rng.uniform(0.0, 1.0)),
        view_mix=tuple(float(p) for p in mix / mix.sum()),  # type: ignore[arg-type]
    )


def sample_cameras(n: int, rng: np.random.Generator, difficulty: Difficulty,
                   domain: SubtaskDomain | None = None) -> list[Camera]:
    """``n`` cameras with different backgrounds, perspective, colour cast and image quality; a
    non-neutral ``domain`` then shifts their look (no random draw changes: same scenes otherwise)."""
    cameras = [sample_camera(rng, difficulty) for _ in range(n)]
    if domain is None or domain.neutral:
        return cameras
    return [replace(c, cast=tuple(float(g * t) for g, t in zip(c.cast, domain.tint)),  # type: ignore[arg-type]
                    brightness=c.brightness * domain.brightness,
                    blur=min(difficulty.blur_max, c.blur + domain.blur)) for c in cameras]


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise in ~[-1, 1] with features of about ``cell`` pixels."""
    small = rng.standard_normal((max(2, int(h / cell) + 2), max(2, int(w / cell) + 2))).astype(np.float32)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def _lines(u: np.ndarray, pix: np.ndarray, half_width: float) -> np.ndarray:
    """Anti-aliased coverage of lines at integer ``u`` (``pix`` = u-units per pixel)."""
    dist = np.abs(u - np.round(u))
    cov = np.clip((half_width - dist) / pix + 0.5, 0.0, 1.0)
    fade = np.minimum(1.0, 2.0 * half_width / pix)  # far away lines blend into the mean colour
    return cov * fade + 2.0 * half_width * (1.0 - fade)


def _cells(rng: np.random.Generator, iu: np.ndarray, iv: np.ndarray) -> np.ndarray:
    table = rng.uniform(-1.0, 1.0, (64, 64)).astype(np.float32)
    return table[iv.astype(np.int64) % 64, iu.astype(np.int64) % 64]


def _ground(camera: Camera, rng: np.random.Generator, h: int, w: int, top: int) -> np.ndarray:
    """Ground rows ``top..h``: a textured plane in perspective (brightness map times colour)."""
    y, x = np.mgrid[top:h, 0:w].astype(np.float32) + 0.5
    d = y - camera.horizon * h  # pixels below the vanishing line (> 0 on the ground)
    lateral, depth = (x - 0.5 * w) / d, 1.2 * h / d  # ground coordinates in camera-height units
    tile = float(rng.uniform(0.18, 0.32))
    kind = camera.ground_texture
    fine = rng.standard_normal(d.shape).astype(np.float32)
    if kind in ("tiles", "paving"):
        su, sv = (tile, tile) if kind == "tiles" else (0.5 * tile, 0.25 * tile)
        v = depth / sv + rng.uniform()
        u = lateral / su + (0.5 * (np.floor(v) % 2) if kind == "paving" else 0.0)
        grout = np.maximum(_lines(u, 1.0 / (d * su), 0.04), _lines(v, 1.2 * h / (d * d * sv), 0.04))
        shade = (1.0 + 0.07 * _cells(rng, np.floor(u), np.floor(v))) * (1.0 - 0.3 * grout) + 0.025 * fine
        return shade[..., None] * np.asarray(camera.ground_color, np.float32)
    coarse = _smooth_noise(rng, h - top, w, 24.0)
    if kind == "grass":
        shade = 1.0 + 0.12 * coarse + 0.12 * fine + 0.08 * _smooth_noise(rng, h - top, w, 4.0)
        tint = np.stack([1.0 + 0.08 * coarse, np.ones_like(coarse), 1.0 - 0.05 * coarse], -1)
        return (shade[..., None] * tint) * np.asarray(camera.ground_color, np.float32)
    shade = 1.0 + 0.05 * coarse + 0.07 * fine
    out = shade[..., None] * np.asarray(camera.ground_color, np.float32)
    if rng.random() < 0.5:  # zebra crossing
        z0 = float(rng.uniform(1.6, 3.0))
        band = (depth > z0) & (depth < z0 + 1.2)
        stripe = np.clip(np.sin(lateral * (2 * np.pi / 0.45)) * (0.15 * d) + 0.5, 0, 1) * band
        out = out * (1 - 0.8 * stripe[..., None]) + 0.8 * stripe[..., None] * 225.0
    return out


def _wall(camera: Camera, rng: np.random.Generator, h_img: int, rows: int, w: int) -> np.ndarray:
    """Wall rows ``0..rows``: bricks, concrete slabs or vertical panels seen frontally."""
    y, x = np.mgrid[0:rows, 0:w].astype(np.float32) + 0.5
    fine = rng.standard_normal((rows, w)).astype(np.float32)
    coarse = _smooth_noise(rng, rows, w, 20.0)
    kind = camera.wall_texture
    if kind == "bricks":
        bh = h_img / float(rng.uniform(28, 40))
        v = y / bh
        u = x / (2.1 * bh) + 0.5 * (np.floor(v) % 2)
        mortar = np.maximum(_lines(u, 1.0 / (2.1 * bh), 0.05), _lines(v, 1.0 / bh, 0.08))
        shade = (1.0 + 0.09 * _cells(rng, np.floor(u), np.floor(v))) * (1.0 - 0.35 * mortar)
    elif kind == "concrete":
        v = y / (h_img / float(rng.uniform(4, 7)))
        shade = (1.0 + 0.06 * coarse) * (1.0 - 0.25 * _lines(v, np.float32(1.0 / (h_img / 5.5)), 0.015))
    else:
        pw = w / float(rng.uniform(6, 11))
        u = x / pw
        shade = (1.0 + 0.05 * _cells(rng, np.floor(u), np.zeros_like(u))) * (1.0 - 0.4 * _lines(u, 1.0 / pw, 0.02))
    shade = shade + 0.02 * fine + 0.05 * (y / max(rows, 1))
    return shade[..., None] * np.asarray(camera.wall_color, np.float32)


def _draw_props(img: Image.Image, camera: Camera) -> None:
    draw = ImageDraw.Draw(img)
    h, w = img.height, img.width
    for p in camera.props:
        x, y, s = p.x * w, p.y * h, p.size * h
        dark = tuple(int(c * 0.7) for c in p.color)
        if p.kind == "pole":
            draw.rectangle([x - 0.012 * s, y - s, x + 0.012 * s, y], fill=p.color)
            draw.ellipse([x - 0.06 * s, y - s - 0.03 * s, x + 0.06 * s, y - s + 0.02 * s], fill=dark)
        elif p.kind == "bench":
            draw.rectangle([x - 1.6 * s, y - 0.6 * s, x + 1.6 * s, y - 0.45 * s], fill=p.color)
            draw.rectangle([x - 1.6 * s, y - 1.3 * s, x + 1.6 * s, y - 1.1 * s], fill=p.color)
            for lx in (-1.4, 1.4):
                draw.rectangle([x + lx * s - 0.07 * s, y - 0.6 * s, x + lx * s + 0.07 * s, y], fill=dark)
        elif p.kind == "planter":
            draw.rectangle([x - 0.8 * s, y - s, x + 0.8 * s, y], fill=p.color)
            draw.ellipse([x - 0.9 * s, y - 1.8 * s, x + 0.9 * s, y - 0.8 * s], fill=(52, 104, 46))
        elif p.kind == "bin":
            draw.rectangle([x - 0.3 * s, y - s, x + 0.3 * s, y], fill=p.color)
            draw.rectangle([x - 0.34 * s, y - s, x + 0.34 * s, y - 0.88 * s], fill=dark)
        elif p.kind == "door":
            draw.rectangle([x - 0.3 * s, y - s, x + 0.3 * s, y], fill=dark)
            draw.rectangle([x - 0.25 * s, y - 0.94 * s, x + 0.25 * s, y], fill=(70, 84, 96))
        else:  # window
            draw.rectangle([x - 0.7 * s, y - 0.5 * s, x + 0.7 * s, y + 0.5 * s], fill=(200, 200, 196))
            draw.rectangle([x - 0.64 * s, y - 0.44 * s, x + 0.64 * s, y + 0.44 * s], fill=(64, 82, 104))
            draw.rectangle([x - 0.02 * s, y - 0.44 * s, x + 0.02 * s, y + 0.44 * s], fill=(200, 200, 196))


@lru_cache(maxsize=128)
def _background(camera: Camera, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(camera.seed)
    top = int(round(camera.ground_y * height))
    img = np.empty((height, width, 3), np.float32)
    if top > 0:
        img[:top] = _wall(camera, rng, height, top, width)
    img[top:] = _ground(camera, rng, height, width, top)
    if top > 0:  # kerb / skirting line where the wall meets the ground
        band = max(1, height // 60)
        img[max(0, top - band):top] *= 0.6
    img *= (1.0 + 0.08 * _smooth_noise(rng, height, width, 60.0))[..., None]
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    _draw_props(pil, camera)
    out = np.asarray(pil)
    out.flags.writeable = False
    return out


def camera_background(camera: Camera, width: int, height: int) -> np.ndarray:
    """The camera's empty scene, uint8 HxWx3; a pure function of (camera, size), cached."""
    return _background(camera, width, height).copy()


def apply_imaging(img: np.ndarray, camera: Camera, rng: np.random.Generator, difficulty: Difficulty) -> np.ndarray:
    """Per-frame camera response: colour cast and lighting jitter around the camera's own (strength
    ``difficulty.lighting``), a brightness gradient, blur and sensor noise. Returns uint8 HxWx3."""
    h, w = img.shape[:2]
    light = difficulty.lighting
    gains = np.asarray(camera.cast, np.float32) * (1.0 + 0.25 * light * rng.standard_normal(3).astype(np.float32))
    gains *= camera.brightness * (1.0 + 0.3 * light * float(rng.standard_normal()))
    angle, strength = rng.uniform(0.0, 2 * np.pi), 0.4 * light * rng.random()
    ramp = (math.cos(angle) * np.linspace(-1, 1, w, dtype=np.float32)[None, :]
            + math.sin(angle) * np.linspace(-1, 1, h, dtype=np.float32)[:, None])
    out = img.astype(np.float32) * (1.0 + strength * ramp)[..., None] * gains
    sat = max(0.0, camera.saturation * (1.0 + 0.2 * light * float(rng.standard_normal())))
    gray = out @ np.asarray([0.299, 0.587, 0.114], np.float32)
    out = gray[..., None] * (1.0 - sat) + out * sat
    radius = float(np.clip(camera.blur + 0.2 * difficulty.blur_max * rng.standard_normal(), 0.0, difficulty.blur_max))
    std = float(np.clip(camera.noise * rng.uniform(0.6, 1.4), 0.0, difficulty.noise_max))
    pil = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    if radius > 0.25:
        pil = pil.filter(ImageFilter.GaussianBlur(radius))
    noise = np.take(_GAUSS_LUT, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))  # fast Gaussian noise via quantiles
    return np.clip(np.asarray(pil, np.float32) + std * noise + 0.5, 0, 255).astype(np.uint8)


def jpeg_quality(camera: Camera, rng: np.random.Generator, difficulty: Difficulty) -> int:
    """JPEG quality of one frame: around the camera's bias, inside ``difficulty.jpeg_quality``."""
    lo, hi = difficulty.jpeg_quality
    t = float(np.clip(camera.jpeg_bias + 0.15 * rng.standard_normal(), 0.0, 1.0))
    return int(round(lo + (hi - lo) * t))
