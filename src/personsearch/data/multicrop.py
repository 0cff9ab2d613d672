"""Multi-crop views of unlabeled person crops for self-distillation (DINO; PASS's part areas).

Global views: ``RandomResizedCrop`` of the whole crop (scale 0.4-1) at the training size. Local views
at half that size: with P part areas (PASS), ``locals_per_area`` views cut from each area (full width,
half height, tops spread evenly from 0 to half the height: 0, 1/4, 1/2 for P = 3), each a
``RandomResizedCrop`` of its area (scale 0.1-0.8); without parts (DINO), the same number of local
views cut from the whole crop at the equivalent scale (half of 0.1-0.8). Photometric augmentation
as DINO: flip, colour jitter (p 0.8; strengths configurable), grey (p 0.2), blur (global 1.0 / 0.1,
local 0.5), solarise on the second global view (p 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .images import read_image
from .transforms import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class MultiCropConfig:
    """Sizes, counts and scales of the views (PASS's published values, sizes per recipe)."""

    height: int = 256
    width: int = 128
    global_views: int = 2
    global_scale: tuple[float, float] = (0.4, 1.0)
    locals_per_area: int = 3  # PASS: 3 local views per part area
    local_views: int = 9  # without part areas (DINO): local views of the whole crop
    local_scale: tuple[float, float] = (0.1, 0.8)  # of the area (of the whole crop: half of it)
    # DINO's colour augmentation: jitter (brightness, contrast, saturation, hue) applied with p 0.8,
    # then grey with p ``grayscale``. Both teach colour invariance: keep them mild where identity is
    # mostly garment colour (the synthetic benchmark).
    color_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    grayscale: float = 0.2
    solarize: float = 0.2  # on the second global view
    # Camera-cast jitter (ours, not DINO's): every view's R, G, B multiplied by independent gains in
    # [1 - s, 1 + s], so two views of a crop no longer share its camera's colour cast (a shortcut
    # that says nothing about identity); hue differences between garments stay far larger.
    cast_jitter: float = 0.0
    # Background mix (ours): with this probability a global view keeps only the central
    # ``center_width`` of its crop's width and takes the sides from another random crop, a different
    # one per global view (local views keep their own sides), so no two views that the loss pairs
    # share a background: a person crop is centred, its sides are mostly the camera's scenery.
    background_mix: float = 0.0
    center_width: float = 0.5

    def __post_init__(self) -> None:
        if self.height < 32 or self.width < 32 or self.height % 32 or self.width % 32:
            raise ValueError(f"multi-crop size {self.height}x{self.width}: height and width must be multiples "
                             "of 32 (local views are half as big and cut into 16-pixel patches)")
        if self.global_views < 2:
            raise ValueError(f"self-distillation needs >= 2 global views, got {self.global_views}")
        if len(self.color_jitter) != 4 or min(self.color_jitter) < 0 or not 0 <= self.grayscale <= 1 \
                or not 0 <= self.solarize <= 1 or not 0 <= self.cast_jitter < 1:
            raise ValueError(f"color_jitter must be 4 strengths >= 0 (brightness, contrast, saturation, hue), "
                             f"grayscale and solarize probabilities, cast_jitter in [0, 1), got {self.color_jitter}, "
                             f"{self.grayscale}, {self.solarize}, {self.cast_jitter}")
        if not 0 <= self.background_mix <= 1 or not 0 < self.center_width <= 1:
            raise ValueError(f"background_mix must be a probability and 0 < center_width <= 1, got "
                             f"{self.background_mix}, {self.center_width}")
        for name in ("global_scale", "local_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"{name} must satisfy 0 < lo <= hi <= 1, got {getattr(self, name)}")


def part_areas(num_parts: int, height: int) -> list[tuple[int, int]]:
    """(top, area height) of each of ``num_parts`` overlapping horizontal areas of a crop ``height`` tall."""
    if num_parts <= 1:
        return [(0, height)] * num_parts
    half = height // 2
    return [(round(k * (height - half) / (num_parts - 1)), half) for k in range(num_parts)]


class ChannelGain(torch.nn.Module):
    """Multiply each channel of a [0, 1] float image by its own random gain in [1 - s, 1 + s]; clamp."""

    def __init__(self, strength: float) -> None:
        super().__init__()
        self.strength = float(strength)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        gains = 1.0 + self.strength * (2.0 * torch.rand(image.shape[-3], 1, 1) - 1.0)
        return (image * gains).clamp_(0.0, 1.0)


def _photometric(cfg: MultiCropConfig, blur: float, solarize: float) -> list:
    steps: list = [v2.RandomHorizontalFlip(0.5)]
    if max(cfg.color_jitter) > 0:
        steps.append(v2.RandomApply([v2.ColorJitter(*cfg.color_jitter)], p=0.8))
    if cfg.grayscale > 0:
        steps.append(v2.RandomGrayscale(cfg.grayscale))
    if blur > 0:
        steps.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 2.0))], p=blur))
    if solarize > 0:
        steps.append(v2.RandomSolarize(128, p=solarize))
    steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if cfg.cast_jitter > 0:
        steps.append(ChannelGain(cfg.cast_jitter))
    return steps + [v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def mix_background(image: Image.Image, donor: Image.Image, center_width: float) -> Image.Image:
    """``donor`` resized to ``image``'s size, with ``image``'s central ``center_width`` of the width on top."""
    width, height = image.size
    keep = max(1, round(width * center_width))
    left = (width - keep) // 2
    mixed = donor.resize((width, height), Image.BILINEAR)
    mixed.paste(image.crop((left, 0, left + keep, height)), (left, 0))
    return mixed


class MultiCrop:
    """``views(image, donors)`` -> list of tensors: ``cfg.global_views`` global views, then the local
    views, the i-th cut from part area ``local_areas[i]`` (None: the whole crop). ``donors``: one other
    crop per global view, whose sides that view may take (``cfg.background_mix``)."""

    def __init__(self, cfg: MultiCropConfig, num_parts: int) -> None:
        self.cfg, self.num_parts = cfg, int(num_parts)
        size, local = (cfg.height, cfg.width), (cfg.height // 2, cfg.width // 2)
        self.global_tf = [v2.Compose([v2.RandomResizedCrop(size, scale=cfg.global_scale, antialias=True),
                                      *_photometric(cfg, 1.0 if i == 0 else 0.1, 0.0 if i == 0 else cfg.solarize)])
                          for i in range(cfg.global_views)]
        if self.num_parts:
            areas: tuple[int | None, ...] = tuple(k for k in range(self.num_parts) for _ in range(cfg.locals_per_area))
            scale = cfg.local_scale
        else:
            areas = (None,) * cfg.local_views
            scale = (cfg.local_scale[0] / 2, cfg.local_scale[1] / 2)
        self.local_tf = v2.Compose([v2.RandomResizedCrop(local, scale=scale, antialias=True), *_photometric(cfg, 0.5, 0.0)])
        self.local_areas = areas

    def __call__(self, image: Image.Image, donors: Sequence[Image.Image] = ()) -> list[torch.Tensor]:
        image = image.resize((self.cfg.width, self.cfg.height), Image.BILINEAR)
        views = []
        for i, tf in enumerate(self.global_tf):
            mix = i < len(donors) and float(torch.rand(())) < self.cfg.background_mix
            views.append(tf(mix_background(image, donors[i], self.cfg.center_width) if mix else image))
        areas = part_areas(self.num_parts, self.cfg.height)
        for area in self.local_areas:
            region = image if area is None else image.crop((0, areas[area][0], self.cfg.width,
                                                            areas[area][0] + areas[area][1]))
            views.append(self.local_tf(region))
        return views


class MultiCropDataset(Dataset):
    """Unlabeled crops -> ``{"views": [tensor, ...], "index"}`` (images read on access; with
    background mix on, one random other crop per global view is read as its donor)."""

    def __init__(self, paths: Sequence[str | Path], transform: MultiCrop) -> None:
        self.paths, self.transform = [Path(p) for p in paths], transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        donors = []
        if self.transform.cfg.background_mix > 0 and len(self.paths) > 1:
            picks = torch.randint(len(self.paths) - 1, (self.transform.cfg.global_views,)).tolist()
            donors = [read_image(self.paths[j + (j >= index)]) for j in picks]  # never the crop itself
        return {"views": self.transform(read_image(self.paths[index]), donors), "index": index}
