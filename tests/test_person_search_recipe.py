"""The NAE person search recipe is wired end to end: scenes -> losses -> detections -> protocol metrics."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from personsearch.methods.runs import build_recipe, load_recipe_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = "nae"


def test_recipe_trains_a_step_and_reports_every_protocol_metric(tiny_synth):
    cfg = load_recipe_config(CONFIG, [f"data.root={tiny_synth / 'cuhk_sysu'}", "data.workers=0", "data.batch_size=2",
                                      "data.min_size=160", "data.max_size=224", "model.weights=null"])
    recipe = build_recipe(cfg)
    torch.manual_seed(0)
    model = recipe.build_model().train()
    images, targets = next(iter(recipe.build_train_loader(0, 1, seed=0)))
    loss, logs = recipe.training_step(model, (images, targets), epoch=0)
    assert torch.isfinite(loss) and {"loss_oim", "loss_nae", "loss_objectness"} <= set(logs)
    loss.backward()
    recipe.dataset.gallery = recipe.dataset.gallery[:3]  # images left out of a gallery count as absent
    metrics = recipe.evaluate(model.eval())
    sizes = sorted(recipe.dataset.gallery_lists)
    expected = {"det_AP", "det_recall"} | {f"{k}@{n}" for n in sizes for k in ("mAP", "top1", "top5", "top10")}
    assert set(metrics) == expected
    assert all(0.0 <= v <= 1.0 and np.isfinite(v) for v in metrics.values())


def test_recipe_refuses_a_reid_dataset(tiny_synth):
    cfg = load_recipe_config(CONFIG, [f"data.root={tiny_synth / 'market1501'}", "data.format=market1501"])
    with pytest.raises(ValueError, match="not a person search dataset"):
        build_recipe(cfg).build_model()  # the data is read on first use
