"""torch Datasets over the typed records: one sample -> a dict of tensors."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from .images import read_image
from .records import ReidSample


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
