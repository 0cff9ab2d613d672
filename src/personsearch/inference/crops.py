"""Cut detected people out of a scene for a crop ReID model: resize (antialiased) and normalise."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD


def crop_people(image: torch.Tensor, boxes, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, h, w) ImageNet-normalised crops of ``boxes`` [x1, y1, x2, y2] (pixels) from ``image``
    (3, H, W) float in [0, 1]; boxes are rounded outwards and clipped to the image. Raises ValueError
    naming the box when one has no area inside the image."""
    height, width = image.shape[-2:]
    crops = []
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        x1, y1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        x2, y2 = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"boxes[{i}] has no area inside the {width}x{height} image")
        crops.append(F.interpolate(image[None, :, y1:y2, x1:x2], size=size, mode="bilinear", align_corners=False,
                                   antialias=True))
    if not crops:
        return image.new_zeros((0, 3, *size))
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(1, 3, 1, 1)
    return (torch.cat(crops) - mean) / std
