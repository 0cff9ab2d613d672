"""Batch-hard mining and the batch-hard triplet loss (Hermans et al. 2017; BoT), on any kernel metric.

Identity classification needs nothing beyond ``F.cross_entropy(logits, y, label_smoothing=0.1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distance.pairwise import check_metric, pairwise_distance


def hard_example_mining(dist: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Batch-hard mining on a square (N, N) distance matrix of a batch labelled ``targets`` (N,).

    Per anchor i: the farthest positive (same label, j != i) and the nearest negative.
    Returns ``(dist_ap, dist_an, idx_ap, idx_an)``, each (N,); the distances keep their gradient.
    An anchor with no other sample of its identity, or no sample of another identity, gets
    index -1 and distance 0 in the missing slot; select usable anchors with
    ``(idx_ap >= 0) & (idx_an >= 0)`` (TripletLoss does). PK batches (K >= 2) have none such.
    """
    n = dist.shape[0]
    if dist.ndim != 2 or dist.shape[1] != n or targets.shape != (n,):
        raise ValueError(f"need a square (N, N) dist and (N,) targets, got {tuple(dist.shape)}, {tuple(targets.shape)}")
    same = targets.unsqueeze(0) == targets.unsqueeze(1)
    positive = same & ~torch.eye(n, dtype=torch.bool, device=dist.device)
    negative = ~same
    dist_ap, idx_ap = dist.masked_fill(~positive, float("-inf")).max(dim=1)
    dist_an, idx_an = dist.masked_fill(~negative, float("inf")).min(dim=1)
    has_pos, has_neg = positive.any(dim=1), negative.any(dim=1)
    return (
        torch.where(has_pos, dist_ap, torch.zeros_like(dist_ap)),
        torch.where(has_neg, dist_an, torch.zeros_like(dist_an)),
        torch.where(has_pos, idx_ap, torch.full_like(idx_ap, -1)),
        torch.where(has_neg, idx_an, torch.full_like(idx_an, -1)),
    )


def triplet_from_distances(
    dist_ap: Tensor, dist_an: Tensor, margin: float | None = 0.3, valid: Tensor | None = None
) -> Tensor:
    """Mean of relu(d_ap - d_an + margin), or of softplus(d_ap - d_an) when margin is None.

    ``valid`` (bool, same shape) restricts the mean to those anchors; none valid gives 0.
    """
    gap = dist_ap - dist_an
    per_anchor = F.softplus(gap) if margin is None else F.relu(gap + margin)
    if valid is None:
        return per_anchor.mean()
    return (per_anchor * valid).sum() / valid.sum().clamp(min=1)


class TripletLoss(nn.Module):
    """Batch-hard triplet loss on a batch of features (N, D) with identity labels (N,).

    margin: hinge margin (BoT / AlignedReID: 0.3) or None for the soft margin
    log(1 + exp(d_ap - d_an)) (PASS, fast-reid). metric: ``personsearch.distance`` metric (l2 as
    BoT, sql2, cosine). normalize: L2-normalise the features first.
    Anchors without a positive or a negative are left out; with none left the loss is 0
    (still attached to the graph).
    """

    def __init__(self, margin: float | None = 0.3, metric: str = "l2", normalize: bool = False) -> None:
        super().__init__()
        self.metric = check_metric(metric, "triplet metric")
        self.margin = margin
        self.normalize = normalize

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        if self.normalize:
            features = F.normalize(features, dim=1)
        dist = pairwise_distance(features, features, self.metric)
        dist_ap, dist_an, idx_ap, idx_an = hard_example_mining(dist, targets)
        return triplet_from_distances(dist_ap, dist_an, self.margin, valid=(idx_ap >= 0) & (idx_an >= 0))

    def extra_repr(self) -> str:
        return f"margin={self.margin}, metric={self.metric!r}, normalize={self.normalize}"
