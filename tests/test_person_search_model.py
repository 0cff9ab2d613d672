"""PersonSearchModel (C4 Faster R-CNN + NAE or SeqNet heads + OIM) at CPU-test sizes: shapes, losses,
the query path against the gallery path, SeqNet's sequential heads, BatchNorm folding, overfitting."""

from __future__ import annotations

import pytest
import torch

from personsearch.losses import OIMLoss
from personsearch.models.search import LOSS_KEYS, PersonSearchModel, build_person_search_model
from personsearch.models.search.heads import NormAwareEmbedding

pytestmark = pytest.mark.usefixtures("two_torch_threads")

H, W = 224, 160
# identity -> (top colour, bottom colour) of its rectangle "person"
COLOURS = {0: ((0.9, 0.1, 0.1), (0.1, 0.1, 0.9)), 1: ((0.1, 0.8, 0.1), (0.9, 0.9, 0.1))}


def _small_model(backbone: str, seed: int = 0, head: str = "nae") -> PersonSearchModel:
    torch.manual_seed(seed)
    return build_person_search_model(
        backbone,
        OIMLoss(256, 2, 8),
        head=head,
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


@pytest.mark.parametrize("backbone,head", [("resnet18", "nae"), ("mobilenetv2", "nae"), ("mobilenetv2", "seqnet")])
def test_train_and_eval_forward(backbone: str, head: str) -> None:
    model = _small_model(backbone, head=head)
    images, targets = _batch()
    model.train()
    losses = model(images, targets)
    assert isinstance(losses, dict) and set(losses) == set(LOSS_KEYS[head])
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


def test_norm_aware_embedding_projects_each_input_to_its_share() -> None:
    head = NormAwareEmbedding([12, 20], dim=6).eval()
    res4, res5 = torch.randn(4, 12), torch.randn(4, 20)
    identity, logits = head([res4, res5])
    assert identity.shape == (4, 6) and logits.shape == (4,)
    assert [p[0].out_features for p in head.projections] == [3, 3]
    assert torch.allclose(identity.norm(dim=1), torch.ones(4), atol=1e-5)
    changed, _ = head([res4, res5 + 1])  # both inputs count
    assert not torch.allclose(changed[:, 3:], identity[:, 3:])
    with pytest.raises(ValueError, match="expected 2 feature vectors"):
        head([res4])


def _no_regression(model: PersonSearchModel) -> None:
    """Make every box regressor output zero deltas: output boxes = the boxes the RoIs were pooled on."""
    heads = model.roi_heads
    heads.box_regressor.forward = lambda x: x.new_zeros((len(x), 4))
    if hasattr(heads, "reid_head"):  # SeqNet's head 1
        torch.nn.init.zeros_(heads.box_predictor.bbox_pred.weight)
        torch.nn.init.zeros_(heads.box_predictor.bbox_pred.bias)


@pytest.mark.parametrize("head", ["nae", "seqnet"])
def test_query_path_gives_the_gallery_embedding_of_the_same_box(head: str) -> None:
    """A query box embedded through ``extract_query`` equals, up to the score factor, the gallery
    embedding the model outputs when it detects exactly that box."""
    model = _small_model("mobilenetv2", seed=4, head=head).eval()
    _no_regression(model)
    model.roi_heads.score_thresh, model.roi_heads.nms_thresh = -1.0, 1.0
    images, targets = _batch()
    boxes = targets[1]["boxes"]
    with torch.no_grad():
        image_list, scaled = model.transform(images[1:], [{"boxes": boxes}])
        features = {"feat_res4": model.trunk(image_list.tensors)}
        gallery = model.roi_heads.detect(features, [scaled[0]["boxes"]], image_list.image_sizes)[0]
        query = model.extract_query(images[1:], [boxes])[0]
    scale = image_list.image_sizes[0][0] / H
    for box, emb in zip(gallery["boxes"], gallery["embeddings"]):
        k = int(torch.argmin((scaled[0]["boxes"] - box).abs().sum(1)))
        torch.testing.assert_close(box / scale, boxes[k], atol=1e-3, rtol=0)
        torch.testing.assert_close(emb / emb.norm(), query[k], atol=1e-4, rtol=1e-4)
    assert len(gallery["boxes"]) == len(boxes)


def test_seqnet_second_head_has_its_own_res5_and_does_not_train_the_first() -> None:
    model = _small_model("mobilenetv2", head="seqnet").train()
    heads = model.roi_heads
    first = {id(p) for p in heads.box_head.parameters()}
    assert first and not first & {id(p) for p in heads.reid_head.parameters()}
    images, targets = _batch()
    losses = model(images, targets)
    (losses["loss_oim"] + losses["loss_nae"] + losses["loss_box_reg"]).backward()
    assert all(p.grad is None for p in heads.box_predictor.parameters())  # head 2 sees detached boxes
    assert all(p.grad is None for p in heads.box_head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in heads.reid_head.parameters())


def test_seqnet_embeds_the_first_heads_boxes_at_test() -> None:
    model = _small_model("mobilenetv2", head="seqnet").eval()
    _no_regression(model)
    seen = []
    original = model.roi_heads.second
    model.roi_heads.second = lambda feats, boxes, shapes: (seen.append([b.clone() for b in boxes]), original(feats, boxes, shapes))[1]
    images, _ = _batch()
    with torch.no_grad():
        out = model(images[:1])[0]
    assert len(seen) == 1 and len(seen[0][0]) >= len(out["boxes"])  # head-1 detections, then NMS 0.5


@pytest.mark.parametrize("head", ["nae", "seqnet"])
def test_folding_frozen_batchnorm_keeps_the_outputs(head: str) -> None:
    from torchvision.ops.misc import FrozenBatchNorm2d

    from personsearch.models.search import fold_frozen_batchnorm

    torch.manual_seed(0)
    model = build_person_search_model("mobilenetv2", OIMLoss(256, 2, 8), head=head, weights="imagenet",
                                      min_size=W, max_size=H, rpn_post_nms_top_n=(64, 32),
                                      detections_per_img=10, box_score_thresh=0.0).eval()
    folded = fold_frozen_batchnorm(model)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())  # the original is untouched
    images, targets = _batch()
    with torch.no_grad():
        a, b = model(images[:1])[0], folded(images[:1])[0]
        qa, qb = (m.extract_query(images[:1], [targets[0]["boxes"]])[0] for m in (model, folded))
    torch.testing.assert_close(qa, qb, atol=1e-4, rtol=1e-4)
    assert a["boxes"].shape == b["boxes"].shape
    torch.testing.assert_close(a["scores"], b["scores"], atol=1e-4, rtol=1e-4)


def test_frozen_batchnorm_with_weights_flag() -> None:
    from torchvision.ops.misc import FrozenBatchNorm2d

    model = build_person_search_model("resnet18", OIMLoss(256, 2, 8), head="seqnet", min_size=W, max_size=H,
                                      freeze_bn=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.trunk.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.roi_heads.box_head.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.roi_heads.reid_head.modules())


@pytest.mark.parametrize("head", ["nae", "seqnet"])
def test_tiny_overfit_lowers_total_loss(head: str) -> None:
    model = _small_model("mobilenetv2", seed=3, head=head).train()
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
