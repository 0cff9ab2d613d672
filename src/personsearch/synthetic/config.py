"""Settings of the synthetic benchmark: difficulty knobs and dataset sizes, with named presets.

Every field is documented; YAML files and ``--set key=value`` overrides map onto these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..utils.config import merge_into, to_plain


@dataclass(frozen=True)
class Difficulty:
    """How hard the benchmark is. Each knob is a probability, a range or a palette size."""

    # Appearance: fewer colours per garment means more identities share an attribute.
    upper_colors: int = 10  # palette size of upper-garment colours
    lower_colors: int = 7  # palette size of lower-garment colours
    color_jitter: float = 0.06  # per-identity shade variation inside a palette entry (0..1)
    bag_prob: float = 0.4  # chance an identity carries a backpack or shoulder bag
    hat_prob: float = 0.2  # chance an identity wears a hat
    pattern_prob: float = 0.45  # chance the upper garment is not plain (stripes, checks, logo)
    # Camera and imaging
    lighting: float = 0.25  # strength of per-camera and per-frame colour cast / brightness change
    blur_max: float = 1.2  # max Gaussian blur radius (pixels, at output size)
    noise_max: float = 6.0  # max std of additive pixel noise (0..255 scale)
    jpeg_quality: tuple[int, int] = (70, 95)  # JPEG quality range
    # Geometry
    crop_jitter: float = 0.12  # mis-centring of ReID crops, as a fraction of box size
    occlusion_prob: float = 0.25  # chance a ReID crop includes a partial occluder
    scale_range: tuple[float, float] = (0.22, 0.6)  # person height as a fraction of scene height

    def __post_init__(self) -> None:
        for name in ("color_jitter", "bag_prob", "hat_prob", "pattern_prob", "lighting",
                     "crop_jitter", "occlusion_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"difficulty.{name} must be in [0, 1], got {value}")
        if self.upper_colors < 2 or self.lower_colors < 2:
            raise ValueError("difficulty.upper_colors and lower_colors must be >= 2")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"difficulty.jpeg_quality must be 1 <= lo <= hi <= 100, got {self.jpeg_quality}")
        lo_s, hi_s = self.scale_range
        if not 0.05 <= lo_s <= hi_s <= 1.0:
            raise ValueError(f"difficulty.scale_range must be 0.05 <= lo <= hi <= 1, got {self.scale_range}")


class _ValidSizes:
    """Checks shared by the size dataclasses: counts >= 0, ranges are (lo, hi) with lo <= hi."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                if len(value) != 2 or not 0 <= value[0] <= value[1]:
                    raise ValueError(f"{type(self).__name__}.{f.name} must be a range [lo, hi] with 0 <= lo <= hi, got {list(value)}")
            elif isinstance(value, int) and value < 0:
                raise ValueError(f"{type(self).__name__}.{f.name} must be >= 0, got {value}")


@dataclass(frozen=True)
class MarketSizes(_ValidSizes):
    """Market-1501-format crops (bounding_box_train / bounding_box_test / query)."""

    train_ids: int = 20
    test_ids: int = 20
    cameras: int = 6
    min_cameras_per_id: int = 2  # each identity is seen by at least this many cameras
    images_per_camera: tuple[int, int] = (2, 4)  # crops per (identity, camera), inclusive range
    distractors: int = 10  # pid 0000 images in the gallery
    junk: int = 5  # pid -1 images in the gallery
    width: int = 64
    height: int = 128


@dataclass(frozen=True)
class SceneSizes(_ValidSizes):
    """A person-search dataset of whole scenes (CUHK-SYSU or PRW format)."""

    train_ids: int = 15
    test_ids: int = 15
    cameras: int = 4
    scenes: int = 120  # total scenes (train + test)
    appearances_per_id: tuple[int, int] = (2, 4)  # scenes each identity appears in
    people_per_scene: tuple[int, int] = (1, 6)  # persons per scene incl. unlabeled passers-by
    width: int = 320
    height: int = 240


@dataclass(frozen=True)
class DetectionSizes(_ValidSizes):
    """COCO-JSON detection-only scenes from cameras unseen elsewhere."""

    images: int = 30
    cameras: int = 3
    people_per_scene: tuple[int, int] = (0, 8)
    width: int = 320
    height: int = 240


@dataclass(frozen=True)
class UnlabeledSizes(_ValidSizes):
    """A flat folder of unlabeled person crops for self-supervised pre-training."""

    images: int = 100
    identities: int = 60
    cameras: int = 4
    width: int = 64
    height: int = 128


@dataclass(frozen=True)
class SubtaskDomain:
    """A systematic look of the sub-task outputs' cameras (``market1501/``, ``detection/``,
    ``unlabeled/``) against the person search ones, for hybrid pre-training's alignment to have a
    gap to close. Neutral by default (outputs byte-identical to a config without it)."""

    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB gains multiplied into every camera's colour cast
    brightness: float = 1.0  # factor on every camera's brightness
    blur: float = 0.0  # extra base blur radius (pixels at output size), capped by difficulty.blur_max

    def __post_init__(self) -> None:
        if len(self.tint) != 3 or min(self.tint) <= 0 or self.brightness <= 0 or self.blur < 0:
            raise ValueError(f"subtask_domain: tint must be 3 positive gains, brightness > 0, blur >= 0; got {self}")

    @property
    def neutral(self) -> bool:
        return tuple(self.tint) == (1.0, 1.0, 1.0) and self.brightness == 1.0 and self.blur == 0.0


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines one synthetic benchmark. Same config + seed = same bytes."""

    seed: int = 0
    difficulty: Difficulty = field(default_factory=Difficulty)
    market: MarketSizes = field(default_factory=MarketSizes)
    cuhk_sysu: SceneSizes = field(default_factory=SceneSizes)
    prw: SceneSizes = field(default_factory=lambda: SceneSizes(cameras=6))
    detection: DetectionSizes = field(default_factory=DetectionSizes)
    unlabeled: UnlabeledSizes = field(default_factory=UnlabeledSizes)
    gallery_sizes: tuple[int, ...] = (10, 50)  # CUHK-SYSU TestG{N} files to write (N < test scenes)
    subtask_domain: SubtaskDomain = field(default_factory=SubtaskDomain)  # look of market1501/detection/unlabeled


PRESETS: dict[str, dict[str, Any]] = {
    # Seconds to generate; for unit tests and CI.
    "tiny": {},
    # Minutes of CPU training away from saturation; several hundred identities, >= 6 cameras.
    "standard": {
        "market": {"train_ids": 300, "test_ids": 300, "cameras": 6, "min_cameras_per_id": 3,
                   "images_per_camera": (1, 4), "distractors": 400, "junk": 200},
        "cuhk_sysu": {"train_ids": 300, "test_ids": 200, "cameras": 8, "scenes": 1800,
                      "appearances_per_id": (2, 5), "people_per_scene": (1, 8),
                      "width": 480, "height": 360},
        "prw": {"train_ids": 200, "test_ids": 150, "cameras": 6, "scenes": 1200,
                "appearances_per_id": (3, 8), "people_per_scene": (1, 8),
                "width": 480, "height": 360},
        "detection": {"images": 800, "cameras": 4, "width": 480, "height": 360},
        "unlabeled": {"images": 4000, "identities": 2000, "cameras": 8},
        "gallery_sizes": (50, 100, 500),
    },
}
# `standard`'s scenes, more identities, and people harder to tell apart: few garment colours (many
# identities share a whole outfit), fewer patterns and accessories, stronger per-camera light, blur
# and noise, more mis-centred and occluded crops. For pre-training methods (PASS) to have room.
PRESETS["hard"] = {
    **PRESETS["standard"],
    "difficulty": {"upper_colors": 5, "lower_colors": 4, "color_jitter": 0.03, "bag_prob": 0.3,
                   "hat_prob": 0.15, "pattern_prob": 0.3, "lighting": 0.45, "blur_max": 1.8,
                   "noise_max": 9.0, "crop_jitter": 0.2, "occlusion_prob": 0.4},
    "market": {**PRESETS["standard"]["market"], "train_ids": 500, "test_ids": 500, "distractors": 600, "junk": 300},
    "unlabeled": {**PRESETS["standard"]["unlabeled"], "images": 8000, "identities": 4000},
}


def make_config(preset: str = "tiny", overrides: dict[str, Any] | None = None, seed: int | None = None) -> SynthConfig:
    """Build a config from a preset name, nested overrides (e.g. parsed YAML) and an optional seed."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    cfg = merge_into(SynthConfig(), PRESETS[preset])
    if overrides:
        cfg = merge_into(cfg, overrides)
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    return cfg


def config_to_dict(cfg: SynthConfig) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for YAML/JSON dumps; a neutral ``subtask_domain`` is left
    out, so configs from before the knob existed dump (and generate) the same bytes."""
    plain = to_plain(cfg)
    if cfg.subtask_domain.neutral:
        del plain["subtask_domain"]
    return plain
