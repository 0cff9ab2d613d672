"""evaluate_search speed at CUHK-SYSU size vs the SeqNet-style per-query loop: one JSON line.

Problem: 2900 queries, gallery 100 (TestG100-like: 1-3 positive images first, then negatives drawn
from 6978 test images), ~10 raw detections per image of which ~8 clear det_thresh 0.5, 256-d float32
L2-normalised embeddings; in each positive image one jittered box overlaps the query person and its
embedding is the query's plus noise. The loop (tests/reference_search.py) is timed (after a warm-up,
best of --repeats) on evenly spread queries and extrapolated linearly, its cost being per query
("reference_extrapolated": true); --full-reference times it once on all of them. Both are also
compared on those queries (mAP difference, top-k equality). Times are best of --repeats.

    .venv/bin/python benchmarks/eval_search.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_search import reference_search  # noqa: E402

from personsearch.evaluation.search import evaluate_search  # noqa: E402


def make_problem(rng, num_queries: int, num_images: int, gallery: int, dim: int, dets_per_image: int):
    names = [f"s{i}.jpg" for i in range(num_images)]
    counts = rng.poisson(dets_per_image, num_images) + 1
    xy = rng.uniform(0, 600, (counts.sum(), 2))
    wh = rng.uniform(20, 120, (counts.sum(), 2)) * [1, 2.5]
    scores = np.clip(rng.beta(4, 1.2, counts.sum()), 0, 1)  # ~80% >= 0.5
    boxes = np.c_[xy, xy + wh, scores]
    feats = rng.standard_normal((counts.sum(), dim)).astype(np.float32)
    starts = np.r_[0, np.cumsum(counts)]
    q = rng.standard_normal((num_queries, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    galleries = []
    for i in range(num_queries):
        n_pos = int(rng.integers(1, 4))
        chosen = rng.choice(num_images, gallery, replace=False)
        entries = []
        for k in chosen[:n_pos].tolist():
            row = starts[k] + int(rng.integers(counts[k]))
            gt = boxes[row, :4] + rng.uniform(-5, 5, 4)
            gt[2:] = np.maximum(gt[2:], gt[:2] + 5)
            boxes[row, 4] = max(boxes[row, 4], rng.uniform(0.4, 1.0))
            feats[row] = q[i] * 8 + rng.standard_normal(dim)
            entries.append((names[k], gt.astype(np.float32)))
        entries += [(names[k], None) for k in chosen[n_pos:].tolist()]
        galleries.append(entries)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    detections = {n: boxes[starts[k]:starts[k + 1]] for k, n in enumerate(names)}
    det_feats = {n: feats[starts[k]:starts[k + 1]] for k, n in enumerate(names)}
    return q, galleries, detections, det_feats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2900)
    parser.add_argument("--images", type=int, default=6978)
    parser.add_argument("--gallery", type=int, default=100)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--dets-per-image", type=int, default=8)
    parser.add_argument("--reference-queries", type=int, default=300)
    parser.add_argument("--full-reference", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    q, galleries, detections, det_feats = make_problem(rng, args.queries, args.images, args.gallery, args.dim,
                                                       args.dets_per_image)
    kept = sum(int((d[:, 4] >= 0.5).sum()) for d in detections.values())
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = evaluate_search(q, galleries, detections, det_feats)
        times.append(time.perf_counter() - start)
    n_ref = args.queries if args.full_reference else min(args.reference_queries, args.queries)
    subset = np.linspace(0, args.queries - 1, n_ref).round().astype(int)  # evenly spread queries
    sub_q, sub_g = q[subset], [galleries[i] for i in subset]
    reference_search(sub_q[:10], sub_g[:10], detections, det_feats)  # warm-up, untimed
    ref_times = []
    for _ in range(1 if args.full_reference else args.repeats):
        start = time.perf_counter()
        ref_map, ref_top, _ = reference_search(sub_q, sub_g, detections, det_feats)
        ref_times.append(time.perf_counter() - start)
    ref_s = min(ref_times) * args.queries / n_ref
    sub = evaluate_search(sub_q, sub_g, detections, det_feats)
    print(json.dumps({
        "benchmark": "eval_search", "queries": args.queries, "gallery_size": args.gallery,
        "gallery_images": args.images, "kept_detections_per_image": round(kept / args.images, 2),
        "dim": args.dim, "ours_s": round(min(times), 3), "ours_s_all_runs": [round(t, 3) for t in times],
        "reference_loop_s": round(ref_s, 2), "reference_timed_on_queries": n_ref,
        "reference_extrapolated": n_ref < args.queries, "speedup": round(ref_s / min(times), 1),
        "checked_queries": n_ref, "checked_abs_diff_mAP": abs(sub["mAP"] - ref_map),
        "checked_topk_equal": [sub[f"top{k}"] for k in (1, 5, 10)] == list(ref_top),
        "mAP": round(ours["mAP"], 6), "top1": round(ours["top1"], 6),
    }))


if __name__ == "__main__":
    main()
