"""The index's SQLite side: sources, frames, people (box, score, embedding), settings, skipped files.

SQLite is the index's source of truth: a batch of frames and their people is one transaction, so a
crash leaves every frame either fully indexed or absent (WAL journal; ``synchronous=NORMAL`` is
safe against process crashes). People ids are dense, 0..N-1, in insertion order: they are also the
FAISS row numbers. Embeddings are kept here too (float32 blobs), so the FAISS file is a cache that
can always be caught up or rebuilt from this database.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .records import IndexCorruptError

DB_NAME = "index.db"
FORMAT_VERSION = 1

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
    camera TEXT, fps REAL, complete INTEGER NOT NULL DEFAULT 0);  -- video: 'every' of a finished pass, else 0
CREATE TABLE frames (
    id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL REFERENCES sources(id), frame INTEGER NOT NULL,
    timestamp REAL, width INTEGER NOT NULL, height INTEGER NOT NULL, UNIQUE (source_id, frame));
CREATE TABLE people (
    id INTEGER PRIMARY KEY, frame_id INTEGER NOT NULL REFERENCES frames(id),
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL, score REAL NOT NULL,
    embedding BLOB NOT NULL);
CREATE INDEX people_frame ON people(frame_id);
CREATE TABLE skipped (path TEXT PRIMARY KEY, reason TEXT NOT NULL);
"""


@dataclass
class FrameResult:
    """One processed image or video frame and the people found in it (``frame`` 0 for images)."""

    source: str
    kind: str
    frame: int
    timestamp: float | None
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray
    camera: str | None = None
    fps: float | None = None


def connect(db: Path) -> sqlite3.Connection:
    """A connection usable from any thread (autocommit; explicit transactions in ``write_batch``)."""
    conn = sqlite3.connect(str(db), timeout=60, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError as err:
        conn.close()
        raise IndexCorruptError(f"{db}: not a readable index database ({err})") from err
    return conn


def create_db(db: Path, meta: dict) -> None:
    """Write a new, empty index database at ``db`` holding ``meta`` (JSON-able values)."""
    conn = connect(db)
    try:
        conn.executescript("BEGIN;" + SCHEMA + "COMMIT;")
        rows = [(key, json.dumps(value)) for key, value in {**meta, "format_version": FORMAT_VERSION}.items()]
        conn.executemany("INSERT INTO meta VALUES (?, ?)", rows)
    finally:
        conn.close()


def read_meta(conn: sqlite3.Connection, db: Path) -> dict:
    """Every setting in the meta table; IndexCorruptError naming ``db`` if the schema is not ours."""
    try:
        meta = {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM meta")}
        conn.execute("SELECT id FROM people LIMIT 1").fetchall()
    except (sqlite3.DatabaseError, json.JSONDecodeError) as err:
        raise IndexCorruptError(f"{db}: not a personsearch index database ({err})") from err
    for key in ("format_version", "model", "dim", "index_type"):
        if key not in meta:
            raise IndexCorruptError(f"{db}: the meta table lacks '{key}'")
    if meta["format_version"] != FORMAT_VERSION:
        raise IndexCorruptError(f"{db}: index format {meta['format_version']}, this version reads {FORMAT_VERSION}")
    return meta


def count_people(conn: sqlite3.Connection) -> int:
    """Number of people (= next person id, ids being dense)."""
    return int(conn.execute("SELECT COALESCE(MAX(id) + 1, 0) FROM people").fetchone()[0])


def indexed_images(conn: sqlite3.Connection) -> set[str]:
    """Paths of the still images already indexed."""
    return sources_of_kind(conn, "image")


def sources_of_kind(conn: sqlite3.Connection, kind: str) -> set[str]:
    """Paths of the sources of ``kind`` ('image' or 'video') in the index."""
    return {row[0] for row in conn.execute("SELECT path FROM sources WHERE kind = ?", (kind,))}


def video_progress(conn: sqlite3.Connection, path: str) -> tuple[int, set[int]]:
    """(E, frame numbers already indexed) of a video: every multiple of E >= 1 is indexed, E = 0
    if no whole pass finished yet; (0, empty) for a video never seen."""
    row = conn.execute("SELECT id, complete FROM sources WHERE path = ? AND kind = 'video'", (path,)).fetchone()
    if row is None:
        return 0, set()
    frames = {r[0] for r in conn.execute("SELECT frame FROM frames WHERE source_id = ?", (row[0],))}
    return int(row[1]), frames


def _source_id(conn: sqlite3.Connection, item: FrameResult) -> int:
    conn.execute("INSERT OR IGNORE INTO sources (path, kind, camera, fps) VALUES (?, ?, ?, ?)",
                 (item.source, item.kind, item.camera, item.fps))
    row = conn.execute("SELECT id, kind FROM sources WHERE path = ?", (item.source,)).fetchone()
    if row[1] != item.kind:
        raise ValueError(f"{item.source} is already indexed as a {row[1]}, not a {item.kind}")
    return int(row[0])


def write_batch(conn: sqlite3.Connection, results: Sequence[FrameResult], skipped: Iterable[tuple[str, str]],
                complete_videos: Iterable[tuple[str, int]] = ()) -> tuple[int, np.ndarray]:
    """Store processed frames, skipped files and finished video passes (path, every) in ONE transaction.

    Frames already present are ignored (never duplicated). Returns the first new person id and the
    embeddings of the people added, in person-id order, for the vector index.
    """
    added: list[np.ndarray] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        first = next_id = count_people(conn)
        for item in results:
            source_id = _source_id(conn, item)
            cur = conn.execute("INSERT OR IGNORE INTO frames (source_id, frame, timestamp, width, height) "
                               "VALUES (?, ?, ?, ?, ?)", (source_id, item.frame, item.timestamp, item.width, item.height))
            if cur.rowcount == 0:
                continue  # indexed meanwhile: nothing twice
            frame_id = cur.lastrowid
            emb = np.ascontiguousarray(item.embeddings, dtype="<f4")
            rows = [(next_id + i, frame_id, *map(float, box), float(score), vec.tobytes())
                    for i, (box, score, vec) in enumerate(zip(item.boxes, item.scores, emb))]
            conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("DELETE FROM skipped WHERE path = ?", (item.source,))
            next_id += len(rows)
            added.append(emb)
        conn.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?)", list(skipped))
        conn.executemany("UPDATE sources SET complete = CASE WHEN complete = 0 OR complete % ?1 = 0 THEN ?1 "
                         "ELSE complete END WHERE path = ?2", [(int(e), p) for p, e in complete_videos])
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)  # SQLite may already have rolled back (disk full): keep the real error
        raise
    return first, (np.concatenate(added).astype(np.float32) if added else np.zeros((0, 0), np.float32))


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not done so itself."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is unusable; the error being handled says why


def embeddings(conn: sqlite3.Connection, start: int, stop: int, dim: int) -> np.ndarray:
    """(stop - start, dim) float32 embeddings of people ids start..stop-1."""
    rows = conn.execute("SELECT embedding FROM people WHERE id >= ? AND id < ? ORDER BY id", (start, stop))
    data = b"".join(row[0] for row in rows)
    return np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(-1, dim)


def embeddings_of(conn: sqlite3.Connection, ids: Sequence[int], dim: int) -> np.ndarray:
    """(len(ids), dim) float32 embeddings of the given people, in that order."""
    found = {}
    for start in range(0, len(ids), 500):
        chunk = [int(i) for i in ids[start:start + 500]]
        marks = ",".join("?" * len(chunk))
        found.update(conn.execute(f"SELECT id, embedding FROM people WHERE id IN ({marks})", chunk))
    return np.stack([np.frombuffer(found[int(i)], dtype="<f4") for i in ids]).astype(np.float32).reshape(-1, dim)


PERSON_COLUMNS = ("people.id, sources.path, sources.kind, frames.frame, frames.timestamp, "
                  "people.x1, people.y1, people.x2, people.y2, people.score, sources.camera")
PERSON_JOIN = "people JOIN frames ON people.frame_id = frames.id JOIN sources ON frames.source_id = sources.id"


def person_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple]:
    """person id -> (id, path, kind, frame, timestamp, x1, y1, x2, y2, score, camera) for known ids."""
    out: dict[int, tuple] = {}
    for start in range(0, len(ids), 500):
        chunk = [int(i) for i in ids[start:start + 500]]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {PERSON_COLUMNS} FROM {PERSON_JOIN} WHERE people.id IN ({marks})", chunk):
            out[int(row[0])] = row
    return out


def embedding_of(conn: sqlite3.Connection, person_id: int, dim: int) -> np.ndarray | None:
    """The (dim,) float32 embedding stored for ``person_id``; None for an unknown id."""
    row = conn.execute("SELECT embedding FROM people WHERE id = ?", (int(person_id),)).fetchone()
    return None if row is None else np.frombuffer(row[0], dtype="<f4").astype(np.float32).reshape(dim)


def frame_of(conn: sqlite3.Connection, person_id: int) -> tuple[tuple[int, int], list[tuple]] | None:
    """((width, height), person rows as ``person_rows`` gives them) of the image or frame holding
    ``person_id``, every person in it included, by id; None for an unknown id."""
    row = conn.execute("SELECT frames.id, frames.width, frames.height FROM people JOIN frames "
                       "ON people.frame_id = frames.id WHERE people.id = ?", (int(person_id),)).fetchone()
    if row is None:
        return None
    rows = conn.execute(f"SELECT {PERSON_COLUMNS} FROM {PERSON_JOIN} WHERE people.frame_id = ? ORDER BY people.id",
                        (row[0],)).fetchall()
    return (int(row[1]), int(row[2])), rows


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Numbers of image sources, video sources, indexed video frames, people and skipped files."""
    one = lambda sql: int(conn.execute(sql).fetchone()[0])  # noqa: E731
    return {
        "images": one("SELECT COUNT(*) FROM sources WHERE kind = 'image'"),
        "videos": one("SELECT COUNT(*) FROM sources WHERE kind = 'video'"),
        "frames": one("SELECT COUNT(*) FROM frames JOIN sources ON frames.source_id = sources.id "
                      "WHERE sources.kind = 'video'"),
        "people": count_people(conn),
        "skipped": one("SELECT COUNT(*) FROM skipped"),
    }


def skipped_files(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(path, reason) of every input skipped as unreadable, sorted by path."""
    return [(row[0], row[1]) for row in conn.execute("SELECT path, reason FROM skipped ORDER BY path")]


def cameras(conn: sqlite3.Connection) -> list[str]:
    """Distinct camera names given to the sources."""
    return [row[0] for row in conn.execute("SELECT DISTINCT camera FROM sources WHERE camera IS NOT NULL ORDER BY 1")]
