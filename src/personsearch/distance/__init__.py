"""The distance kernel every layer may import: pairwise (l2, sql2, cosine) and AlignedReID's aligned local distance.

    from personsearch.distance import pairwise_distance, distance_matrix, local_distance
    pairwise_distance(x, y, "l2")            # torch, differentiable (losses)
    distance_matrix(q, g, "cosine")          # numpy float32, chunked (evaluation)
    local_distance(x, y)                     # (M, H, C) x (N, H, C) stripes, numpy or torch
"""

from .local import local_distance, paired_local_distance
from .pairwise import (
    METRICS,
    block_distance,
    check_metric,
    distance_matrix,
    paired_distance,
    pairwise_distance,
    row_terms,
)

__all__ = ["METRICS", "block_distance", "check_metric", "distance_matrix", "local_distance", "paired_distance",
           "paired_local_distance", "pairwise_distance", "row_terms"]
