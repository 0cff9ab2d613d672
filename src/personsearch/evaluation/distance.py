"""Distance matrices between feature sets, chunked so memory stays bounded (torchreid semantics)."""

from __future__ import annotations

import numpy as np
import torch

from .checks import feature_pair

METRICS = ("euclidean", "cosine")


def compute_distance(query: np.ndarray, gallery: np.ndarray, metric: str = "euclidean",
                     chunk: int = 4096) -> np.ndarray:
    """(Q, G) float32 distances: "euclidean" = squared L2 (torchreid, no sqrt), "cosine" = 1 - cos."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got '{metric}'")
    q, g = feature_pair(query, gallery, "query features", "gallery features")
    qt, gt = torch.from_numpy(q), torch.from_numpy(g)
    if metric == "cosine":
        qt = torch.nn.functional.normalize(qt, dim=1)
        gt = torch.nn.functional.normalize(gt, dim=1)
    g_sq = (gt * gt).sum(1)
    out = np.empty((len(q), len(g)), np.float32)
    for start in range(0, len(q), chunk):
        block = qt[start:start + chunk]
        dots = block @ gt.T
        if metric == "cosine":
            out[start:start + chunk] = (1 - dots).numpy()
        else:
            out[start:start + chunk] = ((block * block).sum(1, keepdim=True) + g_sq[None] - 2 * dots).clamp_min_(0).numpy()
    return out
