"""evaluate_reid equals the per-query torchreid reference loop, ties included, and refuses bad input.

The fast path ranks positives by counting (no argsort); rows where a positive ties with a kept
negative are redone with np.argsort, so the tie order is numpy's and results match the reference to
rounding (CMC exactly). Problems cover many exact ties, duplicated gallery columns, queries without
positives, distractors (pid 0) / junk (pid -1) in the gallery, same-camera removal, float32 / float64
/ integer distances, trained-like rows (few candidates) and random rows, one thread or several.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import personsearch.evaluation.reid as reid_module
from personsearch.evaluation import evaluate_reid
from reference_reid import reference_market_eval

EXACT = 1e-12


def _random_problem(rng, num_q, num_g, num_pids, num_cams, integer_dist, dtype=np.float32):
    q_pids = rng.integers(0, num_pids, num_q)
    g_pids = rng.integers(0, num_pids, num_g)
    q_cams = rng.integers(0, num_cams, num_q)
    g_cams = rng.integers(0, num_cams, num_g)
    if integer_dist:  # many exact ties
        dist = rng.integers(0, 5, (num_q, num_g)).astype(dtype)
    else:
        dist = rng.random((num_q, num_g)).astype(dtype)
    return dist, q_pids, g_pids, q_cams, g_cams


def _hard_problem(rng, num_q, num_g, dtype, levels, trained):
    """Market-like pids (-1 junk and 0 distractors in the gallery), duplicated gallery columns,
    queries with no gallery pid or only same-camera matches, distances rounded to ``levels`` values
    (0: not rounded); ``trained`` puts positives near the top (few candidates per row)."""
    num_pids = max(2, num_g // 12)
    g_pids = rng.integers(-1, num_pids, num_g)
    g_cams = rng.integers(0, 4, num_g)
    q_pids = rng.integers(0, num_pids + 3, num_q)  # some pids absent from the gallery
    q_cams = rng.integers(0, 4, num_q)
    dist = rng.random((num_q, num_g))
    if trained:
        dist = np.where(q_pids[:, None] == g_pids[None, :], dist * 0.05, dist)
    if levels:
        dist = np.round(dist * levels) / levels
    dup = rng.choice(num_g, num_g // 5, replace=False)  # the same image twice, or another pid at that distance
    src = rng.choice(num_g, len(dup))
    dist[:, dup] = dist[:, src]
    same_image = rng.random(len(dup)) < 0.5
    g_pids[dup[same_image]], g_cams[dup[same_image]] = g_pids[src[same_image]], g_cams[src[same_image]]
    only_same_cam = g_pids == q_pids[0]  # query 0: its positives are all removed
    g_cams[only_same_cam] = q_cams[0]
    return dist.astype(dtype), q_pids, g_pids, q_cams, g_cams


def _reference(problem, max_rank):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reference_market_eval(*problem, max_rank=max_rank)


def _assert_matches(result, ref, tol=EXACT):
    ref_cmc, ref_map, ref_inp = ref
    assert np.array_equal(result.cmc, ref_cmc)  # counts / valid queries: exact
    assert result.mAP == pytest.approx(ref_map, abs=tol, rel=0)
    assert result.mINP == pytest.approx(ref_inp, abs=tol, rel=0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("integer_dist", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_reference_loop(seed, integer_dist, threads, monkeypatch):
    rng = np.random.default_rng(seed)
    problem = _random_problem(rng, int(rng.integers(1, 60)), int(rng.integers(5, 300)),
                              int(rng.integers(2, 12)), int(rng.integers(1, 4)), integer_dist)
    ref = _reference(problem, 20)
    # a tiny chunk forces many chunks on several threads: results must not depend on chunking
    monkeypatch.setattr(reid_module, "CHUNK_ELEMENTS", 97)
    if np.isnan(ref[1]):
        with pytest.raises(ValueError, match="no valid query"):
            evaluate_reid(*problem, max_rank=20, threads=threads)
        return
    _assert_matches(evaluate_reid(*problem, max_rank=20, threads=threads), ref)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("levels", [0, 7, 1000])
@pytest.mark.parametrize("trained", [False, True])
def test_matches_reference_on_hard_problems(seed, dtype, levels, trained, monkeypatch):
    rng = np.random.default_rng(100 + seed)
    problem = _hard_problem(rng, 40, int(rng.integers(200, 2500)), dtype, levels, trained)
    ref = _reference(problem, 50)
    monkeypatch.setattr(reid_module, "CHUNK_ELEMENTS", 7 * problem[0].shape[1])  # chunks of 7 rows
    one = evaluate_reid(*problem, threads=1)
    two = evaluate_reid(*problem, threads=2)
    _assert_matches(one, ref)
    assert (one.mAP, one.mINP, one.cmc.tolist()) == (two.mAP, two.mINP, two.cmc.tolist())  # bit-identical
    assert one.num_valid_queries < 40  # query 0 (only same-camera matches) at least is excluded


def test_ties_use_numpys_argsort_order(monkeypatch):
    # a positive tied with kept negatives: its rank depends on np.argsort's (unstable) order
    rng = np.random.default_rng(7)
    problem = _hard_problem(rng, 30, 1500, np.float32, 3, False)
    calls = []
    real = reid_module._argsort_stats
    monkeypatch.setattr(reid_module, "_argsort_stats", lambda d, *a: calls.append(len(d)) or real(d, *a))
    _assert_matches(evaluate_reid(*problem), _reference(problem, 50))
    assert sum(calls) > 0
    stable = np.argsort(problem[0], axis=1, kind="stable")
    assert not np.array_equal(stable, np.argsort(problem[0], axis=1))  # so the order is really exercised


def test_integer_and_float16_distances():
    rng = np.random.default_rng(11)
    dist, *ids = _hard_problem(rng, 25, 400, np.float64, 9, False)
    for d in ((dist * 9).astype(np.int64), dist.astype(np.float16), np.asfortranarray(dist.astype(np.float32))):
        _assert_matches(evaluate_reid(d, *ids), _reference((d, *ids), 50))


def test_market_size_rows_trained_and_random():
    rng = np.random.default_rng(12)
    for trained in (False, True):
        problem = _hard_problem(rng, 6, 15913, np.float32, 0, trained)
        _assert_matches(evaluate_reid(*problem), _reference(problem, 50))


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
    (lambda a: {**a, "max_rank": 0}, "max_rank"),
    (lambda a: {**a, "max_rank": 0, "distmat": np.full((2, 3), np.inf)}, "NaN or inf"),
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


@pytest.mark.parametrize("trained", [False, True])
@pytest.mark.parametrize("where", ["positive", "other", "row_without_positive"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_anywhere_is_refused(trained, where, bad):
    rng = np.random.default_rng(13)
    dist, q_pids, g_pids, q_cams, g_cams = _hard_problem(rng, 12, 300, np.float32, 0, trained)
    row = 0 if where == "row_without_positive" else 5  # query 0 has no positive (see _hard_problem)
    same = np.flatnonzero((g_pids == q_pids[row]) & (g_cams != q_cams[row]))
    col = same[0] if where == "positive" else int(np.flatnonzero(g_pids != q_pids[row])[-1])
    dist[row, col] = bad
    with pytest.raises(ValueError, match=rf"NaN or inf \(first at index \({row}, {col}\)\)"):
        evaluate_reid(dist, q_pids, g_pids, q_cams, g_cams, threads=2)


def test_benchmark_runs_and_agrees_with_the_plain_loop(capsys):
    spec = importlib.util.spec_from_file_location(
        "eval_reid_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "eval_reid.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--queries", "40", "--gallery", "500", "--repeats", "1", "--reference-queries", "10"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == out
    for case in (out, out["trained_like"]):
        assert case["max_abs_diff_vs_plain_loop"] <= EXACT
        assert case["max_abs_diff_vs_torchreid_on_subset"] <= EXACT
        assert case["ours_s"] >= 0 and case["plain_loop_s"] >= 0 and case["mAP"] > 0
