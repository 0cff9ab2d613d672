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
