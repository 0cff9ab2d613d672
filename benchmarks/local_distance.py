"""local_distance at Market-1501 size vs the straightforward reference DP: one JSON line.

Market-1501 test size: 3368 queries x 15913 gallery images, H=8 stripes of C=128 channels, float32
(AlignedReID's local branch). Synthetic BN-ReLU-like stripes: 1501 identity prototypes plus noise, and
1% of the queries exact copies of gallery images (exercises the exact recomputation of near-zero
stripe distances).

- ours: local_distance on the FULL problem, in a child process (time, and peak RSS from
  resource.getrusage; RSS just before the call is reported too: interpreter + torch + features).
- reference: the per-query numpy DP of the AlignedReID reproduction (huanghoujing/AlignedReID-Re-
  Production-Pytorch, ``local_dist`` + ``shortest_dist``): for each query, the (H, H, N) stripe-distance
  tensor from the expanded euclidean form, then the DP with Python loops over (i, j) vectorised over
  the N gallery items. Timed on the first ``--reference-queries`` queries and EXTRAPOLATED linearly
  (its cost is per query), in its own child process; its rows are compared with ours.
- naive_pair_loop: the textbook double loop per (query, gallery) pair in numpy, timed on a few pairs
  and EXTRAPOLATED to all M x N pairs (context only).

    .venv/bin/python benchmarks/local_distance.py            # full Market size (~1 min)
    .venv/bin/python benchmarks/local_distance.py --quick    # a 10x smaller gallery and query set
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_features(num_q: int, num_g: int, h: int, c: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((1501, h, c), dtype=np.float32)

    def draw(n):
        ids = rng.integers(0, len(protos), n)
        return np.maximum(protos[ids] + 0.5 * rng.standard_normal((n, h, c), dtype=np.float32), 0)

    gallery = draw(num_g)
    query = draw(num_q)
    dup = np.unique(np.r_[0, 1, rng.choice(num_q, max(1, num_q // 100), replace=False)])[: max(1, num_q // 100)]
    source = rng.integers(0, num_g, len(dup))
    query[dup] = gallery[source]
    return np.ascontiguousarray(query), np.ascontiguousarray(gallery), dict(zip(dup.tolist(), source.tolist()))


def exact_rows(x: np.ndarray, y: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Direct-difference float64 distances of every x against y[cols]: the accuracy yardstick."""
    out = np.empty((len(x), len(cols)))
    for a, xq in enumerate(x.astype(np.float64)):
        for b, g in enumerate(cols):
            d = np.tanh(np.sqrt(((xq[:, None] - y[g].astype(np.float64)[None]) ** 2).sum(-1)) / 2)
            for k in range(1, len(d)):  # first row / column, then the rest row by row
                d[0, k] += d[0, k - 1]
                d[k, 0] += d[k - 1, 0]
            for i in range(1, len(d)):
                for j in range(1, len(d)):
                    d[i, j] += min(d[i - 1, j], d[i, j - 1])
            out[a, b] = d[-1, -1]
    return out


def reference_per_query(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AlignedReID reproduction's local distance, one query at a time (numpy, float32)."""
    num_q, h, c = x.shape
    num_g = len(y)
    yf = y.reshape(num_g * h, c)
    y_sq = (yf * yf).sum(1)
    out = np.empty((num_q, num_g), np.float32)
    for q in range(num_q):
        xq = x[q]
        sq = (xq * xq).sum(1)[:, None] + y_sq[None, :] - 2 * (xq @ yf.T)  # (H, N*H)
        d = np.tanh(np.sqrt(np.maximum(sq, 0)) / 2)  # = (e^z - 1) / (e^z + 1), z = ||.||
        d = d.reshape(h, num_g, h).transpose(0, 2, 1)  # (H, H, N): cell (i, j) of every gallery item
        dist = np.zeros_like(d)
        for i in range(h):
            for j in range(h):
                if i == 0 and j == 0:
                    dist[i, j] = d[i, j]
                elif i == 0:
                    dist[i, j] = dist[i, j - 1] + d[i, j]
                elif j == 0:
                    dist[i, j] = dist[i - 1, j] + d[i, j]
                else:
                    dist[i, j] = np.minimum(dist[i - 1, j], dist[i, j - 1]) + d[i, j]
        out[q] = dist[-1, -1]
    return out


def naive_pair(x: np.ndarray, y: np.ndarray) -> float:
    h = len(x)
    dp = np.zeros((h, h))
    for i in range(h):
        for j in range(h):
            d = np.tanh(np.linalg.norm(x[i] - y[j]) / 2)
            if i == 0 and j == 0:
                dp[i, j] = d
            elif i == 0:
                dp[i, j] = dp[i, j - 1] + d
            elif j == 0:
                dp[i, j] = dp[i - 1, j] + d
            else:
                dp[i, j] = min(dp[i - 1, j], dp[i, j - 1]) + d
    return dp[-1, -1]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(args) -> None:
    """Runs in a fresh process: one timed computation, its peak RSS, the first rows saved for comparison."""
    x, y, _ = make_features(args.queries, args.gallery, args.stripes, args.dim)
    if args.child == "ours":
        import torch

        from personsearch.distance import local_distance

        if args.threads:
            torch.set_num_threads(args.threads)
        local_distance(x[:64], y[:2048])  # warm-up: thread pool, allocator
        rss_before = _rss_mb()
        start, cpu = time.perf_counter(), time.process_time()
        dist = local_distance(x, y, chunk=args.chunk)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        info = {"threads": torch.get_num_threads()}
    else:
        x = x[: args.reference_queries]
        rss_before = _rss_mb()
        start, cpu = time.perf_counter(), time.process_time()
        dist = reference_per_query(x, y)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        info = {}
    np.save(args.out, dist[: args.reference_queries])
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_before_mb": rss_before, "peak_rss_mb": _rss_mb(),
                      **info}))


def run_child(mode: str, args, out: str) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--out", out, "--queries", str(args.queries),
           "--gallery", str(args.gallery), "--stripes", str(args.stripes), "--dim", str(args.dim),
           "--reference-queries", str(args.reference_queries)]
    if args.chunk:
        cmd += ["--chunk", str(args.chunk)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument("--stripes", type=int, default=8)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--reference-queries", type=int, default=64)
    parser.add_argument("--naive-pairs", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for ours (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="336 x 1591 (a tenth of each side), 16 reference queries")
    parser.add_argument("--child", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.queries, args.gallery = args.queries // 10, args.gallery // 10
        args.reference_queries, args.naive_pairs = min(args.reference_queries, 16), min(args.naive_pairs, 50)
    args.reference_queries = min(args.reference_queries, args.queries)
    if args.child:
        child(args)
        return
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_child("ours", args, f"{tmp}/ours.npy")
        ref = run_child("reference", args, f"{tmp}/ref.npy")
        ours_rows, ref_rows = np.load(f"{tmp}/ours.npy"), np.load(f"{tmp}/ref.npy")
    diff = float(np.abs(ours_rows - ref_rows).max())
    x, y, dups = make_features(args.queries, args.gallery, args.stripes, args.dim)
    # accuracy against float64 direct differences: the first (up to) 4 queries, among them exact copies of
    # gallery images, x 200 gallery items plus those copies' sources
    k = min(4, args.reference_queries)
    copies = {q: g for q, g in dups.items() if q < k}
    cols = np.unique(np.r_[list(copies.values()), np.linspace(0, len(y) - 1, 200).astype(int)]).astype(int)
    exact = exact_rows(x[:k], y, cols)
    err_ours = float(np.abs(ours_rows[:k, cols] - exact).max())
    err_ref = float(np.abs(ref_rows[:k, cols] - exact).max())
    step = max(1, len(y) // args.naive_pairs)
    pairs = [(q % len(x), g) for q, g in zip(range(args.naive_pairs), range(0, len(y), step))]
    start = time.perf_counter()
    for q, g in pairs:
        naive_pair(x[q], y[g])
    naive_s = (time.perf_counter() - start) / len(pairs) * args.queries * args.gallery
    ref_s = ref["seconds"] * args.queries / args.reference_queries
    print(json.dumps({
        "benchmark": "local_distance", "queries": args.queries, "gallery": args.gallery, "stripes": args.stripes,
        "dim": args.dim, "dtype": "float32", "torch_threads": ours["threads"],
        "ours_s": round(ours["seconds"], 2), "ours_cpu_s": round(ours["cpu_seconds"], 2),
        "ours_peak_rss_mb": round(ours["peak_rss_mb"]), "ours_rss_before_call_mb": round(ours["rss_before_mb"]),
        "output_matrix_mb": round(args.queries * args.gallery * 4 / 2**20),
        "reference_per_query_numpy_s_extrapolated": round(ref_s, 1),
        "reference_cpu_s_extrapolated": round(ref["cpu_seconds"] * args.queries / args.reference_queries, 1),
        "reference_measured_s": round(ref["seconds"], 2), "reference_extrapolated_from_queries": args.reference_queries,
        "reference_peak_rss_mb_on_subset": round(ref["peak_rss_mb"]),
        "speedup_vs_reference": round(ref_s / ours["seconds"], 1),
        "max_abs_diff_vs_reference_on_subset": diff,
        "max_abs_err_vs_float64_exact": {"ours": err_ours, "reference": err_ref, "pairs": k * len(cols),
                                         "of_which_identical_images": len(copies)},
        "naive_pair_loop_s_extrapolated": round(naive_s), "naive_pair_loop_extrapolated_from_pairs": len(pairs),
        "speedup_vs_naive_pair_loop": round(naive_s / ours["seconds"]),
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }))


if __name__ == "__main__":
    main()
