"""The ``galleries`` argument of :func:`~personsearch.evaluation.search.evaluate_search`, built from
the dataset readers' records (/work/shared/docs/protocols.md, "Person search: CUHK-SYSU" and "PRW").

A gallery is, per query, a sequence of ``(image name, the query person's [x1, y1, x2, y2] box in that
image, or None)``. CUHK-SYSU's come from its TestG{N}.mat files (read by ``read_cuhk_sysu``); PRW's
are derived from the test frames. A PRW gallery holds nearly every test frame (about 6000 per query,
12 million entries over 2057 queries), so it is a lazy :class:`FrameGallery`: a read-only sequence
over a frame list shared by all queries, which ``evaluate_search`` also reads without iterating.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .records import UNLABELED, GalleryList, SearchDataset, SearchQuery


def cuhk_sysu_galleries(dataset: SearchDataset, gallery_size: int) -> tuple[list[SearchQuery], list[GalleryList]]:
    """The queries and, per query, its TestG{gallery_size}.mat gallery list (positives first).

    Raises ValueError naming the available sizes when that protocol file was not read.
    """
    if gallery_size not in dataset.gallery_lists:
        available = ", ".join(str(k) for k in sorted(dataset.gallery_lists))
        hint = f"available: {available}" if available else "the dataset has none (PRW? use prw_galleries)"
        raise ValueError(f"{dataset.name}: no gallery lists for gallery size {gallery_size}; {hint}")
    lists = dataset.gallery_lists[gallery_size]
    if len(lists) != len(dataset.queries):
        raise ValueError(f"{dataset.name}: {len(lists)} gallery lists of size {gallery_size} "
                         f"but {len(dataset.queries)} queries")
    return list(dataset.queries), list(lists)


class FrameGallery(Sequence):
    """One query's gallery over a shared frame list: ``frames`` (sorted frame indices into ``names``)
    minus ``exclude`` (the query's own frame, -1 for none), each with the query person's box or None.

    Behaves as the equivalent ``list[tuple[str, np.ndarray | None]]`` (len, indexing, slicing,
    iteration); ``list(gallery)`` materialises it.
    """

    __slots__ = ("names", "positive_boxes", "_frames", "_skip")

    def __init__(self, names: tuple[str, ...], frames: np.ndarray, exclude: int,
                 positive_boxes: dict[int, np.ndarray]):
        frames = np.asarray(frames, dtype=np.int64)
        if frames.ndim != 1 or (frames.size and (frames[0] < 0 or frames[-1] >= len(names)
                                                   or (np.diff(frames) <= 0).any())):
            raise ValueError("frames must be sorted, unique indices into names")
        self.names = names
        self._frames = frames
        pos = int(np.searchsorted(frames, exclude))
        self._skip = pos if exclude >= 0 and pos < frames.size and frames[pos] == exclude else -1
        missing = [k for k in positive_boxes if k == exclude or not self._contains(k)]
        if missing:
            raise ValueError(f"positive frame '{names[missing[0]]}' is not in this gallery")
        self.positive_boxes = positive_boxes  # frame index -> (4,) box, frames of this gallery only

    def _contains(self, k: int) -> bool:
        pos = int(np.searchsorted(self._frames, k))
        return pos < self._frames.size and self._frames[pos] == k

    def frame_indices(self) -> np.ndarray:
        """Indices into ``names`` of this gallery's frames, in order."""
        return self._frames if self._skip < 0 else np.delete(self._frames, self._skip)

    def __len__(self) -> int:
        return self._frames.size - (self._skip >= 0)

    def _entry(self, k: int) -> tuple[str, np.ndarray | None]:
        return self.names[k], self.positive_boxes.get(k)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"gallery index {i} out of range ({n} entries)")
        if 0 <= self._skip <= j:
            j += 1
        return self._entry(int(self._frames[j]))

    def __iter__(self) -> Iterator[tuple[str, np.ndarray | None]]:
        skip = -1 if self._skip < 0 else int(self._frames[self._skip])
        for k in self._frames.tolist():
            if k != skip:
                yield self._entry(k)

    def __repr__(self) -> str:
        return f"FrameGallery({len(self)} frames, {len(self.positive_boxes)} with the query person)"


def prw_galleries(dataset: SearchDataset, cross_camera: bool = False) -> tuple[list[SearchQuery],
                                                                               list[FrameGallery]]:
    """The queries and, per query, its PRW gallery.

    Default ("ignore camera", the published numbers): every test frame except the query's own frame.
    ``cross_camera=True``: only frames of other cameras. Positives: gallery frames annotated with the
    query's pid, with the first box of that pid in the frame. Cameras are the readers' ``camid``
    (from the frame name ``c<d>``). A query whose identity appears in no gallery frame is kept here;
    ``evaluate_search`` refuses it (its AP is undefined).
    """
    scenes = dataset.gallery
    names = tuple(s.name for s in scenes)
    frame_of = {name: i for i, name in enumerate(names)}
    if len(frame_of) != len(names):
        dup = next(n for i, n in enumerate(names) if frame_of[n] != i)
        raise ValueError(f"{dataset.name}: test frame '{dup}' is listed twice")
    first_box: dict[int, dict[int, np.ndarray]] = {}  # pid -> frame index -> first box of pid there
    for i, scene in enumerate(scenes):
        pids = np.asarray(scene.pids)
        for pid in np.unique(pids[pids != UNLABELED]).tolist():
            box = np.asarray(scene.boxes[int(np.argmax(pids == pid))], dtype=np.float32).copy()
            first_box.setdefault(pid, {})[i] = box
    cams = np.array([s.camid for s in scenes], dtype=np.int64)
    everything = np.arange(len(scenes), dtype=np.int64)
    other_cams: dict[int, np.ndarray] = {}
    galleries = []
    for qi, q in enumerate(dataset.queries):
        where = f"{dataset.name} query {qi} (pid {q.pid}, frame '{q.image.name}')"
        if q.pid == UNLABELED:
            raise ValueError(f"{where} has no identity")
        own = frame_of.get(q.image.name)
        if own is None:
            raise ValueError(f"{where}: its frame is not a test frame")
        frames = everything
        if cross_camera:
            if q.camid < 0:
                raise ValueError(f"{where} has no camera id; cross_camera needs one")
            if q.camid not in other_cams:
                other_cams[q.camid] = np.flatnonzero(cams != q.camid)
            frames = other_cams[q.camid]
        boxes = {k: b for k, b in first_box.get(q.pid, {}).items()
                 if k != own and (not cross_camera or cams[k] != q.camid)}
        galleries.append(FrameGallery(names, frames, own, boxes))
    return list(dataset.queries), galleries
