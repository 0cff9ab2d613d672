"""Distances, batch-hard mining and the triplet loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from personsearch.distance import pairwise_distance
from personsearch.losses import TripletLoss, hard_example_mining

# Six points on a line, identities 0 and 1 (hand-mined below).
LINE = torch.tensor([0.0, 1.0, 3.0, 4.0, 6.0, 10.0]).unsqueeze(1)
LINE_IDS = torch.tensor([0, 0, 0, 1, 1, 1])
LINE_AP = ([3.0, 2.0, 3.0, 6.0, 4.0, 6.0], [2, 2, 0, 5, 5, 3])  # farthest positive (distance, index)
LINE_AN = ([4.0, 3.0, 1.0, 1.0, 3.0, 7.0], [3, 3, 3, 2, 2, 2])  # nearest negative


def test_pairwise_distance_metrics():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 7, generator=g), torch.randn(4, 7, generator=g)
    torch.testing.assert_close(pairwise_distance(x, y), torch.cdist(x, y), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pairwise_distance(x, y, "sql2"), torch.cdist(x, y) ** 2, atol=1e-4, rtol=1e-5)
    cos = F.cosine_similarity(x.unsqueeze(1), y.unsqueeze(0), dim=2)
    torch.testing.assert_close(pairwise_distance(x, y, "cosine"), 1 - cos, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="manhattan"):
        pairwise_distance(x, y, "manhattan")


def test_euclidean_gradient_finite_at_zero_distance():
    x = torch.randn(3, 4, requires_grad=True)
    pairwise_distance(x, x).sum().backward()  # diagonal is 0: the clamp keeps sqrt's gradient finite
    assert torch.isfinite(x.grad).all()


def test_hard_example_mining_hand_built():
    dist = pairwise_distance(LINE, LINE)
    dist_ap, dist_an, idx_ap, idx_an = hard_example_mining(dist, LINE_IDS)
    torch.testing.assert_close(dist_ap, torch.tensor(LINE_AP[0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(dist_an, torch.tensor(LINE_AN[0]), atol=1e-4, rtol=0)
    assert idx_ap.tolist() == LINE_AP[1]
    assert idx_an.tolist() == LINE_AN[1]


def test_hard_example_mining_matches_loop_reference():
    g = torch.Generator().manual_seed(1)
    x, ids = torch.randn(24, 8, generator=g), torch.randint(0, 5, (24,), generator=g)
    dist = pairwise_distance(x, x)
    dist_ap, dist_an, idx_ap, idx_an = hard_example_mining(dist, ids)
    for i in range(24):
        pos = [j for j in range(24) if ids[j] == ids[i] and j != i]
        neg = [j for j in range(24) if ids[j] != ids[i]]
        if pos:
            j = max(pos, key=lambda j: dist[i, j].item())
            assert idx_ap[i] == j and dist_ap[i] == dist[i, j]
        else:
            assert idx_ap[i] == -1 and dist_ap[i] == 0
        j = min(neg, key=lambda j: dist[i, j].item())
        assert idx_an[i] == j and dist_an[i] == dist[i, j]


def test_hard_example_mining_rejects_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        hard_example_mining(torch.zeros(3, 4), torch.zeros(3))


def test_triplet_loss_hand_computed():
    gaps = torch.tensor(LINE_AP[0]) - torch.tensor(LINE_AN[0])  # [-1, -1, 2, 5, 1, -1]
    hinge = TripletLoss(margin=0.3)(LINE, LINE_IDS)
    assert hinge.item() == pytest.approx((2.3 + 5.3 + 1.3) / 6, abs=1e-4)
    soft = TripletLoss(margin=None)(LINE, LINE_IDS)
    assert soft.item() == pytest.approx(F.softplus(gaps).mean().item(), abs=1e-4)
    assert soft.item() == pytest.approx(sum(torch.log1p(torch.exp(gaps)).tolist()) / 6, abs=1e-4)


def test_triplet_loss_skips_anchors_without_positive_or_negative():
    x = torch.tensor([[0.0], [1.0], [5.0]], requires_grad=True)
    # anchor 2 is a singleton and is left out: hinge terms relu(1 - 5 + 3.5) = 0 and relu(1 - 4 + 3.5) = 0.5,
    # averaged over 2 anchors (0.5 / 3 if the singleton were counted)
    loss = TripletLoss(margin=3.5)(x, torch.tensor([0, 0, 1]))
    assert loss.item() == pytest.approx(0.5 / 2, abs=1e-4)
    for ids in ([0, 1, 2], [0, 0, 0]):  # no positives at all / no negatives at all
        loss = TripletLoss()(x, torch.tensor(ids))
        assert loss.item() == 0.0 and loss.requires_grad
        loss.backward()


def test_triplet_loss_gradient_flows():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 16, generator=g, requires_grad=True)
    ids = torch.arange(4).repeat_interleave(2)
    for loss_fn in (TripletLoss(), TripletLoss(margin=None), TripletLoss(metric="cosine"), TripletLoss(normalize=True)):
        x.grad = None
        loss = loss_fn(x, ids)
        loss.backward()
        assert loss.item() > 0
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("margin", [0.3, None])
def test_triplet_optimisation_separates_identities(margin):
    torch.manual_seed(3)
    ids = torch.arange(4).repeat_interleave(4)  # P=4 identities x K=4
    emb = torch.nn.Parameter(torch.randn(16, 8))
    opt = torch.optim.Adam([emb], lr=0.05)
    loss_fn = TripletLoss(margin=margin)

    def separated() -> bool:
        dist_ap, dist_an, _, _ = hard_example_mining(pairwise_distance(emb, emb), ids)
        return bool((dist_ap < dist_an).all())

    assert not separated()
    for _ in range(50):
        opt.zero_grad()
        loss_fn(emb, ids).backward()
        opt.step()
    with torch.no_grad():
        assert separated()
