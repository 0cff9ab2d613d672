"""The real-footage benchmark's ground truth and protocol, and the zero-shot embedding on real people."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from system_files import VTEST, require_vtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_footage  # noqa: E402


def test_ground_truth_tracks_are_well_formed_and_give_a_query_per_track():
    people = real_footage.load_people()
    assert len(people) == 26
    for pid, person in people.items():
        boxes = np.array(list(person["boxes"].values()))
        assert len(boxes) >= 30 and (boxes[:, 2:] > boxes[:, :2]).all(), pid
        assert (boxes[:, :2] >= -1).all() and (boxes[:, 2] <= 769).all() and (boxes[:, 3] <= 577).all(), pid
        frames = sorted(person["boxes"])
        assert frames == list(range(frames[0], frames[-1] + 1)), pid  # gaps interpolated
        assert set(person["clear"]) <= set(frames)
    queries, gallery, galleries = real_footage.protocol(people, 795)
    assert len(queries) == 26 and gallery == list(range(0, 795, 5))
    for (pid, frame, box), entries in zip(queries, galleries):
        assert entries and all(int(name) - frame >= real_footage.MIN_GAP_FRAMES for name, _ in entries)
        assert all(int(name) in people[pid]["boxes"] for name, _ in entries) and box[3] - box[1] >= 60


@pytest.mark.slow
def test_zero_shot_embedding_ranks_the_walker_above_the_others_better_than_plain_imagenet_features():
    """Ground-truth boxes as detections (embedding alone): mAP of the default zero-shot embedding vs the
    plain global average, on every query of the benchmark."""
    require_vtest()
    from personsearch.evaluation.search import evaluate_search
    from personsearch.index.frames import video_frames
    from personsearch.pipelines import load_searcher

    people = real_footage.load_people()
    queries, gallery, galleries = real_footage.protocol(people, 795)
    boxes = real_footage.gt_boxes(people, gallery)
    needed = {int(name) for entries in galleries for name, _ in entries} | {f for _, f, _ in queries}
    frames = {f.frame: f.rgb for f in video_frames(VTEST) if f.frame in needed}
    scores = {}
    for spec in ("pretrained@plain", "pretrained"):
        searcher = load_searcher(spec)
        dets = {name: np.concatenate([b, np.ones((len(b), 1))], 1) for name, b in boxes.items()
                if int(name) in frames and len(b)}
        feats = {name: searcher.extract_query(frames[int(name)], d[:, :4]) for name, d in dets.items()}
        query = np.concatenate([searcher.extract_query(frames[f], box[None]) for _, f, box in queries])
        scores[spec] = evaluate_search(query, galleries, dets, feats, det_thresh=0.0)["mAP"]
    assert scores["pretrained"] > scores["pretrained@plain"] + 0.05, scores
