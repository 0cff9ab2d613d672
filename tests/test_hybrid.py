"""Hybrid pre-training: each sample type reaches only its losses (gradients checked), the alignment's
per-source statistics and formula, the mixed batches, and the plug-and-play checkpoint that
initialises nae / seqnet / dkd and two-step's ReID backbone through ``model.weights``."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from personsearch.data.crop_regions import CropRegionDataset
from personsearch.engine.checkpoint import read_weights
from personsearch.losses import moment_alignment, source_moments
from personsearch.methods.hybrid.data import MixedBatchSampler
from personsearch.methods.runs import build_recipe, load_recipe_config
from personsearch.methods.search_common.recipe import train_subset
from personsearch.methods.smoke import smoke_overrides, smoke_recipe
from personsearch.data.samplers import PKSampler

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DETECTION = ("loss_objectness", "loss_rpn_box_reg", "loss_proposal_cls", "loss_proposal_reg", "loss_box_reg",
             "loss_nae")
IDENTITY = ("loss_crop_oim", "loss_crop_triplet")


def _recipe(tiny_synth, tmp_path, *extra):
    cfg = load_recipe_config("hybrid_pretrain", [*smoke_overrides("hybrid_pretrain", tiny_synth, tmp_path, "cpu",
                                                                  "none"), *extra])
    return build_recipe(cfg, tmp_path)


def _grads(loss, tensors):
    grads = torch.autograd.grad(loss, tensors, retain_graph=True, allow_unused=True)
    return [0.0 if g is None else float(g.abs().sum()) for g in grads]


def test_each_sample_type_reaches_only_its_losses(tiny_synth, tmp_path):
    recipe = _recipe(tiny_synth, tmp_path)
    torch.manual_seed(0)
    model = recipe.build_model().train()
    images, targets = next(iter(recipe.build_train_loader(0, 1, 0)))
    regions = recipe.batches.next(torch.device("cpu"))
    images = [im.requires_grad_() for im in images]
    regions["images"] = [im.requires_grad_() for im in regions["images"]]
    losses = recipe.losses(model, images, targets, regions)
    assert set(losses) == {*DETECTION, *IDENTITY, "loss_align"}  # no identity loss from the scenes
    labeled = [im for im, pid in zip(regions["images"], regions["pids"]) if pid >= 0]
    people = [im for im, pid in zip(regions["images"], regions["pids"]) if pid < 0]  # cut from detection scenes
    assert labeled and people
    detection = sum(losses[k] for k in DETECTION)
    identity = sum(losses[k] for k in IDENTITY)
    # inputs: detection losses see the scenes only, identity losses the labeled crops only
    assert all(g > 0 for g in _grads(detection, images)) and not any(_grads(detection, regions["images"]))
    assert not any(_grads(identity, images)) and all(g > 0 for g in _grads(identity, labeled))
    assert all(g > 0 for g in _grads(losses["loss_align"], people)) and not any(_grads(losses["loss_align"], images))
    # people without identity: only the alignment (and OIM's queue) sees them. The one coupling is the
    # embedding head's BatchNorm1d batch statistics, shared by every region of a step (as the proposals
    # of a scene batch share them); with running statistics the identity losses give them exactly 0
    model.roi_heads.embedding_head.eval()
    again = recipe.losses(model, images, targets, regions)
    assert not any(_grads(sum(again[k] for k in IDENTITY), people))
    assert all(g > 0 for g in _grads(again["loss_align"], people))
    model.roi_heads.embedding_head.train()
    # parameters: identity losses never reach the RPN or SeqNet's detection head
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = dict(zip([n for n, _ in named], _grads(identity, [p for _, p in named])))
    detector_only = [n for n in grads if n.startswith(("rpn.", "roi_heads.box_head.", "roi_heads.box_predictor."))]
    assert detector_only and not any(grads[n] for n in detector_only)
    assert any(grads[n] > 0 for n in grads if n.startswith("trunk.")) and any(
        grads[n] > 0 for n in grads if n.startswith("roi_heads.reid_head."))
    # a scene-only step has exactly the detection losses
    only_scenes = recipe.losses(model, [im.detach() for im in images], targets, None)
    assert set(only_scenes) == set(DETECTION)


def test_alignment_statistics_per_source_and_formula():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 4, generator=gen)
    b = torch.randn(5, 4, generator=gen) * 2 + 1
    lone = torch.randn(1, 4, generator=gen)  # a single row: no standard deviation, left out
    feats = torch.cat([a, b, lone]).requires_grad_()
    sources = torch.tensor([0] * 6 + [3] * 5 + [4])
    stats = source_moments(feats, sources)
    assert set(stats) == {0, 3}
    for rows, source in ((a, 0), (b, 3)):
        mean, std = stats[source]
        np.testing.assert_allclose(mean.detach().numpy(), rows.numpy().mean(0), rtol=1e-5)
        np.testing.assert_allclose(std.detach().numpy(), np.sqrt(rows.numpy().var(0) + 1e-6), rtol=1e-5)
    mu = [a.mean(0), b.mean(0)]
    sd = [(a.var(0, unbiased=False) + 1e-6).sqrt(), (b.var(0, unbiased=False) + 1e-6).sqrt()]
    by_hand = sum(((m - (mu[0] + mu[1]) / 2) ** 2).sum() + ((s - (sd[0] + sd[1]) / 2) ** 2).sum()
                  for m, s in zip(mu, sd)) / 2
    loss = moment_alignment(feats, sources)
    assert torch.isclose(loss, by_hand, rtol=1e-5)
    # a gradient step on the alignment brings the two sources' moments together
    (grad,) = torch.autograd.grad(loss, feats)
    assert float(moment_alignment(feats.detach() - 0.5 * grad, sources)) < float(loss.detach())
    # sources in different groups are not aligned with each other; nothing to align = 0 with a graph
    apart = moment_alignment(feats, sources, groups={0: 0, 3: 1, 4: 1})
    assert float(apart.detach()) == 0.0 and apart.requires_grad
    assert float(moment_alignment(torch.cat([a, a]), torch.tensor([0] * 6 + [1] * 6))) < 1e-10


def test_sources_and_groups_follow_the_datasets(tiny_synth, tmp_path):
    recipe = _recipe(tiny_synth, tmp_path, f"data.unlabeled_root={tiny_synth / 'unlabeled'}", "data.batch.unlabeled=3")
    data = recipe.dataset
    assert data.groups("all") == {0: 0, 1: 0, 2: 0} and data.groups("task") == {0: 0, 1: 1, 2: 1}
    assert len(data.gallery) == round(0.1 * 30) and recipe.num_pids == data.reid[0].num_train_pids
    recipe.build_train_loader(0, 1, 0)
    batch = recipe.batches.next(torch.device("cpu"))
    sources, pids = batch["sources"].tolist(), batch["pids"].tolist()
    assert sources.count(1) == 8 and sources.count(0) == 4 and sources.count(2) == 3
    assert all((p >= 0) == (s == 1) for p, s in zip(pids, sources))  # identities on the ReID crops only


def test_mixed_batches_are_deterministic_and_split_across_ranks():
    pids = [i // 3 for i in range(60)]

    def batches(seed, rank, world, epoch=0):
        sampler = MixedBatchSampler(PKSampler(pids, 4, 2, seed=seed, rank=rank, world_size=world), 8,
                                    [(60, 10, 3)], seed, rank)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert batches(0, 0, 1) == batches(0, 0, 1) and batches(0, 0, 1) != batches(0, 0, 1, epoch=1)
    assert all(len(b) == 11 and all(60 <= i < 70 for i in b[8:]) for b in batches(0, 0, 1))
    first, second = ({i for b in batches(0, r, 2) for i in b[:8]} for r in (0, 1))
    assert not first & second  # DDP ranks draw disjoint PK batches


def test_crops_enter_as_scenes_or_pasted_into_scenes(tiny_synth):
    crops = sorted((tiny_synth / "market1501" / "bounding_box_train").glob("*.jpg"))[:2]
    scenes = sorted((tiny_synth / "detection" / "images").glob("*.jpg"))[:2]
    plain = CropRegionDataset(crops, [0, 1], 5, height=96, flip=0.0)
    region, box, pid, source, scale = plain[1]
    assert region.shape[1] == 96 and box.tolist() == [0, 0, region.shape[2], 96] and (pid, source, scale) == (1, 5, 1.0)
    torch.manual_seed(0)
    pasted, pbox, *_ = CropRegionDataset(crops, [0, 1], 5, height=96, mode="paste", backgrounds=scenes, context=1.5,
                                         flip=0.0)[1]
    assert pasted.shape[1] == round(96 * 1.5) and pasted.shape[2] == round(region.shape[2] * 1.5)
    x1, y1, x2, y2 = (int(v) for v in pbox.tolist())
    assert (y2 - y1, x2 - x1) == tuple(region.shape[1:]) and torch.equal(pasted[:, y1:y2, x1:x2], region)
    with pytest.raises(ValueError, match="background"):
        CropRegionDataset(crops, [0, 1], 0, height=96, mode="paste")


def test_train_fraction_is_a_fixed_subset_in_order():
    scenes = list(range(50))
    part = train_subset(scenes, 0.3, seed=0)
    assert len(part) == 15 and part == sorted(part) and part == train_subset(scenes, 0.3, seed=0)
    assert part != train_subset(scenes, 0.3, seed=1) and train_subset(scenes, 1.0, 0) == scenes
    assert len(train_subset(scenes, 0.001, 0)) == 1
    with pytest.raises(ValueError, match="train_fraction"):
        load_recipe_config("nae", ["data.train_fraction=0"])


@pytest.fixture(scope="module")
def pretrained(tiny_synth, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("hybrid") / "pretrained"
    smoke_recipe("hybrid_pretrain", tiny_synth, run, device="cpu")
    return run


@pytest.mark.parametrize("method", ["nae", "seqnet", "dkd"])
def test_checkpoint_initialises_person_search_recipes(method, pretrained, tiny_synth, tmp_path, caplog):
    source = read_weights(pretrained)
    overrides = smoke_overrides("seqnet", tiny_synth, tmp_path, "cpu", "none")
    weights = pretrained if method != "dkd" else pretrained / "model_final.pt"  # a run folder or its file
    cfg = load_recipe_config(method, [*overrides, f"model.weights={weights}"])
    with caplog.at_level(logging.WARNING, logger="personsearch.models"):
        model = build_recipe(cfg, tmp_path).build_model()
    state = model.state_dict()
    head2 = "roi_heads.reid_head." if method != "nae" else "roi_heads.box_head."  # NAE's head = SeqNet's head 2
    for key in ("trunk.3.conv.1.0.weight", "rpn.head.conv.0.0.weight", "roi_heads.embedding_head.rescaler.running_var",
                "roi_heads.box_regressor.linear.weight"):
        assert torch.equal(state[key], source[key]), key
    assert torch.equal(state[head2 + "blocks.15.conv.0.0.weight"], source["roi_heads.reid_head.blocks.15.conv.0.0.weight"])
    if method != "nae":
        assert torch.equal(state["roi_heads.box_predictor.cls_score.weight"],
                           source["roi_heads.box_predictor.cls_score.weight"])
    # the OIM memories are the fine-tuning data's (sizes differ), never copied; the log says so
    assert not torch.equal(state["roi_heads.oim.lut"], source["roi_heads.oim.lut"][: len(state["roi_heads.oim.lut"])])
    assert "skipped" in caplog.text and "roi_heads.oim (3)" in caplog.text


def test_checkpoint_initialises_the_two_step_reid_backbone(pretrained, tiny_synth, tmp_path, caplog):
    cfg = load_recipe_config("two_step", [f"data.root={tiny_synth / 'cuhk_sysu'}", f"model.weights={pretrained}"])
    with caplog.at_level(logging.WARNING, logger="personsearch.models"):
        model = build_recipe(cfg, tmp_path).build_model()
    source, features = read_weights(pretrained), model.reid.backbone.features
    assert torch.equal(features[0][0].weight, source["trunk.0.0.weight"])
    assert torch.equal(features[13].conv[1][1].running_mean, source["trunk.13.conv.1.1.running_mean"])
    assert torch.equal(features[16].conv[2].weight, source["roi_heads.reid_head.blocks.16.conv.2.weight"])
    assert "trunk + roi_heads.reid_head" in caplog.text and "roi_heads.oim (3)" in caplog.text


def test_a_checkpoint_of_another_backbone_is_refused(pretrained, tiny_synth, tmp_path):
    cfg = load_recipe_config("nae", [f"data.root={tiny_synth / 'cuhk_sysu'}", "model.backbone=resnet18",
                                     f"model.weights={pretrained}"])
    with pytest.raises(ValueError, match="another backbone"):
        build_recipe(cfg, tmp_path).build_model()


def test_subtask_domain_shifts_only_the_subtask_cameras(tiny_config, tmp_path):
    from personsearch.synthetic.config import SubtaskDomain, config_to_dict
    from personsearch.synthetic.generate import plan_all

    assert "subtask_domain" not in config_to_dict(tiny_config)  # neutral: the same synth.yaml bytes as before
    shifted = replace(tiny_config, subtask_domain=SubtaskDomain(tint=(1.2, 1.0, 0.8), brightness=0.9, blur=0.5))
    (crops, scenes), (crops2, scenes2) = plan_all(tiny_config, tmp_path), plan_all(shifted, tmp_path)
    assert [s.task for s in scenes["cuhk_sysu"]] == [s.task for s in scenes2["cuhk_sysu"]]
    assert [s.task for s in scenes["prw"]] == [s.task for s in scenes2["prw"]]
    for old, new in [(a.task, b.task) for a, b in zip(scenes["detection"], scenes2["detection"])] + list(zip(crops, crops2)):
        assert (old.path, old.seed) == (new.path, new.seed) and old.camera.seed == new.camera.seed
        assert np.allclose(np.array(new.camera.cast), np.array(old.camera.cast) * (1.2, 1.0, 0.8))
        assert np.isclose(new.camera.brightness, old.camera.brightness * 0.9)
