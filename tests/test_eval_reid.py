"""evaluate_reid agrees with the per-query reference to 1e-6, ties included, and refuses bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from personsearch.evaluation import evaluate_reid
from reference_reid import reference_market_eval


def _random_problem(rng, num_q, num_g, num_pids, num_cams, integer_dist):
    q_pids = rng.integers(0, num_pids, num_q)
    g_pids = rng.integers(0, num_pids, num_g)
    q_cams = rng.integers(0, num_cams, num_q)
    g_cams = rng.integers(0, num_cams, num_g)
    if integer_dist:  # many exact ties
        dist = rng.integers(0, 5, (num_q, num_g)).astype(np.float32)
    else:
        dist = rng.random((num_q, num_g)).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("integer_dist", [False, True])
def test_matches_reference_loop(seed, integer_dist, monkeypatch):
    rng = np.random.default_rng(seed)
    problem = _random_problem(rng, int(rng.integers(1, 60)), int(rng.integers(5, 300)),
                              int(rng.integers(2, 12)), int(rng.integers(1, 4)), integer_dist)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_cmc, ref_map, ref_inp = reference_market_eval(*problem, max_rank=20)
    # a tiny chunk forces many chunks on several threads: results must not depend on chunking
    monkeypatch.setattr("personsearch.evaluation.reid.CHUNK_ELEMENTS", 97)
    if np.isnan(ref_map):
        with pytest.raises(ValueError, match="no valid query"):
            evaluate_reid(*problem, max_rank=20)
        return
    result = evaluate_reid(*problem, max_rank=20)
    np.testing.assert_allclose(result.cmc, ref_cmc, atol=1e-6)
    assert result.mAP == pytest.approx(ref_map, abs=1e-6)
    assert result.mINP == pytest.approx(ref_inp, abs=1e-6)


def test_hand_computed_example():
    # one query (pid 1, cam 0); gallery ordered by distance: [same cam same pid (removed), neg, pos, neg, pos]
    dist = np.array([[0.0, 0.1, 0.2, 0.3, 0.4]])
    g_pids = np.array([1, 2, 1, 3, 1])
    g_cams = np.array([0, 1, 1, 1, 2])
    result = evaluate_reid(dist, np.array([1]), g_pids, np.array([0]), g_cams, max_rank=4)
    # kept list: neg, pos, neg, pos -> positives at 0-based 1 and 3
    assert result.cmc.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert result.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result.mINP == pytest.approx(2 / 4)
    assert result.as_dict()["rank1"] == 0.0


def test_max_rank_is_capped_at_gallery_size():
    result = evaluate_reid(np.array([[0.5, 0.1]]), [1], [1, 2], [0], [1, 1], max_rank=50)
    assert len(result.cmc) == 2


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "distmat": np.zeros((2, 0))}, "empty"),
    (lambda a: {**a, "g_pids": a["g_pids"][:-1]}, "g_pids"),
    (lambda a: {**a, "q_camids": a["q_camids"][:1]}, "q_camids"),
    (lambda a: {**a, "distmat": np.where(np.eye(2, 3) > 0, np.nan, a["distmat"])}, "NaN"),
    (lambda a: {**a, "distmat": a["distmat"][0]}, "2 dimension"),
])
def test_bad_input_is_refused_with_a_clear_message(change, message):
    args = {"distmat": np.ones((2, 3)), "q_pids": np.array([1, 2]), "g_pids": np.array([1, 2, 3]),
            "q_camids": np.array([0, 0]), "g_camids": np.array([1, 1, 1])}
    with pytest.raises(ValueError, match=message):
        evaluate_reid(**change(args))


def test_no_valid_query_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="no valid query"):
        evaluate_reid(np.ones((1, 2)), [1], [1, 2], [0], [0, 1])


def _single_shot_reference(dist, q_pids, g_pids, q_cams, g_cams, max_rank, repeats, rng):
    """The reference loop of the CUHK03 single-shot CMC (with a seeded generator)."""
    total, valid = np.zeros(max_rank), 0
    for qi in range(len(dist)):
        order = np.argsort(dist[qi])
        keep = ~((g_pids[order] == q_pids[qi]) & (g_cams[order] == q_cams[qi]))
        raw = (g_pids[order][keep] == q_pids[qi]).astype(int)
        if not raw.any():
            continue
        valid += 1
        groups = {}
        for idx, pid in enumerate(g_pids[order][keep]):
            groups.setdefault(pid, []).append(idx)
        for _ in range(repeats):
            mask = np.zeros(len(raw), bool)
            for idxs in groups.values():
                mask[rng.choice(idxs)] = True
            cmc = raw[mask].cumsum()
            cmc[cmc > 1] = 1
            padded = np.ones(max_rank)
            padded[:min(max_rank, len(cmc))] = cmc[:max_rank]
            total += padded
    return total / (valid * repeats)


def test_cuhk03_single_shot_matches_reference_in_expectation():
    from personsearch.evaluation.reid_cuhk03 import evaluate_reid_cuhk03

    rng = np.random.default_rng(3)
    dist, q_pids, g_pids, q_cams, g_cams = _random_problem(rng, 12, 60, 8, 2, False)
    ours = evaluate_reid_cuhk03(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10, repeats=400, seed=1)
    ref = _single_shot_reference(dist, q_pids, g_pids, q_cams, g_cams, 10, 400, np.random.default_rng(2))
    np.testing.assert_allclose(ours.cmc, ref, atol=0.03)
    market = evaluate_reid(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    assert ours.mAP == market.mAP  # AP uses the full list
    assert (ours.cmc >= market.cmc - 1e-12).all()  # one image per identity can only move positives up


def test_cuhk03_equals_market_when_each_identity_has_one_gallery_image():
    from personsearch.evaluation.reid_cuhk03 import evaluate_reid_cuhk03

    rng = np.random.default_rng(5)
    g_pids = np.arange(30)
    q_pids = rng.integers(0, 30, 10)
    dist = rng.random((10, 30))
    args = (dist, q_pids, g_pids, np.zeros(10, int), np.ones(30, int))
    np.testing.assert_allclose(evaluate_reid_cuhk03(*args, max_rank=10).cmc, evaluate_reid(*args, max_rank=10).cmc)
