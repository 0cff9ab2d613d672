"""SeqNet's context bipartite graph matching, on hand-built cases, and inside evaluate_search."""

from __future__ import annotations

import numpy as np

from personsearch.evaluation import evaluate_search
from personsearch.evaluation.cbgm import cbgm_rescore, query_context

E = np.eye(4)  # four orthogonal "identities"


def test_a_person_seen_with_the_query_companion_is_lifted_to_the_best_matched_weight():
    query, companion = E[0], E[1]
    # image 0: the true person (weak appearance match) next to the companion (strong match)
    # image 1: a stranger who resembles the query a little more
    feats = [np.array([0.6 * E[0] + 0.8 * E[2], 0.95 * E[1]]), np.array([0.7 * E[0] + 0.7 * E[3]])]
    segments = np.array([0, 2, 3])
    sims = np.concatenate([f @ query for f in feats])
    before = sims.copy()
    cbgm_rescore(sims, segments, lambda k: feats[k], query, companion[None], k1=10)
    assert sims[0] == 0.95  # query -> true person, companion -> companion: the max matched weight
    assert sims[1] == before[1] and sims[2] == before[2]  # the companion itself and the stranger keep theirs
    assert sims[0] > sims[2]


def test_without_context_a_single_match_keeps_the_similarity():
    feats = [np.array([0.5 * E[0], 0.9 * E[0]])]
    sims = feats[0] @ E[0]
    cbgm_rescore(sims, np.array([0, 2]), lambda k: feats[k], E[0], np.zeros((0, 4)), k1=10)
    np.testing.assert_allclose(sims, [0.5, 0.9])  # the query matches its best detection: unchanged


def test_only_images_of_the_k1_best_candidates_are_rescored():
    feats = [np.array([0.9 * E[0]]), np.array([0.1 * E[0], 0.99 * E[1]])]
    segments = np.array([0, 1, 3])
    sims = np.concatenate([f @ E[0] for f in feats])
    cbgm_rescore(sims, segments, lambda k: feats[k], E[0], E[1][None], k1=1)
    np.testing.assert_allclose(sims, [0.9, 0.1, 0.0])  # image 1 was not among the top 1: untouched
    cbgm_rescore(sims, segments, lambda k: feats[k], E[0], E[1][None], k1=3)
    np.testing.assert_allclose(sims, [0.9, 0.99, 0.0])


def test_query_context_excludes_the_query_box_and_weak_detections():
    boxes = np.array([[0, 0, 10, 20], [1, 1, 11, 21], [30, 0, 40, 20], [50, 0, 60, 20], [70, 0, 80, 20]], float)
    scores = np.array([0.99, 0.9, 0.6, 0.8, 0.3])
    emb = np.arange(5)[:, None] * np.ones((1, 2))
    context = query_context(boxes, scores, emb, boxes[0], det_thresh=0.5, k2=3)
    np.testing.assert_array_equal(context[:, 0], [3, 2])  # overlapping and weak ones dropped, by score, k2-1


def test_evaluate_search_with_context_fixes_a_ranking():
    gallery = [("a.jpg", np.array([0, 0, 10, 20.0])), ("b.jpg", None)]
    detections = {"a.jpg": np.array([[0, 0, 10, 20, 0.9], [20, 0, 30, 20, 0.9]]),
                  "b.jpg": np.array([[0, 0, 10, 20, 0.9]])}
    feats = {"a.jpg": np.array([0.6 * E[0] + 0.8 * E[2], 0.95 * E[1]]), "b.jpg": np.array([0.7 * E[0] + 0.7 * E[3]])}
    plain = evaluate_search(E[:1], [gallery], detections, feats)
    rescored = evaluate_search(E[:1], [gallery], detections, feats, query_context=[E[1][None]])
    assert plain["top1"] == 0.0 and rescored["top1"] == 1.0 and rescored["mAP"] > plain["mAP"]
