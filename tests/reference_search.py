"""Straightforward loop references of the person search protocols (SeqNet eval_func.py semantics).

Written in the reference's own loop form, one query / one image / one box at a time, kept naive on
purpose: it is the yardstick the vectorised evaluators are checked against. Inputs as in
personsearch.evaluation.search / detection (dicts keyed by image name). Similarities are float64.
"""

from __future__ import annotations

import numpy as np


def sklearn_average_precision(y_true, y_score) -> float:
    """scikit-learn's average_precision_score for binary labels, step by step as sklearn does it
    (_binary_clf_curve -> precision_recall_curve -> -sum(diff(recall) * precision[:-1]))."""
    y_true = np.asarray(y_true) == 1
    y_score = np.asarray(y_score, dtype=np.float64)
    desc = np.argsort(y_score, kind="mergesort")[::-1]
    y_score, y_true = y_score[desc], y_true[desc]
    distinct = np.where(np.diff(y_score))[0]
    threshold_idxs = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true)[threshold_idxs]
    fps = 1 + threshold_idxs - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    return max(0.0, -np.sum(np.diff(recall) * precision[:-1]))


def compute_iou(a, b) -> float:
    x1 = max(a[0], b[0])
    y1 = max(a[1], b[1])
    x2 = min(a[2], b[2])
    y2 = min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter * 1.0 / union


def reference_search(query_feats, galleries, detections, det_feats, det_thresh=0.5):
    """eval_search_cuhk's loop: returns (mAP, [top1, top5, top10], per-query APs)."""
    name_to_det_feat = {}
    for name, det in detections.items():
        det = np.asarray(det, dtype=np.float64)
        if len(det) != 0:
            feat = np.asarray(det_feats[name], dtype=np.float64)
            inds = np.where(det[:, 4] >= det_thresh)[0]
            if len(inds) > 0:
                name_to_det_feat[name] = (det[inds], feat[inds])
    aps, accs = [], []
    topk = [1, 5, 10]
    for i, gallery in enumerate(galleries):
        y_true, y_score = [], []
        count_gt, count_tp = 0, 0
        feat_q = np.asarray(query_feats[i], dtype=np.float64).ravel()
        name2sim, name2gt = {}, {}
        for gallery_imname, box in gallery:
            gt = np.zeros(0) if box is None else np.asarray(box, dtype=np.float64).ravel()
            count_gt += gt.size > 0
            if gallery_imname not in name_to_det_feat:
                continue
            det, feat_g = name_to_det_feat[gallery_imname]
            sim = feat_g.dot(feat_q).ravel()
            if gallery_imname in name2sim:
                continue
            name2sim[gallery_imname] = sim
            name2gt[gallery_imname] = gt
        for gallery_imname, sim in name2sim.items():
            gt = name2gt[gallery_imname]
            det, _ = name_to_det_feat[gallery_imname]
            label = np.zeros(len(sim), dtype=np.int32)
            if gt.size > 0:
                w, h = gt[2] - gt[0], gt[3] - gt[1]
                iou_thresh = min(0.5, (w * h * 1.0) / ((w + 10) * (h + 10)))
                inds = np.argsort(sim)[::-1]
                sim = sim[inds]
                det = det[inds]
                for j, roi in enumerate(det[:, :4]):
                    if compute_iou(roi, gt) >= iou_thresh:
                        label[j] = 1
                        count_tp += 1
                        break
            y_true.extend(list(label))
            y_score.extend(list(sim))
        y_score = np.asarray(y_score, dtype=np.float64)
        y_true = np.asarray(y_true)
        assert count_tp <= count_gt
        recall_rate = count_tp * 1.0 / count_gt  # ZeroDivisionError without any GT, as the reference
        ap = 0 if count_tp == 0 else sklearn_average_precision(y_true, y_score) * recall_rate
        aps.append(ap)
        inds = np.argsort(y_score)[::-1]
        y_true = y_true[inds]
        accs.append([min(1, sum(y_true[:k])) for k in topk])
    return float(np.mean(aps)), list(np.mean(accs, axis=0)), aps


def reference_detection(gt, detections, det_thresh=0.01, iou_thresh=0.5):
    """eval_detection's loop (all boxes, no labeled_only): returns (recall, AP)."""
    y_true, y_score = [], []
    count_gt, count_tp = 0, 0
    for name, gt_boxes in gt.items():
        gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        num_gt = gt_boxes.shape[0]
        det = detections.get(name, [])
        if len(det) != 0:
            det = np.asarray(det, dtype=np.float64)
            inds = np.where(det[:, 4].ravel() >= det_thresh)[0]
            det = det[inds]
            num_det = det.shape[0]
        else:
            num_det = 0
        if num_det == 0:
            count_gt += num_gt
            continue
        if num_gt == 0:  # the reference crashes (argmax of an empty column): all false positives
            for j in range(num_det):
                y_score.append(det[j, -1])
                y_true.append(False)
            continue
        ious = np.zeros((num_gt, num_det), dtype=np.float32)
        for i in range(num_gt):
            for j in range(num_det):
                ious[i, j] = compute_iou(gt_boxes[i], det[j, :4])
        tfmat = ious >= iou_thresh
        for j in range(num_det):
            largest_ind = np.argmax(ious[:, j])
            for i in range(num_gt):
                if i != largest_ind:
                    tfmat[i, j] = False
        for i in range(num_gt):
            largest_ind = np.argmax(ious[i, :])
            for j in range(num_det):
                if j != largest_ind:
                    tfmat[i, j] = False
        for j in range(num_det):
            y_score.append(det[j, -1])
            y_true.append(tfmat[:, j].any())
        count_tp += tfmat.sum()
        count_gt += num_gt
    det_rate = count_tp * 1.0 / count_gt
    ap = 0.0 if count_tp == 0 else sklearn_average_precision(y_true, y_score) * det_rate
    return float(det_rate), float(ap)
