"""Person detection metrics of the person search benchmarks (OIM / NAE / SeqNet ``eval_detection``).

Protocol (/work/shared/docs/protocols.md, "Detection"): detections with score < ``det_thresh`` are
dropped; a detection is a true positive only if its IoU with a ground-truth box is >= ``iou_thresh``
and the pair is a mutual best match (the box's highest-IoU detection and the detection's highest-IoU
box, first index on ties). Recall = TP / #GT, where images without (kept) detections still add their
ground truth; AP = average precision over all kept detections, scaled by that recall.

Also home of the two primitives the search metrics share: :func:`box_iou` and
:func:`average_precision` (scikit-learn's ``average_precision_score`` semantics, without sklearn).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .checks import as_array


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``[x1, y1, x2, y2]`` boxes ``a`` (..., 4) and ``b`` (..., 4), broadcast against each other.

    Continuous coordinates (no +1), float64, in the reference's order of operations
    (``inter / (area_a + area_b - inter)``), so results are bit-identical to its scalar loop.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0)
    ih = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return inter / union


def average_precision(labels, scores) -> float:
    """scikit-learn's ``average_precision_score(labels, scores)`` for binary labels, exactly.

    Non-interpolated: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, descending;
    detections with tied scores enter together (one threshold). Raises ValueError when there is no
    positive (sklearn returns a meaningless number with a warning there) or on mismatched/NaN input.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels has {labels.size} entries but scores has {scores.size}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    if not labels.any():
        raise ValueError("average precision is undefined without a positive label")
    order = np.argsort(scores, kind="mergesort")[::-1]
    sorted_scores = scores[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_scores)), scores.size - 1]
    tps = np.cumsum(labels[order])[last_of_group]
    precision = tps / (last_of_group + 1.0)
    recall = tps / tps[-1]
    return max(0.0, float(np.sum(np.diff(recall, prepend=0.0) * precision)))


def to_numpy(value, dtype=None) -> np.ndarray:
    """``value`` as a numpy array (torch tensors accepted)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _gt_boxes(value, name: str) -> np.ndarray:
    arr = to_numpy(value, np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    arr = as_array(arr, f"gt['{name}']", 2)
    if arr.shape[1] != 4:
        raise ValueError(f"gt['{name}'] must be an (N, 4) array of [x1, y1, x2, y2] boxes, got shape {arr.shape}")
    if not np.isfinite(arr).all() or not ((arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])).all():
        raise ValueError(f"gt['{name}'] has a non-finite box or one with x2 <= x1 or y2 <= y1")
    return arr


def _det_boxes(value, name: str) -> np.ndarray:
    arr = np.zeros((0, 5)) if value is None else to_numpy(value, np.float64)
    if arr.size == 0:
        return np.zeros((0, 5))
    arr = as_array(arr, f"detections['{name}']", 2)
    if arr.shape[1] != 5:
        raise ValueError(f"detections['{name}'] must be an (N, 5) array of [x1, y1, x2, y2, score], "
                         f"got shape {arr.shape}")
    if not np.isfinite(arr).all() or not ((arr[:, 2] >= arr[:, 0]) & (arr[:, 3] >= arr[:, 1])).all():
        raise ValueError(f"detections['{name}'] has a non-finite value or a box with x2 < x1 or y2 < y1")
    return arr


def evaluate_detection(gt: Mapping[str, np.ndarray], detections: Mapping[str, np.ndarray],
                       det_thresh: float = 0.01, iou_thresh: float = 0.5) -> dict[str, float]:
    """Detection AP and recall of ``detections`` against the ground truth ``gt``.

    gt: image name -> (N, 4) ``[x1, y1, x2, y2]`` boxes (every evaluated image, possibly with N = 0).
    detections: image name -> (M, 5) ``[x1, y1, x2, y2, score]``; an image of ``gt`` that is absent
    here has no detections. A detection for an image not in ``gt`` is a ValueError (a naming bug).
    Returns ``{"AP": .., "recall": ..}`` as fractions.

    Reference details kept: IoUs are rounded to float32 before thresholding and the argmax matching
    (the reference stores them in a float32 matrix); ties in argmax go to the first index. Where the
    reference crashes we define: an image with detections but no ground truth contributes only false
    positives; AP = 0 when there is no true positive (recall 0); no ground truth at all is a ValueError.
    """
    if not isinstance(gt, Mapping) or not isinstance(detections, Mapping):
        raise ValueError("gt and detections must be mappings image name -> boxes")
    unknown = [name for name in detections if name not in gt]
    if unknown:
        raise ValueError(f"detections for image '{unknown[0]}' (and {len(unknown) - 1} more) which is not in gt")
    if not np.isfinite(det_thresh) or not np.isfinite(iou_thresh):
        raise ValueError("det_thresh and iou_thresh must be finite")
    labels, scores = [], []
    count_gt = count_tp = 0
    for name, value in gt.items():
        gt_boxes = _gt_boxes(value, name)
        dets = _det_boxes(detections.get(name), name)
        dets = dets[dets[:, 4] >= det_thresh]
        count_gt += len(gt_boxes)
        if len(dets) == 0:
            continue
        if len(gt_boxes) == 0:
            labels.append(np.zeros(len(dets), dtype=bool))
            scores.append(dets[:, 4])
            continue
        ious = box_iou(gt_boxes[:, None, :], dets[None, :, :4]).astype(np.float32)  # (num_gt, num_det)
        matched = ious >= iou_thresh
        matched &= np.arange(len(gt_boxes))[:, None] == ious.argmax(axis=0)[None, :]  # det's best box
        matched &= np.arange(len(dets))[None, :] == ious.argmax(axis=1)[:, None]  # box's best det
        labels.append(matched.any(axis=0))
        scores.append(dets[:, 4])
        count_tp += int(matched.sum())
    if count_gt == 0:
        raise ValueError("gt holds no box: recall and AP are undefined")
    recall = count_tp / count_gt
    ap = 0.0 if count_tp == 0 else average_precision(np.concatenate(labels), np.concatenate(scores)) * recall
    return {"AP": float(ap), "recall": float(recall)}
