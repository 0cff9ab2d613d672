"""Mutual learning between models trained together in one process (AlignedReID, after DML).

Zhang et al., "Deep Mutual Learning" (CVPR 2018) and AlignedReID (arXiv 1711.08184): every model
is pulled towards each partner's class probabilities (KL) and batch distance matrices (squared
difference). In each term the partner is a constant target -- detached, the papers' "zero
gradient" function -- so model i's mutual loss updates model i only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..distance import local_distance, pairwise_distance


def mutual_probability_loss(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """KL(p_b || p_a) = sum_c p_b,c (log p_b,c - log p_a,c), averaged over the batch.

    p = softmax over classes; logits (N, K). Direction as DML: the partner's distribution p_b is
    the (detached) target and the model's own p_a is fitted to it, so the gradient reaches
    ``logits_a`` only. Computed in float32.
    """
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"logits shapes differ: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    log_p_a = F.log_softmax(logits_a.float(), dim=1)
    log_p_b = F.log_softmax(logits_b.detach().float(), dim=1)
    return F.kl_div(log_p_a, log_p_b, reduction="batchmean", log_target=True)


def mutual_distance_loss(dist_a: Tensor, dist_b: Tensor) -> Tensor:
    """mean((dist_a - dist_b.detach())^2) over all entries of two (N, N) batch distance matrices."""
    if dist_a.shape != dist_b.shape:
        raise ValueError(f"distance matrix shapes differ: {tuple(dist_a.shape)} vs {tuple(dist_b.shape)}")
    return (dist_a.float() - dist_b.detach().float()).pow(2).mean()


def _distance_matrices(out: dict[str, Tensor], use_local: bool, metric: str, normalize: bool) -> dict[str, Tensor]:
    """A model's (N, N) batch distances: ``metric`` on ``global`` (L2-normalised first when
    ``normalize``), aligned local on ``local``."""
    feats = out["global"].float()
    dists = {"global_distance": pairwise_distance(feats, feats, metric, normalize=normalize)}
    if use_local:
        dists["local_distance"] = local_distance(out["local"].float(), out["local"].float())
    return dists


def _sum(terms: list[Tensor]) -> Tensor:
    return torch.stack(terms).sum()


def mutual_losses(outputs: list[dict[str, Tensor]], targets: Tensor, use_local: bool, metric: str = "l2",
                  normalize: bool = True) -> list[dict[str, Tensor]]:
    """Per model i, the sum over partners j != i of the mutual terms between i and j.

    outputs: the training-mode output dicts of the models on the SAME batch (``global`` (N, D),
    ``logits`` (N, K), and ``local`` (N, H, C) when use_local). targets (N,): the batch labels, used
    only to check the batch size (the mutual terms need no labels).
    ``metric`` / ``normalize``: the global distance matrices' kernel metric and whether features are
    L2-normalised first. Normalised (the default) keeps the squared-difference term on the scale of
    the other losses (distances in [0, 2]) whatever the feature dimension and norm; unnormalised
    1280-d features make it hundreds of times larger than the ID and triplet terms at the start.
    Returns one dict per model with keys "probability" (only if every output has ``logits``),
    "global_distance" and, with use_local, "local_distance"; each dict's terms carry gradient to
    model i alone. Each model's distance matrices are computed once and shared.
    """
    if len(outputs) < 2:
        raise ValueError(f"mutual learning needs at least 2 models, got {len(outputs)}")
    n = targets.shape[0]
    for out in outputs:
        if out["global"].shape[0] != n:
            raise ValueError(f"outputs and targets disagree on the batch size ({out['global'].shape[0]} vs {n})")
    with_logits = all("logits" in out for out in outputs)
    dists = [_distance_matrices(out, use_local, metric, normalize) for out in outputs]
    losses: list[dict[str, Tensor]] = []
    for i, out in enumerate(outputs):
        partners = [j for j in range(len(outputs)) if j != i]
        terms: dict[str, Tensor] = {}
        if with_logits:
            own = out["logits"]
            terms["probability"] = _sum([mutual_probability_loss(own, outputs[j]["logits"]) for j in partners])
        for key in dists[i]:
            terms[key] = _sum([mutual_distance_loss(dists[i][key], dists[j][key]) for j in partners])
        losses.append(terms)
    return losses


__all__ = ["mutual_distance_loss", "mutual_losses", "mutual_probability_loss"]
