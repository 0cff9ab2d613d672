"""k-reciprocal re-ranking: time and peak memory of ours vs the dense reference; prints one JSON line.

Every variant runs in its own subprocess that first loads its inputs from .npy files, then resets
the kernel's peak-RSS mark to the current RSS (the baseline), runs, and reports the peak RSS increase
(VmHWM - baseline): memory beyond the inputs (the Q x G output included; also reported without it). The dense reference (tests/
reference_rerank.py, torchreid semantics) runs at a smaller N and is extrapolated to the full N as
O(N^2 log N) time and O(N^2) memory, clearly labelled, unless --full-reference; ours also runs at
that smaller N, so there is a measured side-by-side ratio too.

    .venv/bin/python benchmarks/rerank.py                   # N = 20,000 (Q = 3,368), reference at 6,000
    .venv/bin/python benchmarks/rerank.py --full-reference  # the reference at N = 20,000 too (~2 min, ~6 GB)
    .venv/bin/python benchmarks/rerank.py --msmt17          # + re_ranking_features at N = 94,000, dim 2048
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MSMT17 = {"n": 93_820, "q": 11_659, "dim": 2048}  # 11,659 query + 82,161 gallery (MSMT17 test split)


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    raise KeyError(field)


def _reset_peak() -> float:
    """Reset the peak-RSS mark to the current RSS (Linux clear_refs "5"); return the baseline in MB.

    Without the reset, imports' transient peaks would hide the variant's own peak. Falls back to
    ru_maxrss (whose delta can only under-estimate) where /proc/self/clear_refs is not writable.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_mb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_mb() -> float:
    try:
        return _status_mb("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(spec: dict) -> None:
    """Run one variant on inputs loaded from disk; print {"seconds", "peak_extra_mb", ...}."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch  # noqa: F401  (imported before the baseline, like every module the variant uses)

    from personsearch.evaluation.rerank import re_ranking, re_ranking_features
    from reference_rerank import reference_re_ranking

    arrays = [np.load(p) for p in spec["inputs"]]
    base = _reset_peak()
    start = time.perf_counter()
    if spec["variant"] == "reference":
        out = reference_re_ranking(*arrays)
    elif spec["variant"] == "ours":
        out = re_ranking(*arrays)
    else:
        out = re_ranking_features(*arrays, metric=spec.get("metric", "sql2"))
    seconds = time.perf_counter() - start
    extra = _peak_mb() - base
    out_mb = out.size * 4 / 2**20  # the Q x G float32 result
    print(json.dumps({"seconds": round(seconds, 2), "peak_extra_mb": round(extra, 1),
                      "output_mb": round(out_mb, 1), "peak_extra_beyond_output_mb": round(extra - out_mb, 1),
                      "checksum": float(np.float64(out[:50, :50]).sum())}))


def _run(variant: str, inputs: list[Path], **extra) -> dict:
    spec = json.dumps({"variant": variant, "inputs": [str(p) for p in inputs], **extra})
    proc = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _features(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Gaussian identity clusters (~20 images each) with a camera offset, float32."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, max(1, n // 20), n)
    feats = rng.standard_normal((max(1, n // 20), dim), dtype=np.float32)[ids]
    feats += 0.5 * rng.standard_normal((6, dim), dtype=np.float32)[rng.integers(0, 6, n)]
    for s in range(0, n, 8192):
        feats[s:s + 8192] += 0.8 * rng.standard_normal((min(8192, n - s), dim), dtype=np.float32)
    return feats


def _distance_inputs(tmp: Path, tag: str, q: np.ndarray, g: np.ndarray) -> list[Path]:
    from personsearch.distance import distance_matrix

    paths = []
    for name, a, b in (("qg", q, g), ("qq", q, q), ("gg", g, g)):
        paths.append(tmp / f"{tag}_{name}.npy")
        np.save(paths[-1], distance_matrix(a, b))  # float32, as torchreid hands them over
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=20_000, help="N = Q + G for ours (default 20000)")
    parser.add_argument("--q", type=int, default=3368, help="number of queries at --n (default 3368)")
    parser.add_argument("--ref-n", type=int, default=6000, help="N at which the dense reference runs")
    parser.add_argument("--dim", type=int, default=256, help="feature dimension behind the distances")
    parser.add_argument("--full-reference", action="store_true", help="run the reference at --n as well")
    parser.add_argument("--msmt17", action="store_true", help="also time re_ranking_features at MSMT17 size")
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return

    result: dict = {"benchmark": "rerank", "cpus": os.cpu_count(), "loadavg_1min_at_start": os.getloadavg()[0], "n": args.n, "q": args.q, "g": args.n - args.q, "dim": args.dim,
                    "k1": 20, "k2": 6, "lambda": 0.3, "input_dtype": "float32"}
    ref_n = args.n if args.full_reference else args.ref_n
    ref_q = round(ref_n * args.q / args.n)
    with tempfile.TemporaryDirectory(prefix="rerank_bench_") as tmp_name:
        tmp = Path(tmp_name)
        feats = _features(args.n, args.dim)
        q, g = feats[: args.q], feats[args.q:]
        full = _distance_inputs(tmp, "full", q, g)
        small = full if ref_n == args.n else _distance_inputs(tmp, "small", q[:ref_q], g[: ref_n - ref_q])
        del feats, q, g

        ours = _run("ours", full)
        ours_small = ours if ref_n == args.n else _run("ours", small)
        ref = _run("reference", small)
        if ref_n == args.n:
            assert abs(ref["checksum"] - ours["checksum"]) < 1e-2, (ref, ours)
        ours_small_ok = abs(ref["checksum"] - ours_small["checksum"]) < 1e-2
        for d in (ours, ours_small, ref):
            d.pop("checksum", None)
        result["ours"] = ours
        result[f"ours_at_n{ref_n}"] = ours_small
        result[f"reference_at_n{ref_n}_measured"] = ref
        result["ours_matches_reference_at_ref_n"] = ours_small_ok
        result["ratio_measured_at_ref_n"] = {
            "speedup": round(ref["seconds"] / ours_small["seconds"], 1),
            "memory_ratio": round(ref["peak_extra_mb"] / max(ours_small["peak_extra_mb"], 1.0), 1)}
        if ref_n == args.n:
            result["reference_full_n"] = "measured (--full-reference)"
            ref_full_s, ref_full_mb = ref["seconds"], ref["peak_extra_mb"]
        else:
            scale = (args.n / ref_n) ** 2
            ref_full_s = ref["seconds"] * scale * math.log(args.n) / math.log(ref_n)
            ref_full_mb = ref["peak_extra_mb"] * scale
            result[f"reference_at_n{args.n}_EXTRAPOLATED"] = {
                "seconds": round(ref_full_s, 1), "peak_extra_mb": round(ref_full_mb, 0),
                "how": f"measured at N={ref_n}, x (N/n)^2 log N / log n for time, x (N/n)^2 for memory",
                "note": "time is a lower bound: the reference's cache misses grow faster than the model "
                        "(--full-reference measures it)"}
        result["ratio_at_n"] = {"speedup": round(ref_full_s / ours["seconds"], 1),
                                "memory_ratio": round(ref_full_mb / max(ours["peak_extra_mb"], 1.0), 1),
                                "reference": "measured" if ref_n == args.n else "extrapolated"}

        if args.msmt17:
            m = MSMT17
            feats = _features(m["n"], m["dim"], seed=1)
            paths = [tmp / "msmt_q.npy", tmp / "msmt_g.npy"]
            np.save(paths[0], feats[: m["q"]])
            np.save(paths[1], feats[m["q"]:])
            del feats
            result["msmt17_features"] = {**m, "g": m["n"] - m["q"], "metric": "sql2",
                                         "reference": "cannot run (dense N x N: ~35 GB per float32 copy)",
                                         **_run("features", paths)}
            result["msmt17_features"].pop("checksum")
    result["loadavg_1min_at_end"] = os.getloadavg()[0]  # other jobs on the machine skew the times
    print(json.dumps(result))


if __name__ == "__main__":
    main()
