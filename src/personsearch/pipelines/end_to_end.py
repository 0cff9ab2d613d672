"""The end-to-end person search model (OIM/NAE) behind the pipelines' numpy interface."""

from __future__ import annotations

import numpy as np
import torch

from .images import ImageLike, check_boxes, load_rgb


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255)


class EndToEndSearcher:
    """``searcher(image)`` -> ``{"boxes" (N, 4), "scores" (N,), "embeddings" (N, D)}``; gallery
    embeddings are NAE outputs (unit direction x person probability), queries are unit vectors.

    ``det_thresh`` drops detections scoring below it (the protocols' 0.5); ``dtype`` bfloat16 runs
    the network under CPU/GPU autocast.
    """

    def __init__(self, model: torch.nn.Module, det_thresh: float = 0.5, dtype: torch.dtype | None = None) -> None:
        self.model = model.eval()
        self.det_thresh = float(det_thresh)
        self.dtype = dtype
        self.device = next(model.parameters()).device
        self.dim = int(model.roi_heads.embedding_head.dim)

    def _autocast(self):
        enabled = self.dtype is not None and self.dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16, enabled=enabled)

    @torch.no_grad()
    def __call__(self, image: ImageLike) -> dict[str, np.ndarray]:
        """Detect and embed every person in one image."""
        with self._autocast():
            out = self.model([_tensor(load_rgb(image)).to(self.device)])[0]
        keep = out["scores"] >= self.det_thresh
        return {key: out[key][keep].float().cpu().numpy() for key in ("boxes", "scores", "embeddings")}

    @torch.no_grad()
    def extract_query(self, image: ImageLike, boxes) -> np.ndarray:
        """Unit embeddings (N, D) of given boxes [x1, y1, x2, y2] (the RoI head on ground-truth boxes)."""
        rgb = load_rgb(image)
        checked = check_boxes(boxes, rgb.shape[1], rgb.shape[0])
        with self._autocast():
            emb = self.model.extract_query([_tensor(rgb).to(self.device)], [torch.from_numpy(checked).to(self.device)])
        return emb[0].float().cpu().numpy()
