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

import numpy as np

from .cbgm import cbgm_rescore
from .checks import as_array
from .detection import box_iou
from .search_plan import _Detections, _exclusive_cumsum, _load_detections, _plan, _Plan

TOPK = (1, 5, 10)
CHUNK_CANDIDATES = 4_000_000  # (query, detection) similarities held at once: 32 MB of float64
DENSE_FRACTION = 0.25  # above this share of all detections per query, use dense chunk products
BROADCAST_TPS = 16  # up to this many true positives, count ranks by broadcasting instead of sorting


def _chunks(lengths: np.ndarray) -> list[slice]:
    out, start, total = [], 0, 0
    for i, n in enumerate(lengths.tolist()):
        if i > start and total + n > CHUNK_CANDIDATES:
            out.append(slice(start, i))
            start, total = i, 0
        total += n
    out.append(slice(start, len(lengths)))
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
