"""AlignedReID: the model's local branch, the global/local triplet losses, mutual learning terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from personsearch.distance import local_distance, paired_local_distance
from personsearch.distance import pairwise_distance
from personsearch.losses import TripletLoss
from personsearch.losses.aligned import aligned_triplet_losses
from personsearch.losses.mutual import (
    mutual_distance_loss,
    mutual_losses,
    mutual_probability_loss,
)
from personsearch.models.aligned import AlignedReidModel, build_aligned_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- model


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenetv2"])
@pytest.mark.parametrize("size", [(128, 64), (256, 128)])
def test_model_shapes_train_and_eval(backbone, size):
    torch.manual_seed(0)
    model = build_aligned_model(backbone, num_classes=5, img_size=size)
    assert isinstance(model, AlignedReidModel) and model.stripes == 8 and model.local_dim == 128
    x = torch.randn(2, 3, *size)
    out = model.train()(x)
    dim = model.embed_dim
    assert out["global"].shape == out["embedding"].shape == (2, dim)
    assert out["logits"].shape == (2, 5)
    assert out["local"].shape == (2, 8, 128)
    assert (out["local"] >= 0).all()
    model.eval()
    with torch.no_grad():
        emb = model(x)
        glob, local = model.embed_with_local(x)
    assert emb.shape == glob.shape == (2, dim)
    torch.testing.assert_close(glob, emb)
    assert local.shape == (2, 8, 128) and (local >= 0).all()


@pytest.mark.parametrize(("backbone", "last_stride", "stripes", "pooling"),
                         [("resnet18", 2, 6, "max"), ("vit_tiny", 1, 4, "avg")])
def test_model_stripes_any_map_height(backbone, last_stride, stripes, pooling):
    """4x2 maps (stride 32 at 128x64) with 6 stripes, ViT token grids; max stripe pooling."""
    model = build_aligned_model(backbone, 3, stripes=stripes, local_dim=16, last_stride=last_stride,
                                local_pooling=pooling, img_size=(128, 64))
    out = model.train()(torch.randn(2, 3, 128, 64))
    assert out["local"].shape == (2, stripes, 16) and (out["local"] >= 0).all()
    with torch.no_grad():
        _, local = model.eval().embed_with_local(torch.randn(3, 3, 128, 64))
    assert local.shape == (3, stripes, 16)


def test_model_rejects_bad_local_pooling():
    with pytest.raises(ValueError, match="local pooling"):
        build_aligned_model("resnet18", 3, local_pooling="gem")


# ---------------------------------------------------------------- aligned triplet losses

# 1-d global features: per anchor the hard pairs are obvious; local features swap the order within
# each identity, so local distances (monotone in |l_a - l_b| for constant stripes) mine other pairs.
LABELS = torch.tensor([0, 0, 0, 1, 1, 1])
GLOBAL = torch.tensor([0.0, 1.0, 3.0, 4.0, 6.0, 10.0]).unsqueeze(1)
LOCAL_VALUES = torch.tensor([0.0, 3.0, 1.0, 10.0, 6.0, 4.0]) * 0.2


def _local_feats(h: int = 3, c: int = 2) -> torch.Tensor:
    return LOCAL_VALUES.view(-1, 1, 1).expand(-1, h, c).clone()


def _brute_force_hard_pairs(dist: torch.Tensor, labels: torch.Tensor) -> tuple[list[int], list[int]]:
    """Per anchor: farthest other same-label sample and nearest other-label one (-1 if none)."""
    n = len(labels)
    ap = [max((j for j in range(n) if j != i and labels[j] == labels[i]), key=lambda j: dist[i, j].item(), default=-1)
          for i in range(n)]
    an = [min((j for j in range(n) if labels[j] != labels[i]), key=lambda j: dist[i, j].item(), default=-1)
          for i in range(n)]
    return ap, an


def _local_triplet(local: torch.Tensor, ap: list[int], an: list[int], margin: float) -> torch.Tensor:
    return F.relu(paired_local_distance(local, local[ap]) - paired_local_distance(local, local[an]) + margin).mean()


def test_local_loss_uses_the_global_hard_pairs_or_local_ones():
    local = _local_feats()
    g_ap, g_an = _brute_force_hard_pairs(pairwise_distance(GLOBAL, GLOBAL), LABELS)
    l_ap, l_an = _brute_force_hard_pairs(local_distance(local, local), LABELS)
    assert (g_ap[0], g_an[0]) == (2, 3) and (l_ap[0], l_an[0]) == (1, 5)  # the construction works
    margin = 5.0  # every hinge active: the loss is linear in the chosen pairs' distances
    by_global = aligned_triplet_losses(GLOBAL, local, LABELS, local_margin=margin)
    by_local = aligned_triplet_losses(GLOBAL, local, LABELS, local_margin=margin, mining="local")
    torch.testing.assert_close(by_global["local"], _local_triplet(local, g_ap, g_an, margin))
    torch.testing.assert_close(by_local["local"], _local_triplet(local, l_ap, l_an, margin))
    assert not torch.isclose(by_global["local"], by_local["local"])
    for out in (by_global, by_local):  # the global term is the plain batch-hard triplet either way
        torch.testing.assert_close(out["global"], TripletLoss(0.3)(GLOBAL, LABELS))


def test_gradients_reach_local_features_only_through_local_term():
    glob = GLOBAL.clone().requires_grad_(True)
    local = (_local_feats() + 0.01 * torch.randn(6, 3, 2)).requires_grad_(True)
    for mining in ("global", "local"):
        glob.grad = local.grad = None
        aligned_triplet_losses(glob, local, LABELS, mining=mining)["local"].backward()
        assert glob.grad is None  # mining indices carry no gradient
        assert local.grad is not None and torch.isfinite(local.grad).all() and local.grad.abs().sum() > 0


def test_anchors_without_positive_are_left_out():
    torch.manual_seed(0)
    glob, local = torch.randn(5, 4), torch.rand(5, 3, 2, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2])  # anchor 4 has no positive (but may be a hardest negative)
    out = aligned_triplet_losses(glob, local, labels, local_margin=10.0)
    ap, an = _brute_force_hard_pairs(pairwise_distance(glob, glob), labels)
    kept = local[:4]
    expected = F.relu(paired_local_distance(kept, local[ap[:4]]) - paired_local_distance(kept, local[an[:4]]) + 10.0)
    torch.testing.assert_close(out["local"], expected.mean())
    out["local"].backward()
    assert torch.isfinite(local.grad).all()
    alone = aligned_triplet_losses(glob, local, torch.arange(5))  # nobody has a positive
    assert alone["local"].item() == 0.0 and alone["local"].requires_grad


def test_bad_mining_rejected():
    with pytest.raises(ValueError, match="mining"):
        aligned_triplet_losses(GLOBAL, _local_feats(), LABELS, mining="both")


# ---------------------------------------------------------------- mutual learning


def _outputs(n_models: int, n: int = 6, k: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [{"logits": torch.randn(n, k, generator=gen, requires_grad=True),
             "global": torch.randn(n, 5, generator=gen, requires_grad=True),
             "local": torch.rand(n, 3, 2, generator=gen, requires_grad=True)} for _ in range(n_models)]


def test_probability_loss_direction_is_kl_partner_to_self():
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    p_a, p_b = a.softmax(1), b.softmax(1)
    expected = (p_b * (p_b.log() - p_a.log())).sum(1).mean()
    torch.testing.assert_close(mutual_probability_loss(a, b), expected)


def test_partner_gets_no_gradient():
    outs = _outputs(2)
    labels = torch.arange(6) // 2
    loss = sum(mutual_losses(outs, labels, use_local=True)[0].values())
    loss.backward()
    for key in ("logits", "global", "local"):
        assert outs[1][key].grad is None
        assert outs[0][key].grad is not None and outs[0][key].grad.abs().sum() > 0
        assert torch.isfinite(outs[0][key].grad).all()
    a, b = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    (mutual_probability_loss(a, b) + mutual_distance_loss(a, b)).backward()
    assert b.grad is None and a.grad is not None


def test_zero_when_models_agree():
    (base,) = _outputs(1)
    twin = {k: v.detach().clone().requires_grad_(True) for k, v in base.items()}
    for terms in mutual_losses([base, twin], torch.arange(6), use_local=True):
        assert set(terms) == {"probability", "global_distance", "local_distance"}
        for value in terms.values():
            assert abs(value.item()) < 1e-6


def test_three_models_sum_over_partners():
    outs = _outputs(3)
    losses = mutual_losses(outs, torch.arange(6), use_local=True)
    assert len(losses) == 3
    for i, terms in enumerate(losses):
        partners = [j for j in range(3) if j != i]
        prob = sum(mutual_probability_loss(outs[i]["logits"], outs[j]["logits"]) for j in partners)
        gd = [pairwise_distance(o["global"], o["global"], normalize=True) for o in outs]
        ld = [local_distance(o["local"], o["local"]) for o in outs]
        torch.testing.assert_close(terms["probability"], prob)
        torch.testing.assert_close(terms["global_distance"], sum(mutual_distance_loss(gd[i], gd[j]) for j in partners))
        torch.testing.assert_close(terms["local_distance"], sum(mutual_distance_loss(ld[i], ld[j]) for j in partners))
    no_local = mutual_losses([{k: o[k] for k in ("logits", "global")} for o in outs], torch.arange(6), use_local=False)
    assert all(set(t) == {"probability", "global_distance"} for t in no_local)
    with pytest.raises(ValueError, match="at least 2"):
        mutual_losses(outs[:1], torch.arange(6), use_local=False)


def test_mutual_distance_term_makes_two_models_agree():
    """Two free feature sets trained only on each other's distance matrices converge together."""
    outs = _outputs(2, n=8, seed=1)
    params = [o[k] for o in outs for k in ("global", "local")]
    opt = torch.optim.Adam(params, lr=0.02)

    def gap() -> tuple[float, float]:
        with torch.no_grad():
            g = [pairwise_distance(o["global"], o["global"], normalize=True) for o in outs]
            loc = [local_distance(o["local"], o["local"]) for o in outs]
            return mutual_distance_loss(*g).item(), mutual_distance_loss(*loc).item()

    start = gap()
    moved_from = [p.detach().clone() for p in params]
    for _ in range(150):
        opt.zero_grad()
        losses = mutual_losses([{k: o[k] for k in ("global", "local")} for o in outs], torch.arange(8), use_local=True)
        sum(t["global_distance"] + t["local_distance"] for t in losses).backward()
        opt.step()
    end = gap()
    assert end[0] < 0.05 * start[0] and end[1] < 0.05 * start[1], (start, end)
    assert all((p - q).abs().max() > 0.05 for p, q in zip(params, moved_from))  # both sides moved
