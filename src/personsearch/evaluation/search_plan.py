"""Per-query plans of the person search protocol: which detections each query is scored against,
which gallery images hold its true box, and its ground-truth count (see ``search.py`` for the rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .detection import to_numpy


@runtime_checkable
class FrameGalleryLike(Protocol):
    """A lazy gallery over a frame list shared by many queries (``personsearch.data.FrameGallery``,
    built by ``prw_galleries``): read without iterating its entries."""

    names: tuple[str, ...]  # every frame of the shared list
    positive_boxes: dict[int, np.ndarray]  # frame index -> the query person's box

    def frame_indices(self) -> np.ndarray: ...


@dataclass
class _Detections:
    """Kept detections of all present images, concatenated."""

    index: dict[str, int]  # image name -> image id
    starts: np.ndarray  # (n_images + 1,) int64: rows of image k are starts[k]:starts[k+1]
    boxes: np.ndarray  # (N, 4) float64
    feats: np.ndarray  # (N, D) float32 or float64
    keys: set[str]  # every image name given (kept or not), to catch naming mismatches

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.starts)


@dataclass
class _Plan:
    """One query's gallery after the protocol's bookkeeping."""

    images: np.ndarray  # (n,) int32 present image ids, first-listed order, each once
    pos_slots: np.ndarray  # (m,) int64 positions in ``images`` of the positive images
    pos_boxes: np.ndarray  # (m, 4) float64 their GT boxes (first entry's)
    count_gt: int


def _owner(starts: np.ndarray, row: int) -> int:
    """Index of the image holding concatenated row ``row``."""
    return int(np.searchsorted(starts, row, side="right")) - 1


def _load_detections(detections: Mapping, det_feats: Mapping, dim: int, det_thresh: float) -> _Detections:
    if not isinstance(detections, Mapping) or not isinstance(det_feats, Mapping):
        raise ValueError("detections and det_feats must be mappings image name -> array")
    names = list(detections) + [n for n in det_feats if n not in detections]
    owners: list[str] = []
    det_list, feat_list = [], []
    for name in names:  # shapes per image; values are checked below on the concatenation
        det = detections.get(name)
        feat = det_feats.get(name)
        det = None if det is None else to_numpy(det, np.float64)
        feat = None if feat is None else to_numpy(feat)
        n_det = 0 if det is None or det.size == 0 else len(det) if det.ndim else 1
        n_feat = 0 if feat is None or feat.size == 0 else len(feat) if feat.ndim else 1
        if n_det == 0 or n_feat == 0:
            if n_det or n_feat:
                missing = " (no entry for it)" if det is None or feat is None else ""
                raise ValueError(f"image '{name}': {n_det} detections but {n_feat} det_feats rows{missing}")
            continue
        if det.ndim != 2 or det.shape[1] != 5:
            raise ValueError(f"detections['{name}'] must be an (N, 5) array of [x1, y1, x2, y2, score], "
                             f"got shape {det.shape}")
        if feat.ndim != 2 or len(feat) != n_det:
            raise ValueError(f"image '{name}': {n_det} detections but det_feats has shape {feat.shape}")
        if feat.shape[1] != dim:
            raise ValueError(f"det_feats['{name}'] has dimension {feat.shape[1]} but query_feats has {dim}")
        if feat.dtype.kind not in "biuf":
            raise ValueError(f"det_feats['{name}'] must be numeric, got dtype {feat.dtype}")
        owners.append(name)
        det_list.append(det)
        feat_list.append(feat)
    if not owners:
        return _Detections({}, np.zeros(1, np.int64), np.zeros((0, 4)), np.zeros((0, dim)), set(names))
    rows = _exclusive_cumsum(np.array([len(d) for d in det_list]))
    det = np.concatenate(det_list)
    feat = np.concatenate(feat_list)
    feat = feat.astype(np.result_type(feat.dtype, np.float32), copy=False)
    bad = np.flatnonzero(~np.isfinite(det).all(axis=1))
    if bad.size:
        raise ValueError(f"detections['{owners[_owner(rows, bad[0])]}'] contains NaN or inf")
    bad = np.flatnonzero((det[:, 2] < det[:, 0]) | (det[:, 3] < det[:, 1]))
    if bad.size:
        raise ValueError(f"detections['{owners[_owner(rows, bad[0])]}'] has a box with x2 < x1 or y2 < y1")
    bad = np.flatnonzero(~np.isfinite(feat).all(axis=1))
    if bad.size:
        k = _owner(rows, bad[0])
        col = int(np.flatnonzero(~np.isfinite(feat[bad[0]]))[0])
        raise ValueError(f"det_feats['{owners[k]}'] contains NaN or inf "
                         f"(first at index {(int(bad[0] - rows[k]), col)})")
    keep = det[:, 4] >= det_thresh
    kept = np.add.reduceat(keep.astype(np.int64), rows[:-1])
    present = np.flatnonzero(kept)
    return _Detections({owners[k]: i for i, k in enumerate(present.tolist())}, _exclusive_cumsum(kept[present]),
                       det[keep, :4], feat[keep], set(names))


def _gt_box(box, q: int, j: int, name: str) -> np.ndarray | None:
    """A gallery entry's GT box as float64 (4,), None for none/empty; ValueError naming the entry
    (``j`` = -1: position unknown, lazy gallery)."""
    arr = to_numpy(box)
    if arr.size == 0:
        return None
    where = f"galleries[{q}]{f'[{j}]' if j >= 0 else ''} (query {q}, image '{name}')"
    if arr.shape not in ((4,), (1, 4)) or arr.dtype.kind not in "biuf":
        raise ValueError(f"{where}: GT box must be 4 numbers [x1, y1, x2, y2], got shape {arr.shape} "
                         f"dtype {arr.dtype}")
    arr = arr.reshape(4).astype(np.float64)
    if not np.isfinite(arr).all() or arr[2] <= arr[0] or arr[3] <= arr[1]:
        raise ValueError(f"{where}: GT box {arr.tolist()} must be finite with x2 > x1 and y2 > y1")
    return arr


def _plan(q: int, gallery, dets: _Detections, seen_key: list[bool], frame_ids: dict) -> _Plan:
    if isinstance(gallery, FrameGalleryLike):
        return _plan_frames(q, gallery, dets, seen_key, frame_ids)
    if isinstance(gallery, (str, bytes)) or not isinstance(gallery, Sequence):
        raise ValueError(f"galleries[{q}] must be a list of (image_name, box or None), got {type(gallery).__name__}")
    index, keys = dets.index, dets.keys
    images: list[int] = []
    slots: list[int] = []
    pos_boxes: list[np.ndarray] = []
    taken: set[int] = set()
    count_gt = 0
    for j, entry in enumerate(gallery):
        try:
            name, box = entry
        except (TypeError, ValueError):
            raise ValueError(f"galleries[{q}][{j}] must be a pair (image_name, box or None), got {entry!r}") from None
        if not isinstance(name, str):
            raise ValueError(f"galleries[{q}][{j}]: image name must be a str, got {type(name).__name__} {name!r}")
        if box is not None:
            box = _gt_box(box, q, j, name)
            count_gt += box is not None
        k = index.get(name)
        if k is None:
            if not seen_key[0] and name in keys:
                seen_key[0] = True
            continue
        seen_key[0] = True
        if k in taken:
            continue
        taken.add(k)
        if box is not None:
            slots.append(len(images))
            pos_boxes.append(box)
        images.append(k)
    return _Plan(np.array(images, dtype=np.int32), np.array(slots, dtype=np.int64),
                 np.array(pos_boxes, dtype=np.float64).reshape(-1, 4), count_gt)


def _plan_frames(q: int, gallery: FrameGalleryLike, dets: _Detections, seen_key: list[bool], frame_ids: dict) -> _Plan:
    """Same as the entry loop for a FrameGallery (frames unique, positives inside), without iterating."""
    cached = frame_ids.get(id(gallery.names))
    if cached is None or cached[0] is not gallery.names:
        ids = np.array([dets.index.get(n, -1) for n in gallery.names], dtype=np.int64)
        if any(n in dets.keys for n in gallery.names):
            seen_key[0] = True
        cached = frame_ids[id(gallery.names)] = (gallery.names, ids)
    frames = gallery.frame_indices()
    ids = cached[1][frames]
    present = ids >= 0
    kept_frames = frames[present]
    slots, boxes = [], []
    for k, box in sorted(gallery.positive_boxes.items()):
        box = _gt_box(box, q, -1, gallery.names[k])
        if box is None:
            raise ValueError(f"galleries[{q}]: empty GT box for frame '{gallery.names[k]}'")
        if cached[1][k] >= 0:
            slots.append(int(np.searchsorted(kept_frames, k)))
            boxes.append(box)
    return _Plan(ids[present].astype(np.int32), np.array(slots, dtype=np.int64),
                 np.array(boxes, dtype=np.float64).reshape(-1, 4), len(gallery.positive_boxes))


def _exclusive_cumsum(x: np.ndarray) -> np.ndarray:
    out = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(x, out=out[1:])
    return out
