"""evaluate_reid speed at Market-1501 size vs the straightforward per-query loop: one JSON line.

The loop (tests/reference_reid.py, torchreid's algorithm) is timed on a subset of queries and
extrapolated linearly (its cost is per query); pass --full-reference to time it on every query.

    .venv/bin/python benchmarks/eval_reid.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_reid import reference_market_eval  # noqa: E402

from personsearch.evaluation import evaluate_reid  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument("--reference-queries", type=int, default=200)
    parser.add_argument("--full-reference", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    q, g = args.queries, args.gallery
    dist = rng.random((q, g), dtype=np.float32)
    q_pids, g_pids = rng.integers(1, 751, q), rng.integers(0, 751, g)
    q_cams, g_cams = rng.integers(0, 6, q), rng.integers(0, 6, g)
    start = time.perf_counter()
    ours = evaluate_reid(dist, q_pids, g_pids, q_cams, g_cams)
    ours_s = time.perf_counter() - start
    n_ref = q if args.full_reference else min(args.reference_queries, q)
    start = time.perf_counter()
    ref_cmc, ref_map, _ = reference_market_eval(dist[:n_ref], q_pids[:n_ref], g_pids, q_cams[:n_ref], g_cams)
    ref_s = (time.perf_counter() - start) * q / n_ref
    sub = evaluate_reid(dist[:n_ref], q_pids[:n_ref], g_pids, q_cams[:n_ref], g_cams)
    print(json.dumps({
        "benchmark": "eval_reid", "queries": q, "gallery": g, "ours_s": round(ours_s, 3),
        "reference_loop_s": round(ref_s, 2), "reference_extrapolated_from_queries": n_ref,
        "speedup": round(ref_s / ours_s, 1),
        "max_abs_diff_mAP_on_subset": float(abs(sub.mAP - ref_map)), "mAP": round(ours.mAP, 6),
    }))


if __name__ == "__main__":
    main()
