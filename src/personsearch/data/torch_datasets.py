"""torch Datasets over the typed records: one sample -> a dict of tensors."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .images import read_image
from .records import ReidSample, SceneAnnotation


class ReidImageDataset(Dataset):
    """Cropped person images: ``{"images", "pids", "camids", "index"}`` per item."""

    def __init__(self, samples: Sequence[ReidSample], transform: Callable) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        sample = self.samples[index]
        return {"images": self.transform(read_image(sample.path)), "pids": sample.pid,
                "camids": sample.camid, "index": index}


class SceneDataset(Dataset):
    """Whole scenes for person search: ``(image tensor (3, H, W) in [0, 1], {"boxes", "pids", "index"})``.

    Detection models normalise and resize themselves (torchvision's transform), so images stay raw.
    ``flip`` mirrors image and boxes with probability 0.5 (training augmentation).
    """

    def __init__(self, scenes: Sequence[SceneAnnotation], flip: bool = False) -> None:
        self.scenes = list(scenes)
        self.flip = flip

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scene = self.scenes[index]
        image = torch.from_numpy(np.asarray(read_image(scene.path), dtype=np.uint8).copy()).permute(2, 0, 1)
        image = image.float().div_(255)
        boxes = torch.as_tensor(np.asarray(scene.boxes, np.float32).reshape(-1, 4))
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(-1)
            boxes = torch.stack([image.shape[-1] - boxes[:, 2], boxes[:, 1], image.shape[-1] - boxes[:, 0], boxes[:, 3]], 1)
        return image, {"boxes": boxes, "pids": torch.as_tensor(np.asarray(scene.pids, np.int64)),
                       "index": torch.tensor(index)}


def collate_scenes(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Detection-style collate: lists of images and targets (images differ in size)."""
    images, targets = zip(*batch)
    return list(images), list(targets)
