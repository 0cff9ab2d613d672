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

from ..inference.crops import crop_people
from .images import ImageLike, check_boxes, load_rgb

Detector = Callable[[np.ndarray], np.ndarray]  # RGB uint8 (H, W, 3) -> (N, 5) x1, y1, x2, y2, score


class TwoStepSearcher:
    """``detector`` finds people; ``embedder`` (eval-mode ReID model: (B, 3, h, w) -> (B, D)) embeds crops.
    ``dtype`` (e.g. ``torch.bfloat16``) runs detector (a torch one) and embedder under autocast."""

    def __init__(self, detector: Detector, embedder: torch.nn.Module, crop_size: tuple[int, int] = (256, 128),
                 batch_size: int = 32, dtype: torch.dtype | None = None) -> None:
        self.detector = detector
        self.embedder = embedder.eval()
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.dtype = dtype
        with torch.no_grad():
            self.dim = int(self.embedder(torch.zeros(1, 3, *crop_size)).shape[1])

    def _autocast(self):
        parameter = next(iter(self.embedder.parameters()), None)
        device = parameter.device.type if parameter is not None else "cpu"
        enabled = self.dtype is not None and self.dtype != torch.float32
        return torch.autocast(device, dtype=self.dtype or torch.bfloat16, enabled=enabled)

    def crops(self, image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
        """The embedder's input for ``boxes`` of the RGB uint8 ``image``: (N, 3, h, w) ImageNet-normalised crops."""
        return crop_people(torch.from_numpy(image).permute(2, 0, 1).float().div_(255), boxes, self.crop_size)

    @torch.no_grad()
    def embed(self, crops: torch.Tensor) -> np.ndarray:
        """L2-normalised embeddings (N, D) of ``crops`` (from ``crops``), in batches of ``batch_size``."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        with self._autocast():
            feats = torch.cat([self.embedder(crops[i:i + self.batch_size])
                               for i in range(0, len(crops), self.batch_size)])
        return F.normalize(feats.float(), dim=1).numpy()

    def extract_query(self, image: ImageLike, boxes) -> np.ndarray:
        """L2-normalised embeddings (N, D) of the given boxes [x1, y1, x2, y2] in ``image``."""
        rgb = load_rgb(image)
        boxes = check_boxes(boxes, rgb.shape[1], rgb.shape[0])
        if len(boxes) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.embed(self.crops(rgb, boxes))

    @torch.no_grad()
    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """The people in the RGB uint8 ``rgb``: (N, 5) ``[x1, y1, x2, y2, score]``, boxes clipped to
        the image, those with no area left out."""
        with self._autocast():
            detections = np.asarray(self.detector(rgb), np.float32).reshape(-1, 5)
        height, width = rgb.shape[:2]
        x1, y1 = detections[:, 0].clip(0, width), detections[:, 1].clip(0, height)
        x2, y2 = detections[:, 2].clip(0, width), detections[:, 3].clip(0, height)
        return detections[(x2 - x1 >= 1) & (y2 - y1 >= 1)]  # degenerate boxes have nothing to embed

    def __call__(self, image: ImageLike) -> dict[str, np.ndarray]:
        """Detect and embed every person: ``{"boxes", "scores", "embeddings"}``."""
        rgb = load_rgb(image)
        detections = self.detect(rgb)
        return {"boxes": detections[:, :4], "scores": detections[:, 4],
                "embeddings": self.extract_query(rgb, detections[:, :4])}


class ModelDetector:
    """A torchvision-style detection model (images -> ``[{"boxes", "scores"}]``) as a ``Detector``:
    RGB uint8 (H, W, 3) in, (N, 5) ``[x1, y1, x2, y2, score]`` out, scores >= ``score_threshold``."""

    def __init__(self, model: torch.nn.Module, score_threshold: float = 0.5) -> None:
        self.model = model.eval()
        self.score_threshold = float(score_threshold)
        self.device = next(iter(model.parameters())).device

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        image = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1).float().div_(255)
        out = self.model([image])[0]
        keep = out["scores"] >= self.score_threshold
        return torch.cat([out["boxes"][keep], out["scores"][keep, None]], 1).float().cpu().numpy()
