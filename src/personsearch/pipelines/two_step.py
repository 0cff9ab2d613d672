"""Two-step person search: any person detector, then any crop ReID model on the detected boxes.

Same interface as the end-to-end model's eval output: ``searcher(image)`` gives a dict with
``boxes`` (N, 4), ``scores`` (N,) and L2-normalised ``embeddings`` (N, D); ``extract_query(image,
boxes)`` embeds given boxes (the query path).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD

Detector = Callable[[np.ndarray], np.ndarray]  # RGB uint8 (H, W, 3) -> (N, 5) x1, y1, x2, y2, score


def _as_rgb(image) -> np.ndarray:
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {array.dtype} {array.shape}")
    return array


class TwoStepSearcher:
    """``detector`` finds people; ``embedder`` (eval-mode ReID model: (B, 3, h, w) -> (B, D)) embeds crops."""

    def __init__(self, detector: Detector, embedder: torch.nn.Module, crop_size: tuple[int, int] = (256, 128),
                 batch_size: int = 32) -> None:
        self.detector = detector
        self.embedder = embedder.eval()
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def _crops(self, image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
        height, width = image.shape[:2]
        tensor = torch.from_numpy(image).permute(2, 0, 1).float().div_(255)
        crops = []
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
            x1, y1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
            x2, y2 = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
            if x2 <= x1 or y2 <= y1:
                raise ValueError(f"boxes[{i}] has no area inside the {width}x{height} image")
            crop = tensor[:, y1:y2, x1:x2][None]
            crops.append(F.interpolate(crop, size=self.crop_size, mode="bilinear", align_corners=False, antialias=True))
        return (torch.cat(crops) - self.mean) / self.std

    @torch.no_grad()
    def extract_query(self, image, boxes) -> np.ndarray:
        """L2-normalised embeddings (N, D) of the given boxes [x1, y1, x2, y2] in ``image``."""
        rgb = _as_rgb(image)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 0), np.float32)
        crops = self._crops(rgb, boxes)
        feats = torch.cat([self.embedder(crops[i:i + self.batch_size]) for i in range(0, len(crops), self.batch_size)])
        return F.normalize(feats.float(), dim=1).numpy()

    def __call__(self, image) -> dict[str, np.ndarray]:
        """Detect and embed every person: ``{"boxes", "scores", "embeddings"}``."""
        rgb = _as_rgb(image)
        detections = np.asarray(self.detector(rgb), np.float32).reshape(-1, 5)
        return {"boxes": detections[:, :4], "scores": detections[:, 4],
                "embeddings": self.extract_query(rgb, detections[:, :4])}
