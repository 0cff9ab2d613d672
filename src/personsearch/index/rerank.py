"""k-reciprocal re-ranking of an index search's candidate list (the query plus its top-C people)."""

from __future__ import annotations

import numpy as np

POOL = 100  # candidates re-ranked per query (at least 3 x top-k)


def pool_size(top_k: int, available: int) -> int:
    """How many nearest people to re-rank for a top-``top_k`` answer."""
    return min(available, max(POOL, 3 * top_k))


def rerank_candidates(query: np.ndarray, candidates: np.ndarray, k1: int = 20, k2: int = 6,
                      lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked distances (C,) of ``candidates`` (C, D) to ``query`` (D,), smaller = better.

    Zhong et al.'s k-reciprocal encoding computed among the query and its candidates only (squared
    L2 distances, as ``personsearch.evaluation.re_ranking_features``), so a query costs O(C^2 D).
    """
    from ..evaluation.rerank import re_ranking_features  # torch: imported on first use

    query = np.asarray(query, np.float32).reshape(1, -1)
    candidates = np.asarray(candidates, np.float32).reshape(-1, query.shape[1])
    return re_ranking_features(query, candidates, k1=k1, k2=k2, lambda_value=lambda_value)[0]
