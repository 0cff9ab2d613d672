"""Gallery index search at 1M people: build time, single-query latency, recall@10, memory; one JSON line.

Data, shaped like person embeddings: ``--centres`` identities, themselves grouped around 64
"appearance" prototypes (similar clothing; an identity has cosine ~0.6 to its prototype, so
identities overlap), each detection = its identity + one of 8 camera offsets + noise (cosine ~0.8 to
the identity), unit-normalised; queries are drawn the same way and are not in the gallery. The vector
indexes are the ones ``personsearch.index`` builds (``personsearch.index.vectors.build/search``):
exact (IndexFlatIP), HNSW and IVF, each swept over its search knob (efSearch / nprobe); recall@10 is
against exact search. ``chosen`` is the cheapest setting reaching --target-recall. Latency: one
query at a time (nq = 1, as a server sees them), p50 / p99 over --queries queries.

    .venv/bin/python benchmarks/index.py                      # 1,000,000 x 128, HNSW + IVF (~10 min)
    .venv/bin/python benchmarks/index.py --n 100000 --kinds hnsw
    .venv/bin/python benchmarks/index.py --api    # + PersonIndex.search end to end (SQLite look-ups, re-ranking)
    .venv/bin/python benchmarks/index.py --n 10000000 --kinds ivfsq --nprobe 8,16,32,64   # 10M: ~25 min, ~12 GB

``memory_mb`` is what the loaded index holds (``vectors.memory_bytes``: vectors or 8-bit codes, ids,
centroids, graph links); ``rss_mb`` the process's growth while building it (training copies included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from personsearch.index import PersonIndex, metadata, vectors  # noqa: E402
from personsearch.index.writing import VECTORS_NAME  # noqa: E402


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def identities(count: int, dim: int, spread: float = 1.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(identity centres, camera offsets): unit centres scattered around 64 prototypes."""
    rng = np.random.default_rng(seed)
    prototypes = _unit(rng.standard_normal((64, dim)))
    centres = prototypes[rng.integers(0, 64, count)] + rng.standard_normal((count, dim)) * spread / np.sqrt(dim)
    return _unit(centres), rng.standard_normal((8, dim)).astype(np.float32) * 0.3 / np.sqrt(dim)


def clustered(n: int, centres: np.ndarray, cameras: np.ndarray, noise: float, seed: int,
              chunk: int = 100_000) -> np.ndarray:
    """``n`` unit vectors: a random identity + a random camera offset + Gaussian noise of norm ~``noise``."""
    rng = np.random.default_rng(seed)
    dim = centres.shape[1]
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        block = centres[rng.integers(0, len(centres), m)] + cameras[rng.integers(0, len(cameras), m)]
        block += rng.standard_normal((m, dim), dtype=np.float32) * (noise / np.sqrt(dim))
        out[start:start + m] = _unit(block)
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def single_queries(index, queries: np.ndarray, k: int, settings: vectors.VectorSettings,
                   exact: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """p50/p99 latency (ms) of one-query searches, and the ids found. A lossy index's candidates
    (``vectors.candidates``) are re-scored with ``exact`` (the float32 vectors, here in memory; the
    index reads them from SQLite), as ``PersonIndex.search`` does."""
    times, ids = [], np.empty((len(queries), k), np.int64)
    pool = vectors.candidates(index, k) if exact is not None else k
    vectors.search(index, queries[:1], pool, settings)  # warm-up
    for i, q in enumerate(queries):
        start = time.perf_counter()
        _, found = vectors.search(index, q[None], pool, settings)
        if exact is not None:
            found = vectors.rescore(q, found[0], exact[found[0]], k)[1][None]
        times.append(time.perf_counter() - start)
        ids[i] = found[0]
    ms = np.asarray(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}, ids


def through_api(folder: Path, data: np.ndarray, index, queries: np.ndarray, k: int, ef_search: int) -> dict:
    """p50/p99 of ``PersonIndex.search`` (vector search + SQLite look-up of the hits), plain and
    re-ranked, on an index holding ``data`` as people (one per synthetic frame) and ``index`` as its
    vector file."""
    settings = vectors.VectorSettings(ef_search=ef_search)
    PersonIndex.create(folder, model="synthetic", dim=data.shape[1], index_type=vectors.kind_of(index),
                       settings=settings).close()
    start = time.perf_counter()
    conn = metadata.connect(folder / metadata.DB_NAME)
    box, score = np.array([[0, 0, 64, 128]], np.float32), np.ones(1, np.float32)
    for lo in range(0, len(data), 50_000):
        metadata.write_batch(conn, [metadata.FrameResult("synthetic.mp4", "video", i, i / 25, 1920, 1080, box, score,
                                                         data[i:i + 1]) for i in range(lo, min(lo + 50_000, len(data)))], [])
    conn.close()
    vectors.save(index, folder / VECTORS_NAME)
    entry = {"db_write_s": round(time.perf_counter() - start, 1)}
    gallery = PersonIndex.open(folder)
    for rerank in (False, True):
        times = []
        for q in queries[:200]:
            start = time.perf_counter()
            gallery.search(q, top_k=k, rerank=rerank)
            times.append(time.perf_counter() - start)
        ms = np.asarray(times) * 1000
        entry["rerank" if rerank else "plain"] = {"p50_ms": round(float(np.percentile(ms, 50)), 3),
                                                  "p99_ms": round(float(np.percentile(ms, 99)), 3)}
    entry["disk_mb"] = round(gallery.stats()["bytes"] / 2**20, 1)
    return entry


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--centres", type=int, default=5000, help="identities (clusters), default 5000")
    parser.add_argument("--noise", type=float, default=0.75, help="noise norm: 0.75 gives cosine ~0.8 to the identity")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kinds", default="hnsw,ivf", help="approximate kinds to measure (comma-separated)")
    parser.add_argument("--hnsw-m", type=int, default=vectors.VectorSettings.hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=vectors.VectorSettings.ef_construction)
    parser.add_argument("--ef-search", default="16,32,48,64,96,128")
    parser.add_argument("--nprobe", default="4,8,16,32,64")
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--api", action="store_true",
                        help="also time PersonIndex.search end to end (writes an index of --n people to a temp dir)")
    args = parser.parse_args()

    centres, cameras = identities(args.centres, args.dim)
    start = time.perf_counter()
    data = clustered(args.n, centres, cameras, args.noise, seed=1)
    queries = clustered(args.queries, centres, cameras, args.noise, seed=2)
    result: dict = {"benchmark": "index", "cpus": os.cpu_count(), "faiss": faiss.__version__,
                    "faiss_threads": faiss.omp_get_max_threads(), "loadavg_1min_at_start": os.getloadavg()[0],
                    "n": args.n, "dim": args.dim, "centres": args.centres, "queries": args.queries, "k": args.k,
                    "data_s": round(time.perf_counter() - start, 1),
                    "mean_cos_to_nearest_identity": round(float(np.mean(np.max(data[:2000] @ centres.T, axis=1))), 3),
                    "mean_cos_between_identities": round(float(np.mean(centres[:500] @ centres[500:1000].T)), 3)}

    base = rss_mb()
    start = time.perf_counter()
    exact = vectors.build("exact", args.dim, data)
    exact_build = time.perf_counter() - start
    start = time.perf_counter()
    _, truth = vectors.search(exact, queries, args.k)
    batch_s = time.perf_counter() - start
    lat, _ = single_queries(exact, queries[: min(200, args.queries)], args.k, vectors.VectorSettings())
    result["exact"] = {"build_s": round(exact_build, 2), "rss_mb": round(rss_mb() - base, 1),
                       "memory_mb": round(vectors.memory_bytes(exact) / 2**20, 1), **lat,
                       "batch_ms_per_query": round(batch_s * 1000 / len(queries), 3)}
    del exact

    for kind in [k for k in args.kinds.split(",") if k]:
        knob, values = ("ef_search", args.ef_search) if kind == "hnsw" else ("nprobe", args.nprobe)
        settings = vectors.VectorSettings(hnsw_m=args.hnsw_m, ef_construction=args.ef_construction)
        base = rss_mb()
        start = time.perf_counter()
        index = vectors.build(kind, args.dim, data, settings, progress=False)
        entry: dict = {"build_s": round(time.perf_counter() - start, 1), "rss_mb": round(rss_mb() - base, 1),
                       "memory_mb": round(vectors.memory_bytes(index) / 2**20, 1)}
        if kind == "hnsw":
            entry.update(M=args.hnsw_m, ef_construction=args.ef_construction)
        else:
            entry["nlist"] = faiss.extract_index_ivf(index).nlist
        sweep = []
        for value in (int(v) for v in values.split(",")):
            tuned = vectors.VectorSettings(**{**settings.__dict__, knob: value})
            lat, found = single_queries(index, queries, args.k, tuned, data if kind in vectors.LOSSY else None)
            sweep.append({knob: value, **lat, "recall_at_k": round(recall_at(found, truth), 4)})
            print(json.dumps({"kind": kind, **sweep[-1]}), file=sys.stderr)
        entry["sweep"] = sweep
        good = [s for s in sweep if s["recall_at_k"] >= args.target_recall]
        entry["chosen"] = dict(min(good, key=lambda s: s["p50_ms"])) if good else None
        if good:
            entry["chosen"]["speedup_vs_exact_p50"] = round(result["exact"]["p50_ms"] / entry["chosen"]["p50_ms"], 1)
        if args.api and kind == "hnsw" and good:
            with tempfile.TemporaryDirectory(prefix="index_bench_") as tmp:
                entry["person_index_search"] = through_api(Path(tmp) / "idx", data, index, queries, args.k,
                                                           entry["chosen"]["ef_search"])
        result[kind] = entry
        del index
    result["loadavg_1min_at_end"] = os.getloadavg()[0]  # other jobs on the machine skew the times
    print(json.dumps(result))


if __name__ == "__main__":
    main()
