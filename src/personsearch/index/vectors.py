"""The index's FAISS side: inner-product indexes, exact or approximate, chosen by gallery size.

Kinds: ``exact`` (IndexFlatIP, brute force), ``hnsw`` (IndexHNSWFlat, graph search: no training,
cheap incremental adds), ``ivf`` (IndexIVFFlat, inverted lists trained on the vectors present
when it is built) and ``ivfsq`` (the same lists over 8-bit scalar-quantised residuals: a quarter of
the memory, for 10M+ people; lossy, so the stored vectors only approximate the database's).
``auto`` is exact while a brute-force scan stays cheap (people x dim up to
``AUTO_EXACT_ELEMENTS``: ~39,000 128-d or ~3,900 1280-d embeddings, ~3 ms), then HNSW, then above
``AUTO_COMPRESSED_ELEMENTS`` (2M 128-d embeddings: 1 GB of float32 plus the graph, and hours of
graph building on a few cores) ``ivfsq``. Similarity is
always the inner product: two-step embeddings are unit vectors (so it is the cosine) and end-to-end
NAE gallery embeddings are unit direction x person probability, whose norm must count.
``auto`` picks HNSW over IVF for large galleries: no training (so no drift as a gallery grows from
one camera's data to many), and steadier recall across data shapes for the same setting.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ..utils.progress import iterate

KINDS = ("exact", "hnsw", "ivf", "ivfsq")
INDEX_TYPES = ("auto",) + KINDS
AUTO_EXACT_ELEMENTS = 5_000_000  # float32 values an exact search scans: ~3 ms (1M x 128 took 48-76 ms)
AUTO_COMPRESSED_ELEMENTS = 256_000_000  # above this many float32 values, auto compresses (ivfsq)
LOSSY = ("ivfsq",)  # kinds whose stored vectors are approximations
SQ_TOLERANCE = 0.1  # a row of a lossy index agrees with the database within this relative L2 error
RESCORE_FACTOR = 4  # a lossy index returns this many times the rows asked, re-scored with exact vectors
IVF_MIN_TRAIN = 4_000  # below this many vectors an "ivf" index stays exact (too few to train lists)
ADD_CHUNK = 20_000
CHECK_CHUNK = 65_536  # rows compared at a time when a loaded file is checked against the database


@dataclass(frozen=True)
class VectorSettings:
    """Approximate-search knobs (stored in the index's meta table).

    Measured by benchmarks/index.py on 1M clustered 128-d vectors (2 cores): HNSW M=32,
    efConstruction=64 builds in ~4-5 min; efSearch=128 gives recall@10 0.967 at p50 0.22 ms (64:
    0.935). IVF recall depends more on how clustered the data are: nprobe=64 gave 1.0 there and 0.97
    on a sparser set (5 detections per identity), where nprobe=16 gave only 0.86.
    """

    hnsw_m: int = 32
    ef_construction: int = 64
    ef_search: int = 128
    nprobe: int = 64


def check_index_type(index_type: str) -> str:
    """``index_type`` if it is one of auto/exact/hnsw/ivf, else ValueError."""
    if index_type not in INDEX_TYPES:
        raise ValueError(f"index type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}")
    return index_type


def wanted_kind(index_type: str, n: int, dim: int) -> str:
    """The kind an index of ``n`` vectors of size ``dim`` should be for the requested ``index_type``."""
    if index_type == "auto":
        if n * dim <= AUTO_EXACT_ELEMENTS:
            return "exact"
        return "hnsw" if n * dim <= AUTO_COMPRESSED_ELEMENTS else "ivfsq"
    if index_type in ("ivf", "ivfsq") and n < IVF_MIN_TRAIN:
        return "exact"
    return check_index_type(index_type)


def kind_of(index: faiss.Index) -> str:
    """exact / hnsw / ivf / ivfsq for an index made here."""
    if isinstance(index, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivfsq"
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(index, faiss.IndexFlat):
        return "exact"
    raise ValueError(f"unexpected FAISS index class {type(index).__name__}")


def _ivf_lists(n: int) -> int:
    return int(np.clip(4 * np.sqrt(max(n, 1)), 16, 65_536))


def needs_rebuild(index: faiss.Index, index_type: str) -> bool:
    """True when ``index`` should be rebuilt as another kind (or retrained: IVF grown 8x since)."""
    n = index.ntotal
    if kind_of(index) != wanted_kind(index_type, n, index.d):
        return True
    return kind_of(index) in ("ivf", "ivfsq") and n > 8 * (faiss.extract_index_ivf(index).nlist / 4) ** 2


def _append(index: faiss.Index, vectors: np.ndarray, progress: bool) -> None:
    chunks = range(0, len(vectors), ADD_CHUNK)
    for start in iterate(chunks, "vectors", progress and len(chunks) >= 3, unit="chunk"):
        index.add(np.ascontiguousarray(vectors[start:start + ADD_CHUNK], dtype=np.float32))


def build(kind: str, dim: int, vectors: np.ndarray, settings: VectorSettings = VectorSettings(),
          progress: bool = False) -> faiss.Index:
    """A new ``kind`` index over ``vectors`` (N, dim); an IVF index is trained on (a sample of) them."""
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.ef_construction
        index.hnsw.efSearch = settings.ef_search
    elif kind in ("ivf", "ivfsq"):
        nlist = _ivf_lists(len(vectors))
        if len(vectors) < nlist:
            raise ValueError(f"an IVF index needs at least {nlist} vectors to train, got {len(vectors)}")
        if kind == "ivf":
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).permutation(len(vectors))[: 64 * nlist]
        index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        index.nprobe = settings.nprobe
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    _append(index, vectors, progress)
    return index


def add(index: faiss.Index, vectors: np.ndarray, progress: bool = False) -> None:
    """Append ``vectors`` (N, dim) float32: they get the next row numbers."""
    if len(vectors):
        _append(index, vectors, progress)


def search(index: faiss.Index, queries: np.ndarray, k: int, settings: VectorSettings = VectorSettings()
           ) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, row ids) of the ``k`` best rows per query, best first; rows < ``k`` exist: cut."""
    k = min(int(k), index.ntotal)
    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.d)
    kind = kind_of(index)
    if kind == "hnsw":
        params = faiss.SearchParametersHNSW(efSearch=max(settings.ef_search, k))
    elif kind in ("ivf", "ivfsq"):
        params = faiss.SearchParametersIVF(nprobe=settings.nprobe)
    else:
        params = None
    sims, ids = index.search(queries, k, params=params)
    return sims, ids


def save(index: faiss.Index, path: Path) -> None:
    """Write ``index`` to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"  # default permissions, unlike mkstemp
    try:
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load(path: Path) -> faiss.Index:
    """Read a FAISS index file; ValueError naming ``path`` if it is unreadable or not ours."""
    try:
        index = faiss.read_index(str(path))
        kind_of(index)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: unreadable vector index ({err})") from err
    return index


def reconstruct_range(index: faiss.Index, start: int, stop: int) -> np.ndarray:
    """The stored vectors of rows ``start..stop-1`` (N, d) float32, for any kind made here (an IVF
    index gets the direct map it needs to give them back)."""
    if stop <= start:
        return np.zeros((0, index.d), np.float32)
    ivf = faiss.extract_index_ivf(index) if kind_of(index) in ("ivf", "ivfsq") else None
    if ivf is not None:
        ivf.make_direct_map(True)
    try:
        return np.asarray(index.reconstruct_n(start, stop - start), np.float32).reshape(-1, index.d)
    finally:
        if ivf is not None:
            ivf.make_direct_map(False)  # later adds need no map kept up to date


def candidates(index: faiss.Index, k: int) -> int:
    """How many rows to ask ``index`` for to return ``k``: a lossy kind gets ``RESCORE_FACTOR`` times
    more, re-scored exactly afterwards (``rescore``)."""
    return min(index.ntotal, k * RESCORE_FACTOR if kind_of(index) in LOSSY else k)


def rescore(query: np.ndarray, ids: np.ndarray, exact: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids) of the ``k`` best of candidate ``ids`` by exact inner product with their
    full-precision vectors ``exact`` (len(ids), D), best first (ties keep the candidates' order)."""
    sims = np.asarray(exact, np.float32) @ np.asarray(query, np.float32).reshape(-1)
    order = np.argsort(-sims, kind="stable")[:k]
    return sims[order], np.asarray(ids)[order]


def agrees(index: faiss.Index, stored: np.ndarray, database: np.ndarray) -> bool:
    """Whether rows of ``index`` (``stored``: their reconstruction) hold ``database``'s
    vectors: equal, or for a lossy kind within ``SQ_TOLERANCE`` relative error per row (a damaged or
    shifted row is far off either way)."""
    if kind_of(index) not in LOSSY:
        return bool(np.array_equal(stored, database))
    error = np.linalg.norm(stored - database, axis=1)
    return bool(np.all(error <= SQ_TOLERANCE * np.linalg.norm(database, axis=1) + 1e-6))


def memory_bytes(index: faiss.Index) -> int:
    """Bytes the loaded index holds, from its layout: vectors or codes and their ids, the lists'
    centroids, the graph's links (a few percent low for HNSW's upper levels)."""
    kind, n, d = kind_of(index), index.ntotal, index.d
    if kind == "exact":
        return n * d * 4
    if kind == "hnsw":
        return n * d * 4 + n * (index.hnsw.nb_neighbors(0) * 4 + 12)
    ivf = faiss.extract_index_ivf(index)
    return n * (ivf.code_size + 8) + ivf.nlist * d * 4


def reconstruct_all(index: faiss.Index) -> np.ndarray:
    """Every stored vector (N, d) of an exact or HNSW index (flat storage)."""
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
