"""The distance kernel: one definition per metric name, and every caller uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from personsearch.distance import METRICS, check_metric, distance_matrix, pairwise_distance
from personsearch.evaluation.rerank import re_ranking, re_ranking_features
from personsearch.losses import TripletLoss, hard_example_mining, triplet_from_distances
from personsearch.losses.mutual import mutual_distance_loss, mutual_losses

RNG = np.random.default_rng(0)
A, B = RNG.normal(size=(6, 5)).astype(np.float32), RNG.normal(size=(9, 5)).astype(np.float32)


def brute(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    if metric == "cosine":
        na, nb = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
        return 1 - na @ nb.T
    sq = ((a[:, None] - b[None]) ** 2).sum(-1)
    return sq if metric == "sql2" else np.sqrt(sq)


@pytest.mark.parametrize("metric", METRICS)
def test_each_metric_means_its_definition_in_torch_and_numpy(metric):
    want = brute(A, B, metric)
    np.testing.assert_allclose(pairwise_distance(torch.from_numpy(A), torch.from_numpy(B), metric).numpy(), want,
                               atol=1e-5)
    np.testing.assert_allclose(distance_matrix(A, B, metric), want, atol=1e-5)
    np.testing.assert_allclose(distance_matrix(A, B, metric, chunk=2), want, atol=1e-5)


def test_normalize_gives_the_distances_of_unit_vectors():
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(distance_matrix(A, B, "l2", normalize=True), brute(unit(A), unit(B), "l2"), atol=1e-5)
    # AlignedReID's global part of global+local: L2 of unit vectors = sqrt(2 * cosine distance)
    np.testing.assert_allclose(distance_matrix(A, B, "l2", normalize=True),
                               np.sqrt(2 * brute(A, B, "cosine")), atol=1e-5)


def test_old_ambiguous_name_is_refused_with_the_two_choices():
    with pytest.raises(ValueError, match=r"loss.metric = 'euclidean'.*'l2'.*'sql2'"):
        check_metric("euclidean", "loss.metric")
    from personsearch.methods.reid_common.config import ReidEvalConfig, ReidLossConfig

    with pytest.raises(ValueError, match="eval.metric"):
        ReidEvalConfig(metric="euclidean")
    with pytest.raises(ValueError, match="loss.metric"):
        ReidLossConfig(metric="manhattan")


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="gallery features have dimension 4"):
        distance_matrix(A, B[:, :4])
    bad = A.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"query features contains NaN or inf \(first at index \(2, 1\)\)"):
        distance_matrix(bad, B)
    with pytest.raises(ValueError, match="at least one row"):
        distance_matrix(A[:0], B)


@pytest.mark.parametrize("metric", METRICS)
def test_triplet_loss_mines_on_the_kernel_distance(metric):
    feats, labels = torch.from_numpy(A), torch.tensor([0, 0, 1, 1, 2, 2])
    dist = torch.from_numpy(brute(A, A, metric)).float()
    ap, an, i_ap, i_an = hard_example_mining(dist, labels)
    want = triplet_from_distances(ap, an, 0.3, valid=(i_ap >= 0) & (i_an >= 0))
    torch.testing.assert_close(TripletLoss(0.3, metric=metric)(feats, labels), want, atol=1e-5, rtol=1e-5)


def test_re_ranking_from_features_equals_re_ranking_of_kernel_matrices():
    for metric in METRICS:
        blocks = (distance_matrix(A, B, metric), distance_matrix(A, A, metric), distance_matrix(B, B, metric))
        np.testing.assert_allclose(re_ranking_features(A, B, k1=4, k2=2, metric=metric),
                                   re_ranking(*blocks, k1=4, k2=2), atol=1e-5)


def test_mutual_learning_compares_kernel_distance_matrices():
    outs = [{"global": torch.randn(6, 5), "logits": torch.randn(6, 3)} for _ in range(2)]
    for metric, normalize in (("l2", True), ("sql2", False), ("cosine", False)):
        terms = mutual_losses(outs, torch.arange(6), use_local=False, metric=metric, normalize=normalize)
        d = [pairwise_distance(o["global"], o["global"], metric, normalize=normalize) for o in outs]
        torch.testing.assert_close(terms[0]["global_distance"], mutual_distance_loss(d[0], d[1]))
