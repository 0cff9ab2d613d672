"""``PersonIndex``: a gallery of detected people in a folder (SQLite metadata + FAISS vectors).

Layout: ``index.db`` (SQLite, the source of truth, embeddings included), ``vectors.faiss`` (the
search structure, rewritten atomically after each add; it may lag the database after a kill, and is
caught up, or rebuilt if unreadable, on open) and ``.write.lock``. Readers (``search``, ``hit``,
``frame_image``) may run in any thread while an add runs: the vector index only ever holds committed
people and is swapped or appended under a lock, and each thread reads SQLite through its own
connection, seeing the last committed state.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from . import metadata, vectors
from .frames import read_source
from .locks import LOCK_NAME, ThreadConnections, WriterLock
from .metadata import DB_NAME
from .model import load_model, model_spec
from .records import DimensionError, EmptyIndexError, IndexFrame, IndexHit
from .rerank import pool_size, rerank_candidates
from .writing import VECTORS_NAME, Writing


class PersonIndex(Writing):
    """A searchable gallery of people found in images and videos. Make one with ``create``/``open``."""

    def __init__(self, path: Path, meta: dict) -> None:
        self.path = path
        self.meta = meta
        self.settings = vectors.VectorSettings(**meta.get("vector_settings", {}))
        self._db = path / DB_NAME
        self._conns = ThreadConnections(lambda: metadata.connect(self._db))
        self._writer = WriterLock(path)
        self._lock = threading.RLock()  # guards self._vectors (FAISS is not safe to add to while searching)
        self._vectors = None

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, path: str | Path, model: str | Path = "pretrained", dim: int = 0, index_type: str = "auto",
               score_threshold: float = 0.5, settings: vectors.VectorSettings | None = None) -> "PersonIndex":
        """A new, empty index folder at ``path`` for embeddings of size ``dim`` made by ``model``.

        FileExistsError if an index (or any non-empty folder or a file) is already there. The folder
        appears complete or not at all (built beside it, then renamed).
        """
        path = Path(path)
        if (path / DB_NAME).exists():
            raise FileExistsError(f"{path}: an index already exists there (use `personsearch index add`)")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path}: exists and is not an empty folder")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive integer (the embedding size), got {dim!r}")
        vectors.check_index_type(index_type)
        settings = settings or vectors.VectorSettings()
        meta = {"model": model_spec(model), "dim": int(dim), "index_type": index_type,
                "score_threshold": float(score_threshold), "vector_settings": settings.__dict__}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        try:
            tmp.mkdir()
            metadata.create_db(tmp / DB_NAME, meta)
            vectors.save(vectors.build(vectors.wanted_kind(index_type, 0, int(dim)), int(dim), np.zeros((0, dim))),
                         tmp / VECTORS_NAME)
            (tmp / LOCK_NAME).touch()
            os.replace(tmp, path)  # an empty folder at ``path`` is replaced too
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.open(path)

    @classmethod
    def open(cls, path: str | Path) -> "PersonIndex":
        """An existing index; FileNotFoundError if there is none, IndexCorruptError if unreadable."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such index (make one with `personsearch index build`)")
        if not (path / DB_NAME).is_file():
            raise FileNotFoundError(f"{path}: not an index folder (no {DB_NAME} inside)")
        conn = metadata.connect(path / DB_NAME)
        try:
            meta = metadata.read_meta(conn, path / DB_NAME)
        finally:
            conn.close()
        index = cls(path, meta)
        index._load_vectors()
        return index

    def _load_vectors(self) -> None:
        """Read vectors.faiss and bring it level with the database (catch up, or rebuild)."""
        file = self.path / VECTORS_NAME
        try:
            loaded = vectors.load(file) if file.is_file() else None
        except ValueError as err:
            warnings.warn(f"{err}; rebuilding it from {DB_NAME}")
            loaded = None
        conn = self._conns.get()
        n = metadata.count_people(conn)  # read after the file: a writer saves the file after committing
        if loaded is not None and (loaded.d != self.dim or loaded.ntotal > n or not self._agrees(loaded)):
            warnings.warn(f"{file} does not match {DB_NAME}; rebuilding it")
            loaded = None
        from_file = -1 if loaded is None else loaded.ntotal
        if loaded is None:
            loaded = vectors.build(vectors.wanted_kind(self.index_type_requested, n, self.dim), self.dim,
                                   metadata.embeddings(conn, 0, n, self.dim), self.settings)
        elif loaded.ntotal < n:
            vectors.add(loaded, metadata.embeddings(conn, loaded.ntotal, n, self.dim))
        stale = loaded.ntotal != from_file
        with self._lock:
            self._vectors = loaded
        if stale:
            with self._writer.try_hold() as ours:
                if ours and metadata.count_people(conn) == loaded.ntotal:
                    vectors.save(loaded, file)

    def _agrees(self, index) -> bool:
        """Every stored vector equals the database's (compared in chunks: a file damaged inside but
        still parseable, e.g. rows zeroed, is caught, not just one whose last row differs)."""
        conn = self._conns.get()
        for start in range(0, index.ntotal, vectors.CHECK_CHUNK):
            stop = min(index.ntotal, start + vectors.CHECK_CHUNK)
            if not vectors.agrees(index, vectors.reconstruct_range(index, start, stop),
                                  metadata.embeddings(conn, start, stop, self.dim)):
                return False
        return True

    def refresh(self) -> int:
        """Pick up people committed by another process since open (and a new model with re-embedded
        people, after ``personsearch adapt``); returns the number of people."""
        conn = self._conns.get()
        model = conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        if model is not None and json.loads(model[0]) != self.meta["model"]:
            self.meta = metadata.read_meta(conn, self._db)
            self._load_vectors()
            return len(self)
        with self._lock:
            have, n = self._vectors.ntotal, metadata.count_people(conn)
            if n > have:
                vectors.add(self._vectors, metadata.embeddings(conn, have, n, self.dim))
        if n < have:
            self._load_vectors()  # the database lost people (restored from a backup?): rebuild
        return len(self)

    def close(self) -> None:
        """Close the database connections (the index stays usable: they reopen on demand)."""
        self._conns.close()

    def __enter__(self) -> "PersonIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ properties
    @property
    def model(self) -> str:
        """The model spec the index was built with (see ``personsearch.index.model``)."""
        return self.meta["model"]

    @property
    def dim(self) -> int:
        """Embedding size."""
        return int(self.meta["dim"])

    @property
    def index_type_requested(self) -> str:
        """auto / exact / hnsw / ivf / ivfsq, as asked at creation."""
        return self.meta["index_type"]

    @property
    def index_type(self) -> str:
        """The kind of vector index in use now: exact / hnsw / ivf / ivfsq."""
        with self._lock:
            return vectors.kind_of(self._vectors)

    def __len__(self) -> int:
        with self._lock:
            return int(self._vectors.ntotal)

    def load_searcher(self):
        """The searcher of the model this index was built with (for ``add_*`` and queries)."""
        return load_model(self.model, self.meta.get("score_threshold", 0.5), dim=self.dim, folder=self.path)

    # ------------------------------------------------------------------ reading
    def search(self, embedding: np.ndarray, top_k: int = 10, rerank: bool = False) -> list[IndexHit]:
        """The ``top_k`` people most similar (inner product) to ``embedding`` (D,), best first.

        ``rerank``: k-reciprocal re-ranking of the nearest ``max(100, 3 * top_k)`` people; the hits
        are then ordered by ``rerank_distance``. EmptyIndexError on an empty index.
        """
        query = np.asarray(embedding, np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise DimensionError(f"the query embedding has {query.shape[0]} dimensions but index {self.path} "
                                 f"holds {self.dim}-d embeddings (model {self.model})")
        if not np.isfinite(query).all():
            raise ValueError("the query embedding is not finite (NaN or inf)")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        with self._lock:
            n = self._vectors.ntotal
            if n == 0:
                raise EmptyIndexError(f"index {self.path} is empty: add images or a video first")
            wanted = pool_size(top_k, n) if rerank else top_k
            lossy = vectors.kind_of(self._vectors) in vectors.LOSSY
            sims, ids = vectors.search(self._vectors, query[None], vectors.candidates(self._vectors, wanted),
                                       self.settings)
        keep = ids[0] >= 0
        sims, ids = sims[0][keep], ids[0][keep].astype(np.int64)
        if lossy and len(ids):  # 8-bit vectors: re-score the candidates with the database's float32 ones
            sims, ids = vectors.rescore(query, ids, metadata.embeddings_of(self._conns.get(), ids, self.dim), wanted)
        distances: Sequence[float | None] = [None] * len(ids)
        if rerank and len(ids):
            dist = rerank_candidates(query, metadata.embeddings_of(self._conns.get(), ids, self.dim))
            order = np.argsort(dist, kind="stable")[:top_k]
            sims, ids, distances = sims[order], ids[order], [float(d) for d in dist[order]]
        rows = metadata.person_rows(self._conns.get(), ids.tolist())
        return [_hit(rows[int(i)], float(s), d) for i, s, d in zip(ids, sims, distances)]

    def hit(self, person_id: int) -> IndexHit:
        """Where person ``person_id`` was seen (similarity NaN); KeyError for an unknown id."""
        rows = metadata.person_rows(self._conns.get(), [int(person_id)])
        if int(person_id) not in rows:
            raise self._unknown(person_id)
        return _hit(rows[int(person_id)], float("nan"), None)

    def _unknown(self, person_id: int) -> KeyError:
        n = metadata.count_people(self._conns.get())
        return KeyError(f"no person {person_id} in index {self.path} (ids run 0..{n - 1})" if n
                        else f"no person {person_id}: index {self.path} is empty")

    def embedding(self, person_id: int) -> np.ndarray:
        """The stored (D,) embedding of person ``person_id`` (search with it: no image is decoded or
        embedded again); KeyError for an unknown id."""
        found = metadata.embedding_of(self._conns.get(), int(person_id), self.dim)
        if found is None:
            raise self._unknown(person_id)
        return found

    def frame(self, person_id: int) -> IndexFrame:
        """The image or frame holding person ``person_id``: its size and every person indexed in it."""
        found = metadata.frame_of(self._conns.get(), int(person_id))
        if found is None:
            raise self._unknown(person_id)
        (width, height), rows = found
        return IndexFrame(width, height, [_hit(row, float("nan"), None) for row in rows])

    def frame_image(self, person_id: int) -> np.ndarray:
        """RGB uint8 image (or decoded video frame) holding person ``person_id``."""
        hit = self.hit(person_id)
        kind = "image" if hit.frame is None else "video"
        return read_source(hit.source, kind, hit.frame or 0)

    def skipped(self) -> list[tuple[str, str]]:
        """(file, reason) of every input skipped as unreadable."""
        return metadata.skipped_files(self._conns.get())

    def stats(self) -> dict:
        """Counts (images, videos, frames, people, skipped), settings and size on disk."""
        conn = self._conns.get()
        size = sum(_size(f) for f in self.path.iterdir())
        return {"path": str(self.path), **metadata.counts(conn), "dim": self.dim, "model": self.model,
                "index_type": self.index_type, "index_type_requested": self.index_type_requested,
                "searchable": len(self), "cameras": metadata.cameras(conn), "bytes": size,
                "vector_memory_bytes": vectors.memory_bytes(self._vectors),
                "skipped_files": [list(item) for item in metadata.skipped_files(conn)]}


def _size(file: Path) -> int:
    try:
        return file.stat().st_size if file.is_file() else 0
    except FileNotFoundError:  # a temporary file renamed meanwhile
        return 0


def _hit(row: tuple, similarity: float, rerank_distance: float | None) -> IndexHit:
    pid, path, kind, frame, timestamp, x1, y1, x2, y2, score, camera = row
    video = kind == "video"
    return IndexHit(int(pid), path, int(frame) if video else None, timestamp if video else None,
                    (float(x1), float(y1), float(x2), float(y2)), float(score), similarity, camera, rerank_distance)
