"""PersonSearchModel (C4 Faster R-CNN + NAE + OIM) at CPU-test sizes: shapes, losses, overfitting."""

from __future__ import annotations

import pytest
import torch

from personsearch.losses import OIMLoss
from personsearch.models.search import LOSS_KEYS, PersonSearchModel, build_person_search_model
from personsearch.models.search.heads import NormAwareEmbedding

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H, W = 224, 160
# identity -> (top colour, bottom colour) of its rectangle "person"
COLOURS = {0: ((0.9, 0.1, 0.1), (0.1, 0.1, 0.9)), 1: ((0.1, 0.8, 0.1), (0.9, 0.9, 0.1))}


def _small_model(backbone: str, seed: int = 0) -> PersonSearchModel:
    torch.manual_seed(seed)
    return build_person_search_model(
        backbone,
        OIMLoss(256, 2, 8),
        min_size=W,
        max_size=H,
        rpn_pre_nms_top_n=(300, 300),
        rpn_post_nms_top_n=(64, 32),
        box_batch_size_per_image=32,
        detections_per_img=10,
        box_score_thresh=0.0,
    )


def _scene(people: list[tuple[int, tuple[int, int]]], seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A noisy grey scene with one 50x110 two-colour rectangle per (pid, (x, y)); pid -1 = grey/white."""
    image = 0.5 + 0.05 * torch.randn(3, H, W, generator=torch.Generator().manual_seed(seed))
    boxes = []
    for pid, (x, y) in people:
        top, bottom = COLOURS.get(pid, ((0.8, 0.8, 0.8), (0.3, 0.3, 0.3)))
        image[:, y : y + 55, x : x + 50] = torch.tensor(top)[:, None, None]
        image[:, y + 55 : y + 110, x : x + 50] = torch.tensor(bottom)[:, None, None]
        boxes.append([x, y, x + 50, y + 110])
    target = {"boxes": torch.tensor(boxes, dtype=torch.float32), "pids": torch.tensor([p for p, _ in people])}
    return image.clamp(0, 1), target


def _batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    scenes = [
        _scene([(0, (10, 20)), (1, (90, 90))], seed=1),
        _scene([(1, (20, 100)), (0, (100, 10)), (-1, (60, 60))], seed=2),
    ]
    return [s[0] for s in scenes], [s[1] for s in scenes]


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenetv2"])
def test_train_and_eval_forward(backbone: str) -> None:
    model = _small_model(backbone)
    images, targets = _batch()
    model.train()
    losses = model(images, targets)
    assert isinstance(losses, dict) and set(losses) == set(LOSS_KEYS)
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and all(torch.isfinite(g).all() for g in grads)
    assert torch.count_nonzero(model.roi_heads.oim.lut.norm(dim=1)) == 2  # both identities stored

    model.eval()
    with torch.no_grad():
        detections = model(images)
        queries = model.extract_query(images, [t["boxes"] for t in targets])
    assert isinstance(detections, list) and len(detections) == 2
    for det in detections:
        n = det["boxes"].shape[0]
        assert 0 < n <= 10
        assert det["boxes"].shape == (n, 4) and det["scores"].shape == (n,) and det["embeddings"].shape == (n, 256)
        assert bool((det["boxes"][:, 2] <= W).all() and (det["boxes"][:, 3] <= H).all())  # input pixels
        norms = det["embeddings"].norm(dim=1)  # unit direction x person probability
        assert bool((norms > 0).all() and (norms <= 1 + 1e-5).all())
    assert [q.shape for q in queries] == [(2, 256), (3, 256)]
    assert torch.allclose(queries[1].norm(dim=1), torch.ones(3), atol=1e-5)


def test_extract_query_handles_images_without_boxes() -> None:
    model = _small_model("mobilenetv2").eval()
    images, targets = _batch()
    with torch.no_grad():
        queries = model.extract_query(images, [targets[0]["boxes"][:1], torch.zeros(0, 4)])
    assert [q.shape for q in queries] == [(1, 256), (0, 256)]


def test_training_needs_targets_and_matching_pids() -> None:
    model = _small_model("mobilenetv2").train()
    images, targets = _batch()
    with pytest.raises(ValueError):
        model(images)
    targets[0]["pids"] = targets[0]["pids"][:1]
    with pytest.raises(ValueError):
        model(images, targets)


def test_norm_aware_embedding() -> None:
    head = NormAwareEmbedding(12, dim=6).eval()
    features = torch.randn(4, 12)
    identity, logits = head(features)
    assert identity.shape == (4, 6) and logits.shape == (4,)
    assert torch.allclose(identity.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(head.inference(features), identity * torch.sigmoid(logits)[:, None])


def test_frozen_batchnorm_with_weights_flag() -> None:
    from torchvision.ops.misc import FrozenBatchNorm2d

    model = build_person_search_model("resnet18", OIMLoss(256, 2, 8), min_size=W, max_size=H, freeze_bn=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.trunk.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.roi_heads.box_head.modules())


def test_tiny_overfit_lowers_total_loss() -> None:
    model = _small_model("mobilenetv2", seed=3).train()
    images, targets = _batch()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.003, momentum=0.9)
    history = []
    for _ in range(30):
        total = sum(model(images, targets).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.7 * first, history
