"""All-pairs k-reciprocal Jaccard distance of one feature set (the distance clustering-based
unsupervised ReID clusters on: cluster-contrast, PASS's USL fine-tuning).

The same encoding as re-ranking (``rerank.py``: squared distances normalised per row, k-reciprocal
sets expanded by half-size sets, Gaussian weights, query expansion over k2 neighbours) on the set
itself, so that ``jaccard_distance(X)[:a, a:]`` equals ``re_ranking(d(q, g), d(q, q), d(g, g), k1, k2,
lambda_value=0)`` with ``q = X[:a]``, ``g = X[a:]``. Dense (N, N) output; neighbour lists and sparse
encodings as in re-ranking.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..distance.pairwise import distance_matrix
from .rerank_sparse import encode, jaccard_blend, query_expand


def jaccard_distance(features, k1: int = 30, k2: int = 6, metric: str = "l2") -> np.ndarray:
    """(N, N) float32 Jaccard distances (0 = same k-reciprocal neighbourhood, 1 = disjoint) of the rows
    of ``features`` (N, D); ``metric`` as ``personsearch.distance`` (l2 on L2-normalised features is
    cluster-contrast's). ValueError for fewer than 2 rows, NaN/inf, or k1/k2 < 1."""
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got {k1} and {k2}")
    feats = np.asarray(features, dtype=np.float32)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {feats.shape}")
    dist = distance_matrix(feats, feats, metric)
    square = np.square(dist, dtype=np.float32)
    rowmax = square.max(axis=1)
    if not (rowmax > 0).all():
        raise ValueError(f"feature row {int(np.argmin(rowmax))} is at distance 0 from every row")
    normed = square / rowmax[:, None]
    n = len(feats)
    top = min(max(k1 + 1, k2), n)
    values, ranks = torch.topk(torch.from_numpy(normed), top, dim=1, largest=False, sorted=True)
    ranks, values = ranks.numpy().astype(np.int32), values.numpy()

    def pair_values(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return normed[rows, cols]

    V = encode(ranks, values, pair_values, k1)
    if k2 != 1:
        V = query_expand(V, ranks, k2)
    out = np.zeros((n, n), dtype=np.float32)
    return jaccard_blend(sp.vstack([V, V]).tocsr(), n, out, 0.0)
