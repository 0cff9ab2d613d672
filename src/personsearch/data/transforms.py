"""Image transforms for ReID crops: BoT-style training augmentation and the test transform."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation: flip, pad + random crop, random erasing (BoT defaults)."""

    flip: float = 0.5
    pad: int = 10
    random_erasing: float = 0.5
    color_jitter: float = 0.0  # brightness/contrast/saturation strength; 0 disables


def _to_tensor() -> list:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def build_test_transform(height: int, width: int) -> v2.Compose:
    """Resize to (height, width), to a normalised float tensor."""
    return v2.Compose([v2.Resize((height, width), antialias=True), *_to_tensor()])


def build_train_transform(height: int, width: int, aug: AugmentConfig = AugmentConfig()) -> v2.Compose:
    """Resize, flip, pad + random crop, optional colour jitter, normalise, random erasing."""
    steps: list = [v2.Resize((height, width), antialias=True)]
    if aug.flip > 0:
        steps.append(v2.RandomHorizontalFlip(aug.flip))
    if aug.pad > 0:
        steps += [v2.Pad(aug.pad), v2.RandomCrop((height, width))]
    if aug.color_jitter > 0:
        steps.append(v2.ColorJitter(aug.color_jitter, aug.color_jitter, aug.color_jitter))
    steps += _to_tensor()
    if aug.random_erasing > 0:
        steps.append(v2.RandomErasing(p=aug.random_erasing, value=0))
    return v2.Compose(steps)
