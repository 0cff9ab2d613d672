"""Pairwise distances between feature sets, one definition for losses, evaluation and re-ranking.

Metric names mean the same thing everywhere in the toolkit (a recipe's ``loss.metric``,
``eval.metric``, ``re_ranking_features(metric=...)``, the mutual-learning distance matrices):

- ``l2``: Euclidean distance ``||x - y||``;
- ``sql2``: its square ``||x - y||^2`` (what torchreid and fast-reid call "euclidean");
- ``cosine``: ``1 - cos(x, y)``.

``normalize=True`` L2-normalises both sides first (then ``l2 = sqrt(2 cosine)``, ``sql2 = 2 cosine``).
Squared distances use the expanded form ``|x|^2 + |y|^2 - 2 x.y`` (one matrix product), clamped at 0;
``l2`` takes the square root of that clamped at 1e-12, so its gradient stays finite at zero distance
(BoT's batch-hard triplet does the same).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

METRICS: tuple[str, ...] = ("l2", "sql2", "cosine")
L2_EPS = 1e-12  # inside the square root of ``l2``

_RENAMED = {"euclidean": "'euclidean' is ambiguous and no longer accepted: use 'l2' (the Euclidean distance) "
                         "or 'sql2' (its square, which torchreid calls euclidean)"}


def check_metric(metric: str, where: str = "metric") -> str:
    """``metric`` if it is one of :data:`METRICS`, else ValueError naming ``where`` and the choices."""
    if metric in METRICS:
        return metric
    hint = _RENAMED.get(str(metric), f"choose from {', '.join(METRICS)}")
    raise ValueError(f"{where} = {metric!r}: {hint}")


def row_terms(x: Tensor, metric: str) -> Tensor:
    """Per-row term each block needs: squared norms (``l2``/``sql2``) or inverse norms (``cosine``)."""
    if metric == "cosine":
        return 1.0 / x.norm(dim=1).clamp_min(1e-12)
    return x.pow(2).sum(1)


def block_distance(x: Tensor, x_terms: Tensor, y: Tensor, y_terms: Tensor, metric: str) -> Tensor:
    """(len(x), len(y)) distances from features and their :func:`row_terms` (no validation)."""
    if metric == "cosine":
        return 1.0 - (x @ y.T) * x_terms[:, None] * y_terms[None, :]
    sq = (x_terms[:, None] + y_terms[None, :] - 2.0 * (x @ y.T)).clamp_min(0.0)
    return sq if metric == "sql2" else sq.clamp_min(L2_EPS).sqrt()


def paired_distance(x: Tensor, x_terms: Tensor, y: Tensor, y_terms: Tensor, metric: str) -> Tensor:
    """(N,) distances of the row pairs (x[k], y[k]), same formulas as :func:`block_distance`."""
    dot = (x * y).sum(1)
    if metric == "cosine":
        return 1.0 - dot * x_terms * y_terms
    sq = (x_terms + y_terms - 2.0 * dot).clamp_min(0.0)
    return sq if metric == "sql2" else sq.clamp_min(L2_EPS).sqrt()


def pairwise_distance(x: Tensor, y: Tensor, metric: str = "l2", normalize: bool = False) -> Tensor:
    """(M, N) distances between the rows of x (M, D) and y (N, D): differentiable, same device/dtype.

    The training form (triplet mining, mutual learning); see the module docstring for the metrics.
    """
    check_metric(metric)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need (M, D) and (N, D) features, got {tuple(x.shape)} and {tuple(y.shape)}")
    if normalize:
        x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
    return block_distance(x, row_terms(x, metric), y, row_terms(y, metric), metric)


def _as_features(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (N, D) features, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} contains NaN or inf (first at index {bad})")
    return np.ascontiguousarray(arr)


def distance_matrix(query, gallery, metric: str = "cosine", normalize: bool = False,
                    chunk: int = 4096) -> np.ndarray:
    """(Q, G) float32 numpy distances between two feature sets (numpy or tensors), chunked over rows.

    The evaluation form of :func:`pairwise_distance` (same numbers, no gradient). Raises ValueError
    naming the argument for wrong shapes, mismatched dimensions, empty sets or NaN/inf.
    """
    check_metric(metric)
    q, g = _as_features(query, "query features"), _as_features(gallery, "gallery features")
    if len(q) == 0 or len(g) == 0:
        raise ValueError(f"need at least one row in query and gallery features, got shapes {q.shape} and {g.shape}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"gallery features have dimension {g.shape[1]} but query features have {q.shape[1]}")
    qt, gt = torch.from_numpy(q), torch.from_numpy(g)
    if normalize:
        qt, gt = F.normalize(qt, dim=1), F.normalize(gt, dim=1)
    q_terms, g_terms = row_terms(qt, metric), row_terms(gt, metric)
    out = np.empty((len(q), len(g)), np.float32)
    with torch.no_grad():
        for start in range(0, len(q), chunk):
            stop = start + chunk
            out[start:stop] = block_distance(qt[start:stop], q_terms[start:stop], gt, g_terms, metric).numpy()
    return out


__all__ = ["METRICS", "block_distance", "check_metric", "distance_matrix", "paired_distance", "pairwise_distance",
           "row_terms"]
