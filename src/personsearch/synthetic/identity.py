"""Appearance of a synthetic person: the attributes that define an identity, and how to sample them.

Garment colours come from small fixed named palettes (the first ``difficulty.upper_colors`` /
``lower_colors`` entries), then a small per-identity shade jitter, so many identities share a
shirt or trousers and only the combination of parts identifies a person.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from personsearch.synthetic.config import Difficulty

RGB = tuple[int, int, int]

UPPER_PALETTE: tuple[tuple[str, RGB], ...] = (
    ("red", (196, 32, 38)), ("white", (232, 232, 226)), ("black", (34, 34, 38)),
    ("blue", (38, 72, 170)), ("grey", (128, 128, 132)), ("green", (44, 128, 62)),
    ("yellow", (228, 196, 44)), ("navy", (28, 36, 84)), ("pink", (226, 128, 168)),
    ("orange", (232, 116, 32)), ("purple", (108, 52, 138)), ("brown", (112, 72, 42)),
    ("cyan", (64, 176, 198)), ("beige", (206, 186, 148)), ("maroon", (118, 28, 42)),
    ("olive", (108, 112, 46)), ("light blue", (148, 188, 226)), ("teal", (22, 108, 108)),
)
LOWER_PALETTE: tuple[tuple[str, RGB], ...] = (
    ("black", (32, 32, 36)), ("jeans", (52, 76, 124)), ("grey", (112, 112, 118)),
    ("khaki", (178, 158, 108)), ("navy", (30, 36, 70)), ("white", (222, 222, 216)),
    ("brown", (96, 66, 42)), ("olive", (84, 90, 50)), ("light jeans", (112, 142, 180)),
    ("red", (158, 36, 42)), ("green", (46, 94, 60)), ("beige", (198, 182, 148)),
)
SKIN_TONES: tuple[RGB, ...] = ((244, 208, 180), (228, 184, 150), (204, 152, 112),
                               (168, 116, 80), (124, 84, 58), (88, 60, 42))
HAIR_COLORS: tuple[RGB, ...] = ((24, 20, 18), (62, 40, 26), (110, 72, 40), (196, 160, 96),
                                (150, 150, 146), (136, 58, 30))
SHOE_COLORS: tuple[RGB, ...] = ((28, 28, 30), (232, 232, 228), (92, 60, 36), (120, 120, 124),
                                (34, 40, 80), (170, 40, 40))
ACCESSORY_COLORS: tuple[RGB, ...] = ((30, 30, 34), (110, 110, 116), (32, 42, 92), (120, 78, 44),
                                     (170, 38, 40), (48, 104, 58), (196, 170, 120), (230, 230, 226))
PATTERN_COLORS: tuple[RGB, ...] = ((238, 238, 234), (28, 28, 30), (200, 36, 40), (32, 48, 120),
                                   (232, 200, 40), (40, 130, 70))

PATTERNS = ("plain", "stripes", "checks", "logo")
LOWER_TYPES = ("trousers", "shorts", "skirt")
HAIR_STYLES = ("short", "long", "ponytail", "bald")
BAGS = ("none", "backpack", "shoulder")


@dataclass(frozen=True)
class Identity:
    """Everything that defines how one person looks (plain, hashable values; colours are RGB ints)."""

    height: float  # stature factor (~0.92..1.08): taller people look slimmer for the same box height
    build: float  # body width factor (~0.85..1.2)
    head: float  # head size factor (~0.9..1.1)
    legs: float  # leg length factor (~0.94..1.06)
    skin: RGB
    hair: RGB
    hair_style: str  # one of HAIR_STYLES
    upper_name: str  # palette entry of the upper garment (before jitter)
    upper: RGB
    pattern: str  # one of PATTERNS; "logo" is a chest print, visible from the front only
    pattern_color: RGB
    sleeves: str  # "short" | "long"
    lower_name: str  # palette entry of the lower garment (before jitter)
    lower: RGB
    lower_type: str  # one of LOWER_TYPES
    shoes: RGB
    bag: str  # one of BAGS
    bag_color: RGB
    bag_side: str  # "left" | "right": the person's own side carrying a shoulder bag
    hat: RGB | None  # cap colour, None for no hat


def palette(kind: str, size: int) -> list[tuple[str, RGB]]:
    """The first ``size`` named colours of the ``"upper"`` or ``"lower"`` palette, extended by evenly
    spaced hues when more colours are asked for than are named."""
    base = UPPER_PALETTE if kind == "upper" else LOWER_PALETTE
    out = list(base[:size])
    for k in range(size - len(out)):
        hue = (k * 0.618034) % 1.0
        value = 0.45 + 0.4 * ((k // 3) % 2)
        r, g, b = colorsys.hsv_to_rgb(hue, 0.65, value)
        out.append((f"hue{k}", (int(r * 255), int(g * 255), int(b * 255))))
    return out


def jitter_color(color: RGB, rng: np.random.Generator, amount: float) -> RGB:
    """A shade of ``color``: brightness and per-channel variation, both scaled by ``amount`` (0..1)."""
    shade = 1.0 + amount * rng.uniform(-1.0, 1.0)
    channels = np.asarray(color, dtype=np.float64) * shade + amount * 60.0 * rng.uniform(-1.0, 1.0, 3)
    return tuple(int(v) for v in np.clip(np.round(channels), 0, 255))  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: tuple, probs: tuple[float, ...] | None = None):
    return options[int(rng.choice(len(options), p=probs))]


def _contrasting(rng: np.random.Generator, color: RGB) -> RGB:
    """A pattern colour clearly different from the garment colour."""
    far = [c for c in PATTERN_COLORS if sum(abs(a - b) for a, b in zip(c, color)) > 180]
    return far[int(rng.integers(len(far)))]


def sample_identity(rng: np.random.Generator, difficulty: Difficulty) -> Identity:
    """One random identity (all draws from ``rng``, in a fixed order)."""
    jit = difficulty.color_jitter
    upper_name, upper = _pick(rng, tuple(palette("upper", difficulty.upper_colors)))
    lower_name, lower = _pick(rng, tuple(palette("lower", difficulty.lower_colors)))
    pattern = "plain"
    if rng.random() < difficulty.pattern_prob:
        pattern = _pick(rng, PATTERNS[1:])
    pattern_color = _contrasting(rng, upper)
    bag = "none"
    if rng.random() < difficulty.bag_prob:
        bag = _pick(rng, BAGS[1:])
    bag_color = jitter_color(_pick(rng, ACCESSORY_COLORS), rng, jit)
    hat = jitter_color(_pick(rng, ACCESSORY_COLORS), rng, jit) if rng.random() < difficulty.hat_prob else None
    return Identity(
        height=float(rng.uniform(0.92, 1.08)),
        build=float(rng.uniform(0.85, 1.2)),
        head=float(rng.uniform(0.9, 1.1)),
        legs=float(rng.uniform(0.94, 1.06)),
        skin=jitter_color(_pick(rng, SKIN_TONES), rng, 0.5 * jit),
        hair=jitter_color(_pick(rng, HAIR_COLORS), rng, jit),
        hair_style=_pick(rng, HAIR_STYLES, (0.47, 0.3, 0.15, 0.08)),
        upper_name=upper_name,
        upper=jitter_color(upper, rng, jit),
        pattern=pattern,
        pattern_color=pattern_color,
        sleeves=_pick(rng, ("short", "long")),
        lower_name=lower_name,
        lower=jitter_color(lower, rng, jit),
        lower_type=_pick(rng, LOWER_TYPES, (0.6, 0.2, 0.2)),
        shoes=jitter_color(_pick(rng, SHOE_COLORS), rng, jit),
        bag=bag,
        bag_color=bag_color,
        bag_side=_pick(rng, ("left", "right")),
        hat=hat,
    )


def sample_identities(n: int, rng: np.random.Generator, difficulty: Difficulty) -> list[Identity]:
    """``n`` random identities; attributes are shared often (small palettes), so parts must be combined."""
    return [sample_identity(rng, difficulty) for _ in range(n)]
