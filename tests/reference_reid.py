"""Straightforward per-query reference of the Market-1501 protocol (torchreid/fast-reid loop form).

Kept deliberately naive: it is the yardstick the fast vectorised evaluator is checked against.
"""

from __future__ import annotations

import numpy as np


def reference_market_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        raw_cmc = matches[q_idx][np.invert(remove)]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        max_pos_idx = np.max(np.where(raw_cmc == 1))
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
        cmc[cmc > 1] = 1
        full = np.ones(max_rank)
        full[: min(max_rank, len(cmc))] = cmc[:max_rank]
        all_cmc.append(full)
        num_rel = raw_cmc.sum()
        tmp_cmc = np.asarray([x / (i + 1.0) for i, x in enumerate(raw_cmc.cumsum())]) * raw_cmc
        all_ap.append(tmp_cmc.sum() / num_rel)
    all_cmc = np.asarray(all_cmc, dtype=np.float64).sum(0) / len(all_cmc)
    return all_cmc, float(np.mean(all_ap)), float(np.mean(all_inp))
