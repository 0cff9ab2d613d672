"""The writing half of ``PersonIndex``: adding images and videos in committed batches.

One writer at a time (``WriterLock``). Each batch is one SQLite transaction; its people are then
appended to the in-memory vector index, so readers only ever see committed people. At the end of an
add, the vector index is converted if the gallery's size calls for another kind (exact -> HNSW
under ``auto``) and saved atomically (temporary file + rename).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

from ..utils.progress import progress as progress_bar
from . import metadata, vectors
from .frames import image_frames, source_key, video_frames, video_info, wanted_frames
from .ingest import ingest
from .metadata import FrameResult
from .records import AddReport, IndexWriteError

VECTORS_NAME = "vectors.faiss"


class Writing:
    """Mixed into ``PersonIndex`` (which provides path, dim, settings, _conns, _lock, _writer, _vectors)."""

    def _write(self, results: Sequence[FrameResult], skipped: Sequence[tuple[str, str]],
               complete: Sequence[tuple[str, int]] = ()) -> tuple[int, "object"]:
        """``metadata.write_batch``; a failed write (disk full, ...) is an IndexWriteError naming the file."""
        db = self.path / metadata.DB_NAME
        try:
            return metadata.write_batch(self._conns.get(), results, skipped, complete)
        except sqlite3.Error as err:
            raise IndexWriteError(f"{db}: cannot write to the index ({err}); what was committed before is "
                                  "kept: free some space and run the same command again") from err

    def _commit(self, results: Sequence[FrameResult], skipped: Sequence[tuple[str, str]]) -> int:
        """Store one batch in the database, then make its people searchable; returns their number."""
        first, added = self._write(results, skipped)
        with self._lock:  # a concurrent refresh() may have taken some of them already
            vectors.add(self._vectors, added[max(0, self._vectors.ntotal - first):])
        return len(added)

    def _finish(self, progress: bool) -> None:
        """Convert the vector index if the gallery's size calls for another kind, then save it."""
        with self._lock:
            current = self._vectors
        if vectors.needs_rebuild(current, self.index_type_requested):
            n = current.ntotal
            kind = vectors.wanted_kind(self.index_type_requested, n, self.dim)
            rebuilt = vectors.build(kind, self.dim, metadata.embeddings(self._conns.get(), 0, n, self.dim),
                                    self.settings, progress)
            with self._lock:
                self._vectors = rebuilt
        try:
            vectors.save(self._vectors, self.path / VECTORS_NAME)
        except (OSError, RuntimeError) as err:  # FAISS reports a failed write as a RuntimeError
            raise IndexWriteError(f"{self.path / VECTORS_NAME}: cannot save the vector index ({err}); the "
                                  "database holds every person added, and the file is rebuilt from it on "
                                  "the next open") from err

    def _add(self, frames, todo: int, unit: str, camera, fps, progress: bool, commit_every: int,
             searcher, complete: list[tuple[str, int]] | None = None, staged: bool | None = None) -> AddReport:
        self.refresh()  # another process may have added people since we opened the index
        bar = progress_bar(todo, f"indexing {self.path.name}", progress, unit=unit)
        try:
            report = ingest(frames, searcher, self.dim, self._commit, camera=camera, fps=fps,
                            commit_every=commit_every, bar=bar, staged=staged)
        finally:
            bar.close()
        ended_early = {source for source, _ in report.skipped}
        complete = [(source, every) for source, every in complete or () if source not in ended_early]
        if complete:
            self._write([], [], complete)
        self._finish(progress)
        return report

    def add_images(self, searcher, paths: Iterable[str | Path], camera: str | None = None, progress: bool = True,
                   commit_every: int = 32, staged: bool | None = None) -> AddReport:
        """Detect and embed people in every image not indexed yet (by absolute path).

        Commits every ``commit_every`` images: a killed add, run again, continues where it stopped.
        Unreadable images are skipped, recorded in the index and returned in ``report.skipped``.
        ``staged``: decode, detect and embed overlapped (default: when the searcher allows it;
        ``ingest.outputs``).
        """
        with self._writer.hold():
            self._clean_temporaries()
            done = metadata.indexed_images(self._conns.get())
            videos = metadata.sources_of_kind(self._conns.get(), "video")
            unique = list(dict.fromkeys(source_key(p) for p in paths))
            todo = [p for p in unique if p not in done and p not in videos]
            report = self._add(image_frames(todo), len(todo), "img", camera, None, progress, commit_every, searcher,
                               staged=staged)
            report.already = sum(p in done for p in unique)
            report.skipped += [(p, "already indexed as a video, not an image") for p in unique if p in videos]
            return report

    def add_video(self, searcher, video_path: str | Path, every: int = 1, camera: str | None = None,
                  progress: bool = True, start: int = 0, stop: int | None = None,
                  commit_every: int = 32, staged: bool | None = None) -> AddReport:
        """Index frames ``start``, ``start + every``, ... (below ``stop``) of a video not indexed yet.

        Frame numbers and timestamps (frame / fps) are kept. Resumable like ``add_images``; a video
        that cannot be opened is skipped and reported.
        """
        with self._writer.hold():
            self._clean_temporaries()
            key = source_key(video_path)
            try:
                fps, count = video_info(video_path)  # a missing file is an error, a corrupt one a skip
            except ValueError as err:
                self._write([], [(key, str(err))])
                return AddReport(skipped=[(key, str(err))])
            if key in metadata.indexed_images(self._conns.get()):
                return AddReport(skipped=[(key, "already indexed as an image, not a video")])
            finished, done = metadata.video_progress(self._conns.get(), key)
            frames = wanted_frames(start, stop, every, count)
            if finished and start % finished == 0 and every % finished == 0:
                return AddReport(already=len(frames))
            todo = sum(1 for f in frames if f not in done)
            whole = [(key, every)] if start == 0 and stop is None else []
            report = self._add(video_frames(video_path, every, done, start, stop), todo, "frame", camera, fps,
                               progress, commit_every, searcher, whole, staged)
            report.already = len(frames) - todo
            return report

    def _clean_temporaries(self) -> None:
        for tmp in self.path.glob(f".{VECTORS_NAME}.*.tmp"):  # left by a kill during a save
            tmp.unlink(missing_ok=True)
