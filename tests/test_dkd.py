"""DKD as a recipe: a frozen crop ReID teacher from its run folder, the student learns from it, and
the trained run is a plain student run (no teacher at inference)."""

from __future__ import annotations

import pytest
import torch

from personsearch.engine import train
from personsearch.engine.checkpoint import read_weights
from personsearch.methods.runs import build_recipe, load_recipe_config, load_run, save_run_config
from personsearch.methods.smoke import smoke_overrides, smoke_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher_run(tiny_synth, tmp_path_factory):
    run = tmp_path_factory.mktemp("dkd") / "teacher"
    smoke_recipe("two_step", tiny_synth, run, device="cpu")
    return run


def _dkd_config(tiny_synth, work, teacher, *extra):
    overrides = [o for o in smoke_overrides("dkd", tiny_synth, work, "cpu", "none") if not o.startswith("teacher=")]
    return load_recipe_config("dkd", [*overrides, f"teacher={teacher}", "engine.max_iters_per_epoch=3", *extra])


def test_the_student_learns_from_a_frozen_teacher_and_its_run_is_a_student_run(tiny_synth, tmp_path, teacher_run):
    cfg = _dkd_config(tiny_synth, tmp_path, teacher_run)
    run = tmp_path / "dkd"
    run.mkdir()
    save_run_config(run, cfg)
    recipe = build_recipe(cfg, run)
    torch.manual_seed(0)
    result = train(recipe, cfg.engine, run)
    logged = result.history[-1]
    assert {"loss_kd_prob", "loss_kd_pair", "loss_kd_triplet", "loss_crop_oim"} <= set(logged)
    assert all(logged[k] > 0 for k in ("loss_kd_prob", "loss_kd_pair", "loss_kd_triplet"))
    # the teacher is exactly its run's ReID model, untouched by training
    theirs = {k.removeprefix("reid."): v for k, v in read_weights(teacher_run).items() if k.startswith("reid.")}
    ours = recipe.teacher.reid.state_dict()
    assert set(ours) == set(theirs) and all(torch.equal(ours[k].cpu(), theirs[k]) for k in ours)
    assert not any(p.requires_grad for p in recipe.teacher.parameters()) and not recipe.teacher.training
    # the run holds the student only and loads as a SeqNet model without the teacher
    saved = read_weights(run)
    assert not any(k.startswith("teacher") for k in saved) and "roi_heads.oim.lut" in saved
    _, reloaded, model = load_run(run, need_data=False)
    assert "teacher" not in vars(reloaded)  # never loaded for inference
    assert reloaded.inference(model).scene_model is not None


def test_teacher_problems_are_named_errors(tiny_synth, tmp_path, teacher_run):
    cfg = _dkd_config(tiny_synth, tmp_path, "\"\"")
    with pytest.raises(ValueError, match="no teacher run given"):
        build_recipe(cfg, tmp_path).teacher
    other = tiny_synth / "prw"
    cfg = _dkd_config(tiny_synth, tmp_path, teacher_run, f"data.root={other}", "data.format=prw")
    with pytest.raises(ValueError, match="identit"):
        build_recipe(cfg, tmp_path).teacher
    cfg = _dkd_config(tiny_synth, tmp_path, teacher_run, "data.identity_batch.p=0")
    with pytest.raises(ValueError, match="identity_batch.p"):
        build_recipe(cfg, tmp_path).auxiliary_modules()
    cfg = _dkd_config(tiny_synth, tmp_path, teacher_run, "distill.teacher_logits=softmax")
    with pytest.raises(ValueError, match="teacher_logits"):
        build_recipe(cfg, tmp_path).auxiliary_modules()


def test_cosine_teacher_logits_are_the_oim_form_of_its_classifier():
    """Teacher logits on the student's scale: scalar x cos(feature, class weight), hand-computed."""
    from personsearch.methods.dkd.teacher import CropTeacher

    classifier = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        classifier.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 5.0], [1.0, 1.0]]))
    teacher = CropTeacher(torch.nn.Identity(), (8, 4), classifier)
    feats = torch.tensor([[3.0, 4.0]])
    got = teacher.cosine_logits(feats, 30.0)
    expected = 30.0 * torch.tensor([[0.6, 0.8, 7.0 / 5.0 / 2.0**0.5]])
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="classifier"):
        CropTeacher(torch.nn.Identity(), (8, 4), None).cosine_logits(feats, 30.0)
