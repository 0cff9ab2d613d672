"""Dense reference of k-reciprocal re-ranking (Zhong et al., CVPR 2017), loop form.

Same semantics as torchreid's ``utils/rerank.py`` (itself from the authors' person-re-ranking repo),
rewritten plainly: it is the yardstick the sparse, chunked implementation is checked against, so it
keeps every detail of the original, including its dense N x N matrices, its float32 casts, numpy's
full argsort and the ``k2 != 1`` switch. Cost: O(N^2 log N) time and several N x N float32 arrays.
"""

from __future__ import annotations

import numpy as np


def _reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    """Members of i's top-k (in rank order) whose own top-k contains i."""
    forward = initial_rank[i, :k]
    backward = initial_rank[forward, :k]
    rows_with_i = np.where(backward == i)[0]
    return forward[rows_with_i]


def reference_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    num_query = q_g_dist.shape[0]
    # stacked [[q_q, q_g], [q_g^T, g_g]], squared, float32, each column divided by its max, transposed
    stacked = np.concatenate([np.concatenate([q_q_dist, q_g_dist], axis=1),
                              np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0)
    stacked = np.power(stacked, 2).astype(np.float32)
    original = np.transpose(1.0 * stacked / np.max(stacked, axis=0))
    num_all = original.shape[0]
    V = np.zeros_like(original).astype(np.float32)
    initial_rank = np.argsort(original).astype(np.int32)

    half = int(np.around(k1 / 2.0))
    for i in range(num_all):
        reciprocal = _reciprocal(initial_rank, i, k1 + 1)
        expansion = reciprocal
        for candidate in reciprocal:
            cand_reciprocal = _reciprocal(initial_rank, candidate, half + 1)
            shared = len(np.intersect1d(cand_reciprocal, reciprocal))
            if shared > 2.0 / 3 * len(cand_reciprocal):
                expansion = np.append(expansion, cand_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        V[i, expansion] = 1.0 * weight / np.sum(weight)

    original = original[:num_query, ]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(num_all):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    del initial_rank

    # inverted index: for every column, the rows where V is non-zero
    inv_index = [np.where(V[:, m] != 0)[0] for m in range(num_all)]
    jaccard = np.zeros_like(original, dtype=np.float32)
    for i in range(num_query):
        overlap = np.zeros(shape=[1, num_all], dtype=np.float32)
        nonzero = np.where(V[i, :] != 0)[0]
        for m in nonzero:
            rows = inv_index[m]
            overlap[0, rows] = overlap[0, rows] + np.minimum(V[i, m], V[rows, m])
        jaccard[i] = 1 - overlap / (2.0 - overlap)

    final = jaccard * (1 - lambda_value) + original * lambda_value
    return final[:num_query, num_query:]
