"""CUHK03 classic (single-shot) protocol: CMC averaged over draws of one gallery image per identity.

AP uses the full gallery list, as the reference does; the draws use a seeded generator (the
reference's are unseeded, so its CMC varies from run to run).
"""

from __future__ import annotations

import numpy as np

from .checks import as_array, require_finite
from .reid import ReidResult, evaluate_reid


def evaluate_reid_cuhk03(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
                         repeats: int = 10, seed: int = 0) -> ReidResult:
    """Single-shot CMC (mean over ``repeats`` draws) + full-list mAP/mINP, same removal rules as Market."""
    full = evaluate_reid(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)  # validates inputs, AP, mINP
    dist = as_array(distmat, "distmat", 2)
    require_finite(dist, "distmat")
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    max_rank = len(full.cmc)
    rng = np.random.default_rng(seed)
    hits = np.zeros(max_rank)
    valid = 0
    for qi in range(len(dist)):
        order = np.argsort(dist[qi])
        keep = ~((g_pids[order] == q_pids[qi]) & (g_camids[order] == q_camids[qi]))
        kept_pids = g_pids[order][keep]
        if not (kept_pids == q_pids[qi]).any():
            continue
        valid += 1
        _, group = np.unique(kept_pids, return_inverse=True)
        for _ in range(repeats):
            # one random image per identity: the item with the smallest random key in its group
            keys = rng.random(len(kept_pids))
            by_group = np.lexsort((keys, group))
            first = by_group[np.r_[True, group[by_group][1:] != group[by_group][:-1]]]
            chosen = np.sort(first)  # positions in ranked order
            rank = int(np.flatnonzero(kept_pids[chosen] == q_pids[qi])[0])
            hits[rank:] += 1
    cmc = hits / (valid * repeats)
    return ReidResult(cmc=cmc, mAP=full.mAP, mINP=full.mINP, num_valid_queries=full.num_valid_queries)
