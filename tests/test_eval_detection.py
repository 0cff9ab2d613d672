"""evaluate_detection agrees with SeqNet's eval_detection loop; average_precision with sklearn's."""

from __future__ import annotations

import numpy as np
import pytest

from personsearch.evaluation.detection import average_precision, box_iou, evaluate_detection
from reference_search import compute_iou, reference_detection, sklearn_average_precision


def _random_detection_problem(rng: np.random.Generator):
    gt, dets = {}, {}
    for i in range(int(rng.integers(1, 25))):
        name = f"im{i}.jpg"
        n_gt = int(rng.integers(0, 5)) if rng.random() < 0.9 else 0
        xy = rng.integers(0, 80, (n_gt, 2))
        boxes = np.c_[xy, xy + rng.integers(2, 40, (n_gt, 2))].astype(np.float64)
        gt[name] = boxes
        if rng.random() < 0.15:
            continue  # no entry in detections
        n_det = int(rng.integers(0, 7))
        parts = []
        for _ in range(n_det):
            if n_gt and rng.random() < 0.7:  # near a GT box
                box = boxes[int(rng.integers(n_gt))] + rng.integers(-6, 7, 4)
                box[2:] = np.maximum(box[2:], box[:2])
            else:
                box = np.r_[rng.integers(0, 80, 2), 0, 0].astype(np.float64)
                box[2:] = box[:2] + rng.integers(0, 40, 2)
            parts.append(box)
        if parts and rng.random() < 0.3:
            parts.append(parts[0].copy())  # duplicate box: IoU ties in the argmax matching
        scores = rng.choice([0.005, 0.01, 0.3, 0.6, 0.9], len(parts))  # ties, and exactly det_thresh
        dets[name] = np.c_[np.array(parts).reshape(-1, 4), scores]
    if not any(len(b) for b in gt.values()):
        gt["extra.jpg"] = np.array([[0.0, 0, 10, 10]])
    return gt, dets


@pytest.mark.parametrize("seed", range(20))
def test_matches_reference_loop(seed):
    rng = np.random.default_rng(seed)
    gt, dets = _random_detection_problem(rng)
    for det_thresh, iou_thresh in ((0.01, 0.5), (0.5, 0.3), (0.0, 0.7)):
        recall, ap = reference_detection(gt, dets, det_thresh, iou_thresh)
        out = evaluate_detection(gt, dets, det_thresh, iou_thresh)
        assert out["recall"] == pytest.approx(recall, abs=1e-12)
        assert out["AP"] == pytest.approx(ap, abs=1e-9)


def test_hand_computed():
    gt = {"a": np.array([[0, 0, 10, 10], [20, 0, 30, 10]]), "b": np.array([[0, 0, 10, 10]]),
          "c": np.array([[0, 0, 10, 10]])}  # "c" has no detections: its box still counts
    dets = {"a": np.array([[0, 0, 10, 10, 0.9],  # TP for box 0 (IoU 1)
                           [1, 0, 10, 10, 0.8],  # IoU .9 with box 0, but box 0 prefers the first: FP
                           [20, 0, 30, 8, 0.7]]),  # TP for box 1 (IoU .8)
            "b": np.array([[5, 0, 15, 10, 0.95],  # IoU 1/3: FP
                           [0, 0, 10, 10, 0.001]])}  # below det_thresh
    out = evaluate_detection(gt, dets)
    # ranking .95 F, .9 T, .8 F, .7 T -> AP = (1/2 + 2/4) / 2 = 0.5; recall 2/4
    assert out["recall"] == pytest.approx(0.5)
    assert out["AP"] == pytest.approx(0.5 * 0.5)


def test_mutual_best_uses_float32_iou_and_first_index_on_ties():
    gt = {"a": np.array([[0, 0, 10, 10]])}
    dets = {"a": np.array([[0, 0, 10, 10, 0.5], [0, 0, 10, 10, 0.9]])}  # identical boxes: first one wins
    assert evaluate_detection(gt, dets) == pytest.approx({"AP": 0.5, "recall": 1.0})  # TP ranked 2nd


def test_image_without_gt_gives_false_positives():
    gt = {"a": np.array([[0, 0, 10, 10]]), "b": np.zeros((0, 4))}
    dets = {"a": np.array([[0, 0, 10, 10, 0.5]]), "b": np.array([[0, 0, 10, 10, 0.9]])}
    assert evaluate_detection(gt, dets) == pytest.approx({"AP": 0.5, "recall": 1.0})
    assert evaluate_detection(gt, {"b": dets["b"]}) == {"AP": 0.0, "recall": 0.0}


@pytest.mark.parametrize("gt, dets, match", [
    ({"a": np.zeros((1, 3))}, {}, "gt\\['a'\\]"),
    ({"a": np.array([[0, 0, 0, 5]])}, {}, "gt\\['a'\\]"),
    ({"a": np.array([[0, 0, 5, 5]])}, {"a": np.zeros((1, 4))}, "detections\\['a'\\]"),
    ({"a": np.array([[0, 0, 5, 5]])}, {"a": np.array([[0, 0, 5, 5, np.nan]])}, "detections\\['a'\\]"),
    ({"a": np.array([[0, 0, 5, 5]])}, {"zz": np.array([[0, 0, 5, 5, 1]])}, "image 'zz'"),
    ({"a": np.zeros((0, 4))}, {}, "no box"),
])
def test_bad_input(gt, dets, match):
    with pytest.raises(ValueError, match=match):
        evaluate_detection(gt, dets)


@pytest.mark.parametrize("seed", range(10))
def test_average_precision_matches_sklearn_algorithm(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    labels = rng.random(n) < 0.4
    labels[int(rng.integers(n))] = True
    scores = rng.integers(0, 6, n) / 5 if seed % 2 else rng.random(n)  # ties on odd seeds
    assert average_precision(labels, scores) == pytest.approx(sklearn_average_precision(labels, scores), abs=1e-12)


def test_average_precision_known_values():
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8333333333)  # sklearn doc
    assert average_precision([1], [0.3]) == 1.0
    assert average_precision([1, 0], [0.5, 0.5]) == 0.5
    with pytest.raises(ValueError, match="positive"):
        average_precision([0, 0], [0.1, 0.2])


def test_box_iou_is_bitwise_the_scalar_formula():
    rng = np.random.default_rng(0)
    a = rng.random((50, 4)) * 50
    a[:, 2:] += a[:, :2]
    b = rng.random((50, 4)) * 50
    b[:, 2:] += b[:, :2]
    assert box_iou(a, b).tolist() == [compute_iou(x, y) for x, y in zip(a, b)]
