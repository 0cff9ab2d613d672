"""Context bipartite graph matching (CBGM, SeqNet, Li & Miao AAAI 2021): re-score a query's best
gallery candidates with the other people of the query image as context.

For one query: take its ``k1`` most similar gallery detections (over the whole pooled gallery) and
the images they lie in. For each such image, match the query-image people (the query first, then
up to ``k2 - 1`` other detected people, most confident first) to the image's detections by a
maximum-weight bipartite assignment on embedding dot products (``scipy.optimize.linear_sum_assignment``,
the smaller side fully matched). If the query is matched to detection j, j's similarity becomes the
largest weight among the matched pairs: a person seen with the same companions moves up.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment


def cbgm_rescore(sims: np.ndarray, segments: np.ndarray, feats_of: Callable[[int], np.ndarray],
                 query: np.ndarray, context: np.ndarray, k1: int) -> None:
    """Re-score ``sims`` in place.

    sims: (N,) the query's similarities to every candidate detection of its gallery, image by image;
    segments: (n_images + 1,) offsets, image k's candidates are ``sims[segments[k]:segments[k + 1]]``;
    feats_of(k): (n_k, D) those candidates' embeddings (score-weighted, as in the similarities);
    query: (D,) the query embedding; context: (C, D) the other people of the query image (C may be 0).
    """
    if len(sims) == 0 or k1 < 1:
        return
    top = np.argsort(sims, kind="stable")[::-1][:k1]
    owners = np.searchsorted(segments, top, side="right") - 1
    nodes = np.vstack([query[None, :], context.reshape(-1, query.shape[0])]).astype(np.float64)
    for image in dict.fromkeys(owners.tolist()):  # each image once, best candidate first
        weights = nodes @ np.asarray(feats_of(image), np.float64).T
        rows, cols = linear_sum_assignment(weights, maximize=True)
        hit = np.flatnonzero(rows == 0)
        if hit.size:
            sims[segments[image] + cols[hit[0]]] = weights[rows, cols].max()


def query_context(boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray, query_box: np.ndarray,
                  det_thresh: float, k2: int, overlap: float = 0.5) -> np.ndarray:
    """The context people of a query image: detections scoring >= ``det_thresh`` that overlap the
    query box by IoU < ``overlap`` (SeqNet puts the query box in first and NMS-es at 0.5), most
    confident first, at most ``k2 - 1``; returns their embeddings (C, D)."""
    boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
    embeddings = np.asarray(embeddings).reshape(len(boxes), -1)
    q = np.asarray(query_box, np.float64).reshape(4)
    x1, y1 = np.maximum(boxes[:, 0], q[0]), np.maximum(boxes[:, 1], q[1])
    x2, y2 = np.minimum(boxes[:, 2], q[2]), np.minimum(boxes[:, 3], q[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
    keep = (scores >= det_thresh) & (inter < overlap * np.maximum(union, 1e-12))
    order = np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")]
    return embeddings[order[:max(k2 - 1, 0)]]
