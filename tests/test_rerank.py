"""Sparse k-reciprocal re-ranking agrees with the dense reference to 1e-5 and refuses bad input.

Data are continuous (no exact ties straddling a top-k prefix, where argsort's tie order is arbitrary),
except the triplicated-features case, built so that every tie group fits wholly inside each prefix.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from personsearch.evaluation import evaluate_reid
from personsearch.evaluation import rerank, rerank_sparse
from personsearch.distance import distance_matrix
from personsearch.evaluation.rerank import re_ranking, re_ranking_features
from reference_rerank import reference_re_ranking

ATOL = 1e-5


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Force many chunks everywhere, so chunk boundaries are exercised on small problems."""
    monkeypatch.setattr(rerank, "BLOCK_ELEMENTS", 50)
    monkeypatch.setattr(rerank, "PAIR_BATCH", 7)
    monkeypatch.setattr(rerank_sparse, "ROW_CHUNK", 3)
    monkeypatch.setattr(rerank_sparse, "PAIR_CHUNK", 500)
    monkeypatch.setattr(rerank_sparse, "CELL_CHUNK", 40)


def _features(rng, num_q, num_g, dim=12, clusters=None):
    if clusters is None:
        return rng.normal(size=(num_q, dim)).astype(np.float32), rng.normal(size=(num_g, dim)).astype(np.float32)
    centers = rng.normal(size=(clusters, dim))
    f = centers[rng.integers(0, clusters, num_q + num_g)] + 0.3 * rng.normal(size=(num_q + num_g, dim))
    return f[:num_q].astype(np.float32), f[num_q:].astype(np.float32)


def _blocks(q, g, metric="sql2"):
    return distance_matrix(q, g, metric), distance_matrix(q, q, metric), distance_matrix(g, g, metric)


CASES = [  # (Q, G, k1, k2, lambda)
    (1, 30, 20, 6, 0.3),    # a single query
    (5, 8, 20, 6, 0.3),     # G < k1 and N < k1 + 1: the "top k1 + 1" is the whole row
    (3, 4, 20, 30, 0.3),    # k2 > N
    (20, 150, 20, 6, 0.3),
    (40, 200, 7, 3, 0.5),
    (15, 90, 5, 1, 0.3),    # k2 == 1: no query expansion
    (12, 80, 2, 25, 0.3),   # k2 > k1 + 1
    (30, 120, 1, 2, 0.3),   # k1 == 1: round(0.5) == 0, half-sets of one
    (10, 60, 20, 6, 0.0),   # pure Jaccard
    (10, 60, 20, 6, 1.0),   # pure original distance
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["features", "clustered", "asymmetric64"])
def test_matches_dense_reference(case, kind, tiny_chunks):
    num_q, num_g, k1, k2, lam = case
    rng = np.random.default_rng(num_q * 1000 + num_g)
    if kind == "asymmetric64":  # arbitrary non-symmetric float64 blocks: S's columns, not rows, matter
        qg, qq, gg = rng.random((num_q, num_g)), rng.random((num_q, num_q)), rng.random((num_g, num_g))
    else:
        qg, qq, gg = _blocks(*_features(rng, num_q, num_g, clusters=None if kind == "features" else 6))
    expected = reference_re_ranking(qg, qq, gg, k1, k2, lam)
    got = re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam)
    assert got.dtype == np.float32 and got.shape == (num_q, num_g)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_mixed_dtypes_and_torch_inputs():
    rng = np.random.default_rng(1)
    qg, qq, gg = _blocks(*_features(rng, 9, 70))
    expected = reference_re_ranking(qg.astype(np.float64), qq, gg.astype(np.float64))
    got = re_ranking(torch.from_numpy(qg).double(), torch.from_numpy(qq), gg.astype(np.float64))
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_triplicated_features_exact_ties():
    # every item three times: each row's sorted distances come in tied triples. With k1 = 5 the
    # prefixes are 6 and round(2.5) + 1 = 3, and k2 = 3, so no prefix splits a tie group: well defined.
    rng = np.random.default_rng(7)
    base = rng.normal(size=(25, 6))
    feats = np.repeat(base, 3, axis=0)[rng.permutation(75)]
    dist = ((feats[:, None, :] - feats[None, :, :]) ** 2).sum(-1)  # exactly equal for duplicates
    q, g = slice(0, 14), slice(14, 75)
    blocks = dist[q, g], dist[q, q], dist[g, g]
    expected = reference_re_ranking(*blocks, k1=5, k2=3)
    np.testing.assert_allclose(re_ranking(*blocks, k1=5, k2=3), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("metric", ["sql2", "cosine"])
@pytest.mark.parametrize("chunk", [None, 7, 64])
def test_features_entry_point_matches_matrices(metric, chunk, tiny_chunks):
    rng = np.random.default_rng(3)
    q, g = _features(rng, 23, 140, dim=20, clusters=12)
    blocks = _blocks(q, g, metric)
    got = re_ranking_features(q, g, k1=20, k2=6, lambda_value=0.3, metric=metric, chunk=chunk)
    np.testing.assert_allclose(got, re_ranking(*blocks), atol=ATOL, rtol=0)
    np.testing.assert_allclose(got, reference_re_ranking(*blocks), atol=ATOL, rtol=0)


@pytest.mark.parametrize("num_q, num_g, k1, k2, chunk", [(1, 6, 20, 6, 3), (2, 5, 3, 30, 2), (4, 30, 5, 1, 4)])
def test_features_entry_point_small_problems(num_q, num_g, k1, k2, chunk):
    # N below k1 + 1 and blocks narrower than the top-K lists
    q, g = _features(np.random.default_rng(num_q + num_g), num_q, num_g)
    got = re_ranking_features(q, g, k1=k1, k2=k2, chunk=chunk)
    np.testing.assert_allclose(got, reference_re_ranking(*_blocks(q, g), k1=k1, k2=k2), atol=ATOL, rtol=0)


def test_no_dense_n_by_n_allocation(monkeypatch):
    # numpy reports its buffers to tracemalloc: the peak must stay far below one N x N float32 array
    import tracemalloc

    monkeypatch.setattr(rerank, "BLOCK_ELEMENTS", 1_000_000)  # fixed-size buffers, shrunk so that
    monkeypatch.setattr(rerank_sparse, "ROW_CHUNK", 256)  # anything O(N^2) would stand out at N = 4000
    monkeypatch.setattr(rerank_sparse, "CELL_CHUNK", 100_000)
    monkeypatch.setattr(rerank_sparse, "PAIR_CHUNK", 100_000)
    rng = np.random.default_rng(8)
    qg, qq, gg = _blocks(*_features(rng, 300, 3700, dim=16, clusters=150))
    n = 4000
    tracemalloc.start()
    try:
        out = re_ranking(qg, qq, gg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < out.nbytes + 0.2 * n * n * 4, (peak, n * n * 4)


def test_pairwise_distance_definitions():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(7, 8))
    sq = ((a[:, None] - b[None]) ** 2).sum(-1)
    cos = 1 - (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    np.testing.assert_allclose(distance_matrix(a, b, "sql2"), sq, atol=1e-4)
    np.testing.assert_allclose(distance_matrix(a, b, "cosine", chunk=2), cos, atol=1e-5)


def test_lambda_one_is_the_normalised_original_distance():
    rng = np.random.default_rng(5)
    qg, qq, gg = _blocks(*_features(rng, 6, 40))
    colmax = np.maximum((qq.astype(np.float32) ** 2).max(0), (qg.astype(np.float32) ** 2).max(1))
    expected = (qg ** 2).astype(np.float32) / colmax[:, None]
    np.testing.assert_allclose(re_ranking(qg, qq, gg, lambda_value=1.0), expected, atol=1e-7, rtol=0)
    jac = re_ranking(qg, qq, gg, lambda_value=0.0)
    assert jac.min() >= 0 and jac.max() <= 1 and (jac < 1).any()


def _clustered_reid_problem(seed, num_ids=80, cams=4, per_cam=2, dim=32, noise=0.6, cam_scale=0.5):
    """Gaussian identity clusters plus a per-camera offset; one query per identity."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_ids, dim))
    offsets = cam_scale * rng.normal(size=(cams, dim))
    pids = np.repeat(np.arange(num_ids), cams * per_cam)
    camids = np.tile(np.repeat(np.arange(cams), per_cam), num_ids)
    feats = (centers[pids] + offsets[camids] + noise * rng.normal(size=(len(pids), dim))).astype(np.float32)
    is_query = np.zeros(len(pids), dtype=bool)
    is_query[[rng.choice(np.flatnonzero(pids == p)) for p in range(num_ids)]] = True
    return feats[is_query], pids[is_query], camids[is_query], feats[~is_query], pids[~is_query], camids[~is_query]


@pytest.mark.parametrize("seed", [0, 1])
def test_re_ranking_improves_map_on_clustered_embeddings(seed):
    qf, q_pids, q_cams, gf, g_pids, g_cams = _clustered_reid_problem(seed)
    qg = distance_matrix(qf, gf)
    before = evaluate_reid(qg, q_pids, g_pids, q_cams, g_cams).mAP
    after = evaluate_reid(re_ranking_features(qf, gf), q_pids, g_pids, q_cams, g_cams).mAP
    assert 0.6 < before < 0.92  # a problem with room to improve, not a solved or hopeless one
    assert after >= before + 0.08, (before, after)


# ----------------------------------------------------------------------------- errors
def _ok_blocks():
    rng = np.random.default_rng(0)
    return _blocks(*_features(rng, 4, 10))


@pytest.mark.parametrize("which, bad, name", [
    (0, np.zeros((4, 9)), "g_g_dist"),   # q_g says G = 9, g_g is 10 x 10
    (1, np.zeros((3, 3)), "q_q_dist"),
    (2, np.zeros((10, 11)), "g_g_dist"),
    (0, np.zeros(40), "q_g_dist"),
    (0, np.zeros((0, 10)), "q_g_dist"),
])
def test_shape_errors(which, bad, name):
    blocks = list(_ok_blocks())
    blocks[which] = bad
    with pytest.raises(ValueError, match=name):
        re_ranking(*blocks)


def test_empty_gallery():
    with pytest.raises(ValueError, match="q_g_dist is empty"):
        re_ranking(np.zeros((3, 0)), np.zeros((3, 3)), np.zeros((0, 0)))


@pytest.mark.parametrize("which, name", [(0, "q_g_dist"), (1, "q_q_dist"), (2, "g_g_dist")])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_distances(which, name, value):
    blocks = [b.copy() for b in _ok_blocks()]
    blocks[which][1, 2] = value
    with pytest.raises(ValueError, match=rf"{name} contains NaN or inf \(first at index \(1, 2\)\)"):
        re_ranking(*blocks)


def test_overflowing_and_all_zero_distances():
    qg, qq, gg = _ok_blocks()
    with pytest.raises(ValueError, match="overflows float32"):
        re_ranking(qg.astype(np.float64) * 1e30, qq, gg)
    with pytest.raises(ValueError, match="all distances of item 0"):
        re_ranking(np.zeros((1, 3)), np.zeros((1, 1)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="all distances of item"):
        re_ranking_features(np.ones((2, 4)), np.ones((3, 4)))


@pytest.mark.parametrize("kwargs, name", [
    ({"k1": 0}, "k1"), ({"k1": 2.5}, "k1"), ({"k1": True}, "k1"), ({"k2": 0}, "k2"), ({"k2": -3}, "k2"),
    ({"lambda_value": -0.1}, "lambda_value"), ({"lambda_value": 1.5}, "lambda_value"),
    ({"lambda_value": float("nan")}, "lambda_value"), ({"lambda_value": "x"}, "lambda_value"),
])
def test_parameter_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        re_ranking(*_ok_blocks(), **kwargs)
    q, g = _features(np.random.default_rng(0), 3, 5)
    with pytest.raises(ValueError, match=name):
        re_ranking_features(q, g, **kwargs)


def test_feature_errors():
    rng = np.random.default_rng(0)
    q, g = _features(rng, 3, 5, dim=8)
    with pytest.raises(ValueError, match="g_feats has feature dimension 7 but q_feats has 8"):
        re_ranking_features(q, g[:, :7])
    with pytest.raises(ValueError, match="need at least one row in q_feats"):
        re_ranking_features(q[:0], g)
    with pytest.raises(ValueError, match="q_feats must have 2"):
        re_ranking_features(q[0], g)
    bad = g.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"g_feats contains NaN or inf \(first at index \(4, 1\)\)"):
        re_ranking_features(q, bad)
    with pytest.raises(ValueError, match="metric"):
        re_ranking_features(q, g, metric="manhattan")
    with pytest.raises(ValueError, match="chunk"):
        re_ranking_features(q, g, chunk=0)
