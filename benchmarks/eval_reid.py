"""evaluate_reid speed at Market-1501 size vs the plain loop and the torchreid loop: one JSON line.

Two distance matrices (3368 x 15913 float32 by default): uniform random distances (top level of the
JSON) and a trained-like one (``trained_like``: cosine distances of features clustered by pid, so
positives tend to be near). On each, best of ``--repeats`` runs of

- ours: ``evaluate_reid`` (default threads);
- plain loop: one ``np.argsort`` of the whole matrix, then per query only its positives' ranks,
  on ALL queries, interleaved with ours on the same matrix;
- torchreid loop (tests/reference_reid.py): timed on ``--reference-queries`` queries and
  extrapolated linearly (its cost is per query); ``--full-reference`` times it on every query.

``max_abs_diff_vs_plain_loop`` is over the CMC, mAP and mINP of the full matrix.

    .venv/bin/python benchmarks/eval_reid.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_reid import reference_market_eval  # noqa: E402

from personsearch.evaluation import evaluate_reid  # noqa: E402


def plain_loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50):
    """One argsort of the whole matrix, then per query the ranks of its kept positives only."""
    order = np.argsort(distmat, axis=1)
    max_rank = min(max_rank, distmat.shape[1])
    cmc = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(len(order)):
        same = np.flatnonzero(g_pids[order[i]] == q_pids[i])  # sorted positions of same-pid items
        removed = g_camids[order[i, same]] == q_camids[i]
        ranks = (same + 1 - np.cumsum(removed))[~removed]  # 1-based ranks among kept items
        if len(ranks) == 0:
            continue
        aps.append(np.sum(np.arange(1, len(ranks) + 1) / ranks) / len(ranks))
        inps.append(len(ranks) / ranks[-1])
        cmc[ranks[0] - 1:] += 1
    return cmc / len(aps), float(np.mean(aps)), float(np.mean(inps))


def random_problem(rng, q: int, g: int):
    """Uniform random float32 distances; pids 1..750 (queries) / 0..750 (gallery, 0 = distractor)."""
    dist = rng.random((q, g), dtype=np.float32)
    q_pids, g_pids = rng.integers(1, 751, q), rng.integers(0, 751, g)
    q_cams, g_cams = rng.integers(0, 6, q), rng.integers(0, 6, g)
    return dist, q_pids, g_pids, q_cams, g_cams


def trained_like_problem(rng, q: int, g: int, dim: int = 64, noise: float = 0.13):
    """Cosine distances (float32) of unit features = pid centre + noise; distractors are pure noise."""
    _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, q, g)
    centres = rng.standard_normal((751, dim)).astype(np.float32) / np.sqrt(dim)

    def features(pids):
        x = centres[pids] + noise * rng.standard_normal((len(pids), dim), dtype=np.float32)
        x[pids == 0] = rng.standard_normal(((pids == 0).sum(), dim), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    dist = 1.0 - features(q_pids) @ features(g_pids).T
    return dist.astype(np.float32), q_pids, g_pids, q_cams, g_cams


def measure(problem, args) -> dict:
    """Best-of timings of ours and the plain loop (interleaved), the torchreid loop, differences."""
    dist, q_pids, g_pids, q_cams, g_cams = problem
    q = len(dist)
    ours_s, plain_s = float("inf"), float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = evaluate_reid(dist, q_pids, g_pids, q_cams, g_cams)
        ours_s = min(ours_s, time.perf_counter() - start)
        start = time.perf_counter()
        plain = plain_loop(dist, q_pids, g_pids, q_cams, g_cams)
        plain_s = min(plain_s, time.perf_counter() - start)
    diff = max(float(np.abs(ours.cmc - plain[0]).max()), abs(ours.mAP - plain[1]), abs(ours.mINP - plain[2]))
    n_ref = q if args.full_reference else min(args.reference_queries, q)
    start = time.perf_counter()
    ref_cmc, ref_map, ref_inp = reference_market_eval(dist[:n_ref], q_pids[:n_ref], g_pids, q_cams[:n_ref], g_cams)
    ref_s = (time.perf_counter() - start) * q / n_ref
    sub = evaluate_reid(dist[:n_ref], q_pids[:n_ref], g_pids, q_cams[:n_ref], g_cams)
    return {
        "ours_s": round(ours_s, 3), "plain_loop_s": round(plain_s, 3),
        "speedup_vs_plain_loop": round(plain_s / ours_s, 1),
        "torchreid_loop_s": round(ref_s, 2), "torchreid_extrapolated_from_queries": n_ref,
        "speedup_vs_torchreid_loop": round(ref_s / ours_s, 1),
        "max_abs_diff_vs_plain_loop": diff,
        "max_abs_diff_vs_torchreid_on_subset": max(float(np.abs(sub.cmc - ref_cmc).max()), abs(sub.mAP - ref_map),
                                                   abs(sub.mINP - ref_inp)),
        "mAP": round(ours.mAP, 6), "rank1": round(float(ours.cmc[0]), 6),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs of ours and the plain loop")
    parser.add_argument("--reference-queries", type=int, default=200)
    parser.add_argument("--full-reference", action="store_true")
    args = parser.parse_args(argv)
    q, g = args.queries, args.gallery
    random_case = measure(random_problem(np.random.default_rng(0), q, g), args)
    trained_case = measure(trained_like_problem(np.random.default_rng(1), q, g), args)
    out = {"benchmark": "eval_reid", "queries": q, "gallery": g, "cpus": os.cpu_count(), "repeats": args.repeats,
           **random_case, "trained_like": trained_case}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
