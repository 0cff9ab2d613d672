"""Person search ranking metrics: mAP and top-1/5/10 under the CUHK-SYSU / PRW protocol.

Semantics are those of SeqNet's ``eval_search_cuhk`` / ``eval_search_prw`` (OIM -> NAE -> SeqNet),
exactly (/work/shared/docs/protocols.md, "Person search"):

- detections with score < ``det_thresh`` are dropped; an image left with none is absent;
- per query, every listed entry with a GT box counts into ``count_gt`` (even when its image is absent,
  and once per entry when an image is listed twice); absent images are skipped; an image listed twice
  is scored once, with its first entry's box;
- in a positive image the detections are walked by descending similarity and the first whose IoU with
  the GT box is >= ``min(0.5, w*h / ((w+10)*(h+10)))`` is the one true positive;
- all candidate boxes of the query are pooled: ``AP_q = AP(labels, sims) * count_tp / count_gt``
  (scikit-learn's non-interpolated AP, tied similarities form one threshold), 0 without a TP;
- ``top-k_q = 1`` if a true positive is among the first k of ``np.argsort(sims)[::-1]`` over the pooled
  list (fewer than k candidates: all of them; none: 0). With exact ties straddling position k the
  reference's answer depends on the pooled order (images in gallery order, a positive image's boxes
  re-ordered by ``np.argsort`` descending) and on numpy's default argsort; we rebuild that list and
  call the same argsort for those queries, so we agree with it on any input;
- mAP and top-k are means over all queries.

Similarity is the dot product, computed in float64. Models that weight the gallery embedding by its
detection score (NAE, SeqNet) must pass ``det_feats`` already multiplied by it.

Speed: similarities are computed per gallery image for all the queries that list it (one small
matrix product each), or, when queries see most of the gallery (PRW, CUHK-SYSU 4000), as dense
query-chunk x detection products; the rest is vectorised per query. CUHK-SYSU size (2900 queries x
gallery 100) takes well under a second.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .cbgm import cbgm_rescore
from .checks import as_array
from .detection import box_iou, to_numpy

TOPK = (1, 5, 10)
CHUNK_CANDIDATES = 4_000_000  # (query, detection) similarities held at once: 32 MB of float64
DENSE_FRACTION = 0.25  # above this share of all detections per query, use dense chunk products
BROADCAST_TPS = 16  # up to this many true positives, count ranks by broadcasting instead of sorting


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


def _chunks(lengths: np.ndarray) -> list[slice]:
    out, start, total = [], 0, 0
    for i, n in enumerate(lengths.tolist()):
        if i > start and total + n > CHUNK_CANDIDATES:
            out.append(slice(start, i))
            start, total = i, 0
        total += n
    out.append(slice(start, len(lengths)))
    return out


def _exclusive_cumsum(x: np.ndarray) -> np.ndarray:
    out = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(x, out=out[1:])
    return out


def _exact_topk(pairs: range, pair_off: np.ndarray, flat: np.ndarray, positive: dict[int, np.ndarray]) -> list[int]:
    """top-k hits from the reference's own pooled list and argsort (queries with ties at rank k)."""
    scores, labels = [], []
    for p in pairs:
        sim = flat[pair_off[p]:pair_off[p + 1]]
        label = np.zeros(len(sim), dtype=np.int64)
        if p in positive:
            order = np.argsort(sim)[::-1]
            sim = sim[order]
            qualifies = positive[p][order]
            if qualifies.any():
                label[int(np.argmax(qualifies))] = 1
        scores.append(sim)
        labels.append(label)
    ranked = np.concatenate(labels)[np.argsort(np.concatenate(scores))[::-1]]
    return [int(ranked[:k].any()) for k in TOPK]


def _apply_cbgm(qf: np.ndarray, plans: list[_Plan], dets: _Detections, flat: np.ndarray, q_pair: np.ndarray,
                pair_img: np.ndarray, pair_off: np.ndarray, context: Sequence[np.ndarray], k1: int) -> None:
    """CBGM on every query of the chunk: its pooled similarities ``flat`` are re-scored in place."""
    starts = dets.starts
    for l in range(len(plans)):
        pairs = slice(int(q_pair[l]), int(q_pair[l + 1]) + 1)
        offsets = pair_off[pairs]
        images = pair_img[int(q_pair[l]):int(q_pair[l + 1])]
        sims = flat[offsets[0]:offsets[-1]]  # a view: written through
        cbgm_rescore(sims, offsets - offsets[0],
                     lambda k, imgs=images: dets.feats[starts[imgs[k]]:starts[imgs[k] + 1]],
                     qf[l], context[l], k1)


def _evaluate_chunk(qf: np.ndarray, plans: list[_Plan], dets: _Detections, dense_feats,
                    context: Sequence[np.ndarray] | None = None, k1: int = 10) -> tuple[list, list]:
    counts = dets.counts
    n_pairs = np.array([len(p.images) for p in plans], dtype=np.int64)
    q_pair = _exclusive_cumsum(n_pairs)  # pairs of query l: q_pair[l]:q_pair[l+1]
    pair_img = np.concatenate([p.images for p in plans]).astype(np.int64)
    pair_q = np.repeat(np.arange(len(plans)), n_pairs)
    pair_n = counts[pair_img]
    pair_off = _exclusive_cumsum(pair_n)  # candidates of pair p: flat[pair_off[p]:pair_off[p+1]]
    total = int(pair_off[-1])
    flat = np.empty(total, dtype=np.float64)
    n_dets = len(dets.boxes)
    if total and total >= DENSE_FRACTION * len(plans) * n_dets:
        sims = qf @ dense_feats().T  # (chunk, N)
        base = pair_q * n_dets + dets.starts[pair_img] - pair_off[:-1]  # flat index into sims, per pair
        index = np.repeat(base, pair_n)
        index += np.arange(total)
        np.take(sims.ravel(), index, out=flat)
        del sims, index
    elif total:  # per image, one product with all the queries listing it; image-major, then permuted
        order = np.argsort(pair_img, kind="stable")
        sorted_img = pair_img[order]
        sorted_q = pair_q[order]
        bounds = np.r_[0, np.flatnonzero(np.diff(sorted_img)) + 1, len(order)].tolist()
        feats, starts = dets.feats, dets.starts.tolist()
        blocks = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            g = int(sorted_img[a])
            blocks.append((qf[sorted_q[a:b]] @ feats[starts[g]:starts[g + 1]].T.astype(np.float64)).ravel())
        image_major = np.concatenate(blocks)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        im_off = _exclusive_cumsum(pair_n[order])
        src = np.repeat(im_off[rank] - pair_off[:-1], pair_n) + np.arange(total)
        flat[:] = image_major[src]
    if context is not None:
        _apply_cbgm(qf, plans, dets, flat, q_pair, pair_img, pair_off, context, k1)
    # positives: the best-similarity detection clearing the IoU threshold is the true positive
    n_pos = np.array([len(p.pos_slots) for p in plans], dtype=np.int64)
    q_pos = _exclusive_cumsum(n_pos)
    if q_pos[-1]:
        pos_pair = np.concatenate([q_pair[l] + p.pos_slots for l, p in enumerate(plans)])
        pos_box = np.concatenate([p.pos_boxes for p in plans])
        seg_n = pair_n[pos_pair]
        seg = _exclusive_cumsum(seg_n)
        rep = np.repeat(np.arange(len(pos_pair)), seg_n)
        within = np.arange(int(seg[-1])) - seg[:-1][rep]
        iou = box_iou(dets.boxes[dets.starts[pair_img[pos_pair]][rep] + within], pos_box[rep])
        w, h = pos_box[:, 2] - pos_box[:, 0], pos_box[:, 3] - pos_box[:, 1]
        thresh = np.minimum(0.5, w * h * 1.0 / ((w + 10) * (h + 10)))
        qualifies = iou >= thresh[rep]
        masked = np.where(qualifies, flat[pair_off[pos_pair][rep] + within], -np.inf)
        tp_score = np.maximum.reduceat(masked, seg[:-1])
    else:
        pos_pair, tp_score = np.zeros(0, np.int64), np.zeros(0)
        qualifies, seg = np.zeros(0, bool), np.zeros(1, np.int64)
    aps, hits = [], []
    for l, plan in enumerate(plans):
        t = tp_score[q_pos[l]:q_pos[l + 1]]
        t = t[t > -np.inf]
        if t.size == 0:
            aps.append(0.0)
            hits.append([0] * len(TOPK))
            continue
        sims = flat[pair_off[q_pair[l]]:pair_off[q_pair[l + 1]]]
        if t.size <= BROADCAST_TPS:
            n_ge = (sims[None, :] >= t[:, None]).sum(axis=1)
        else:
            n_ge = sims.size - np.searchsorted(np.sort(sims), t, side="left")
        tp_ge = (t[None, :] >= t[:, None]).sum(axis=1)
        aps.append(float((tp_ge / n_ge).sum() / plan.count_gt))
        best = t.max()
        above = int((sims > best).sum())
        tied = int((sims == best).sum())
        row = [1 if above + tied <= k else 0 if above >= k else -1 for k in TOPK]
        if -1 in row:  # a tie straddles rank k: ask the reference's own ordering
            first = int(q_pos[l])
            positive = {int(pos_pair[first + i]): qualifies[seg[first + i]:seg[first + i + 1]]
                        for i in range(int(n_pos[l]))}
            row = _exact_topk(range(int(q_pair[l]), int(q_pair[l + 1])), pair_off, flat, positive)
        hits.append(row)
    return aps, hits


def evaluate_search(query_feats, galleries, detections: Mapping, det_feats: Mapping,
                    det_thresh: float = 0.5, query_context: Sequence | None = None,
                    cbgm_k1: int = 10) -> dict[str, float]:
    """mAP and top-1/5/10 (fractions) of person search, SeqNet ``eval_search_cuhk`` semantics exactly.

    query_feats: (Q, D) embeddings of the query boxes. galleries: per query a sequence of
    ``(image_name, gt_box)`` with ``gt_box`` the query person's ``[x1, y1, x2, y2]`` in that image or
    None (see ``personsearch.data.galleries``). detections: image name -> (N, 5) ``[x1, y1, x2, y2, score]``;
    det_feats: image name -> (N, D). An image missing from both has no detections. Similarity is the
    float64 dot product (NAE-style models: pass gallery embeddings multiplied by the detection score).
    query_context: per query, the embeddings (C, D) of the other people of its image (see
    ``cbgm.query_context``); given, SeqNet's CBGM re-scores each query's ``cbgm_k1`` best candidates.

    Raises ValueError naming the query or image on: shape/dimension/count mismatches, NaN or inf,
    malformed gallery entries or boxes, or a query whose gallery lists no GT box (its AP is undefined;
    the reference divides by zero). Warns when no listed image name is a key of a non-empty
    ``detections`` (likely a naming mismatch, e.g. paths vs file names: every image would be absent).
    """
    qf = as_array(query_feats, "query_feats", 2)
    num_q, dim = qf.shape
    if num_q == 0 or dim == 0:
        raise ValueError(f"query_feats is empty (shape {qf.shape})")
    if qf.dtype.kind not in "biuf":
        raise ValueError(f"query_feats must be numeric, got dtype {qf.dtype}")
    qf = qf.astype(np.float64)
    if not np.isfinite(qf).all():
        bad = np.argwhere(~np.isfinite(qf))[0]
        raise ValueError(f"query_feats[{bad[0]}] (query {bad[0]}) contains NaN or inf")
    if not isinstance(galleries, Sequence) or isinstance(galleries, (str, bytes)):
        raise ValueError("galleries must be a list with one gallery per query")
    if len(galleries) != num_q:
        raise ValueError(f"galleries has {len(galleries)} entries but query_feats has {num_q} rows")
    if not np.isfinite(det_thresh):
        raise ValueError(f"det_thresh must be finite, got {det_thresh}")
    dets = _load_detections(detections, det_feats, dim, float(det_thresh))
    seen_key = [False]
    frame_ids: dict = {}
    plans = [_plan(q, gallery, dets, seen_key, frame_ids) for q, gallery in enumerate(galleries)]
    empty = [q for q, p in enumerate(plans) if p.count_gt == 0]
    if empty:
        raise ValueError(f"query {empty[0]} (and {len(empty) - 1} more) has no GT box in its gallery: "
                         "count_gt = 0 makes its AP undefined")
    if dets.keys and not seen_key[0]:
        example = next(iter(dets.keys))
        warnings.warn(f"no gallery image name is a key of detections/det_feats (e.g. key '{example}'): every "
                      "image is absent. Keys must be the image names used in galleries.", stacklevel=2)
    cand = np.array([int(dets.counts[p.images].sum()) for p in plans], dtype=np.int64)
    dense: list[np.ndarray] = []

    def dense_feats() -> np.ndarray:
        if not dense:
            dense.append(dets.feats.astype(np.float64, copy=False))
        return dense[0]

    context = None
    if query_context is not None:
        if len(query_context) != num_q:
            raise ValueError(f"query_context has {len(query_context)} entries but query_feats has {num_q} rows")
        context = [np.asarray(c, np.float64).reshape(-1, dim) for c in query_context]
    aps: list[float] = []
    hits: list[list[int]] = []
    for chunk in _chunks(cand):
        ctx = None if context is None else context[chunk]
        a, h = _evaluate_chunk(qf[chunk], plans[chunk], dets, dense_feats, ctx, cbgm_k1)
        aps += a
        hits += h
    top = np.mean(np.array(hits, dtype=np.float64), axis=0)
    return {"mAP": float(np.mean(aps)), **{f"top{k}": float(v) for k, v in zip(TOPK, top)}}
