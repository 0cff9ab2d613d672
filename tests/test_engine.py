"""The shared training engine: schedules, learning, AMP, NaN guard, checkpoints and exact resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine_toy import ToyRecipe  # noqa: E402

from personsearch.engine import (  # noqa: E402
    EngineConfig,
    all_gather_tensor,
    all_reduce_mean,
    build_optimizer,
    build_scheduler,
    get_rank,
    get_world_size,
    is_main_process,
    load_weights,
    lr_factor_fn,
    prepare_batch,
    train,
)
from personsearch.utils.config import merge_into  # noqa: E402

TOY = Path(__file__).parent / "engine_toy.py"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fast_cfg(**kw) -> EngineConfig:
    base = dict(epochs=3, lr=1e-2, schedule="constant", log_every=4, progress=False, tensorboard=False)
    return EngineConfig(**{**base, **kw})


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


# -- config and schedules -----------------------------------------------------------------------
def test_config_validates_and_merges_yaml_values():
    cfg = merge_into(EngineConfig(), {"milestones": [3, 5], "optimizer": "sgd", "grad_clip": 1.0})
    assert cfg.milestones == (3, 5) and cfg.optimizer == "sgd"
    with pytest.raises(ValueError, match="optimizer"):
        EngineConfig(optimizer="lamb")
    with pytest.raises(ValueError, match="amp"):
        merge_into(EngineConfig(), {"amp": "fp8"})


def test_warmup_is_linear_per_iteration_then_multistep_drops_at_milestones():
    cfg = EngineConfig(epochs=10, milestones=(4, 7), gamma=0.1, warmup_epochs=2, warmup_factor=0.01)
    f = lr_factor_fn(cfg, iters_per_epoch=5)
    assert f(0) == pytest.approx(0.01)
    assert f(5) == pytest.approx(0.01 + 0.99 * 5 / 10)
    assert f(9) == pytest.approx(0.01 + 0.99 * 9 / 10)
    assert f(10) == pytest.approx(1.0) and f(19) == pytest.approx(1.0)
    assert f(20) == pytest.approx(0.1) and f(34) == pytest.approx(0.1)
    assert f(35) == pytest.approx(0.01) and f(49) == pytest.approx(0.01)


def test_cosine_endpoints_and_constant():
    cfg = EngineConfig(epochs=4, lr=0.1, schedule="cosine", min_lr=0.001)
    f = lr_factor_fn(cfg, iters_per_epoch=10)
    assert f(0) == pytest.approx(1.0)
    assert f(20) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(40) == pytest.approx(0.01)
    assert all(f(s) >= f(s + 1) for s in range(40))
    assert lr_factor_fn(EngineConfig(schedule="constant"), 10)(123) == 1.0


def test_scheduler_sets_group_lrs_per_iteration():
    cfg = EngineConfig(epochs=3, lr=0.5, optimizer="sgd", milestones=(1, 2), gamma=0.5)
    w = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer([{"params": [w]}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}], cfg)
    sched = build_scheduler(opt, cfg, iters_per_epoch=4)
    seen = []
    for _ in range(12):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen[3] == pytest.approx([0.5, 0.1]) and seen[4] == pytest.approx([0.25, 0.05])
    assert seen[8] == pytest.approx([0.125, 0.025])


# -- training -----------------------------------------------------------------------------------
def test_toy_learns_and_writes_run_files(tmp_path):
    cfg = fast_cfg(epochs=4, tensorboard=True, keep_checkpoints=2, eval_every=2)
    result = train(ToyRecipe(), cfg, tmp_path)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.metrics["acc"] > 0.8  # chance is 0.25
    assert [("eval" in h) for h in result.history] == [False, True, False, True]
    assert not result.model.training
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*.pt"))
    assert ckpts == ["epoch_0003.pt", "epoch_0004.pt"]
    assert json.loads((tmp_path / "checkpoints" / "last.json").read_text())["file"] == "epoch_0004.pt"
    assert result.last_checkpoint == tmp_path / "checkpoints" / "epoch_0004.pt"
    ckpt = torch.load(result.last_checkpoint, weights_only=False)
    assert ckpt["epoch"] == 4 and ckpt["step"] == 32 and ckpt["config"]["epochs"] == 4
    assert ckpt["extra"] == {"saved_by_rank": 0, "steps": 32}
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_recs = [r for r in records if "step" in r]
    assert [r["step"] for r in train_recs] == list(range(3, 32, 4))
    assert {"epoch", "iter", "step", "lr", "loss", "acc", "time"} <= train_recs[0].keys()
    assert [r["epoch"] for r in records if "eval" in r] == [1, 3]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    fresh = ToyRecipe().build_model()
    meta = load_weights(fresh, tmp_path)["meta"]
    assert meta["metrics"] == result.metrics
    assert_same_state(fresh.state_dict(), result.model.state_dict())


def test_bf16_autocast_on_cpu_learns_with_channels_last(tmp_path):
    result = train(ToyRecipe(image=True), fast_cfg(amp="bf16", channels_last=True), tmp_path)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0] and result.metrics["acc"] > 0.6
    assert result.model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        train(ToyRecipe(), fast_cfg(amp="fp16", device="cpu"), tmp_path)


@pytest.mark.parametrize("step, epoch, it", [(5, 0, 5), (12, 1, 4)])
def test_nan_loss_stops_naming_epoch_and_iteration(tmp_path, step, epoch, it):
    with pytest.raises(FloatingPointError, match=f"epoch {epoch}, iteration {it} "):
        train(ToyRecipe(nan_at_step=step), fast_cfg(), tmp_path)
    assert not (tmp_path / "model_final.pt").exists()


def test_grad_clip_bounds_the_update_norm(tmp_path):
    recipe = ToyRecipe(n=32, batch_size=32)  # one iteration
    torch.manual_seed(0)
    cfg = fast_cfg(epochs=1, optimizer="sgd", momentum=0.0, weight_decay=0.0, lr=1.0, grad_clip=0.01, seed=3)
    start = {k: v.detach().clone() for k, v in recipe_model_at_init(recipe, cfg).items()}
    end = train(recipe, cfg, tmp_path).model.named_parameters()
    delta = torch.sqrt(sum(((p.detach() - start[k]) ** 2).sum() for k, p in end))
    assert delta == pytest.approx(0.01, rel=1e-3)


def recipe_model_at_init(recipe: ToyRecipe, cfg: EngineConfig) -> dict:
    from personsearch.engine import seed_everything

    seed_everything(cfg.seed)  # the engine seeds before build_model, so this is the same init
    return dict(recipe.build_model().named_parameters())


def test_prepare_batch_moves_nested_tensors_and_sets_channels_last():
    batch = {"img": torch.rand(2, 3, 8, 8), "pair": (torch.rand(2, 3, 4, 4), [torch.zeros(2, 3, 4, 4, dtype=torch.uint8)]),
             "name": "x"}
    out = prepare_batch(batch, torch.device("cpu"), channels_last=True)
    assert out["img"].is_contiguous(memory_format=torch.channels_last)
    assert out["pair"][0].is_contiguous(memory_format=torch.channels_last) and isinstance(out["pair"], tuple)
    assert out["pair"][1][0].is_contiguous() and out["name"] == "x"


def test_collectives_are_identities_in_a_single_process():
    t = torch.arange(6.0).view(3, 2)
    assert get_rank() == 0 and get_world_size() == 1 and is_main_process()
    assert all_gather_tensor(t) is t and all_reduce_mean(t) is t and all_reduce_mean(2.5) == 2.5


# -- checkpoints and resume ---------------------------------------------------------------------
def test_resume_without_checkpoint_starts_fresh_and_fresh_run_refuses_old_checkpoints(tmp_path, caplog):
    with caplog.at_level("INFO", logger="personsearch.engine"):
        train(ToyRecipe(), fast_cfg(epochs=1), tmp_path, resume=True)
    assert "starting fresh" in caplog.text
    with pytest.raises(FileExistsError, match="resume=True"):
        train(ToyRecipe(), fast_cfg(epochs=1), tmp_path)


def test_corrupt_newest_checkpoint_is_skipped_with_a_warning(tmp_path):
    reference = train(ToyRecipe(), fast_cfg(epochs=2, keep_checkpoints=3), tmp_path / "ref")
    ckpts = tmp_path / "ref" / "checkpoints"
    newest = ckpts / "epoch_0002.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    (ckpts / "epoch_0003.pt").write_bytes(os.urandom(2048))  # garbage
    with pytest.warns(RuntimeWarning, match="epoch_0003.pt cannot be loaded") as record:
        resumed = train(ToyRecipe(), fast_cfg(epochs=2, keep_checkpoints=3), tmp_path / "ref", resume=True)
    assert any("epoch_0002.pt cannot be loaded" in str(w.message) for w in record)
    assert resumed.history[0] == reference.history[0] and len(resumed.history) == 2
    assert_same_state(resumed.model.state_dict(), reference.model.state_dict())
    assert sorted(p.name for p in ckpts.iterdir() if p.suffix == ".corrupt") == ["epoch_0002.pt.corrupt",
                                                                                 "epoch_0003.pt.corrupt"]


def test_checkpoint_of_another_model_names_the_mismatched_keys(tmp_path):
    train(ToyRecipe(hidden=32), fast_cfg(epochs=1), tmp_path)
    with pytest.raises(ValueError, match=r"shape mismatch.*0\.weight: \(32, 16\) vs model \(64, 16\)"):
        train(ToyRecipe(hidden=64), fast_cfg(epochs=2), tmp_path, resume=True)


def run_toy(out: Path, *args: str) -> int:
    """engine_toy.py in a fresh interpreter (same thread count for every run: bitwise comparable).
    Output goes to a file, not a pipe: orphaned DataLoader workers of a killed run keep pipes open."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(out.parent / f"{out.name}.log", "ab") as log:
        return subprocess.run([sys.executable, str(TOY), str(out), "--workers", "2", *args],
                              env=env, stdout=log, stderr=subprocess.STDOUT, timeout=120).returncode


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "straight"
    assert run_toy(out, "--epochs", "3") == 0, (out.parent / "straight.log").read_text()
    return out


# 8 iterations/epoch: killed mid-epoch 2, or right after epoch_0001.pt (slow: the in-process
# corrupt-checkpoint test above also resumes from an epoch boundary)
@pytest.mark.parametrize("kill_at_step", [13, pytest.param(8, marks=pytest.mark.slow)])
def test_killed_run_resumes_bit_exactly(tmp_path, straight_run, kill_at_step):
    out = tmp_path / "killed"
    assert run_toy(out, "--epochs", "3", "--kill-at-step", str(kill_at_step)) == -9
    assert sorted(p.name for p in (out / "checkpoints").glob("epoch_*.pt")) == ["epoch_0001.pt"]
    assert run_toy(out, "--epochs", "3", "--resume") == 0, (tmp_path / "killed.log").read_text()
    final, ref = (torch.load(d / "model_final.pt", weights_only=False) for d in (out, straight_run))
    assert_same_state(final["model"], ref["model"])
    assert_same_state(final["aux"]["teacher"], ref["aux"]["teacher"])  # the EMA teacher resumed exactly too
    teachers = [torch.load(d / "rank0.pt", weights_only=False)["teacher"] for d in (out, straight_run)]
    assert_same_state(*teachers)
    got, want = (torch.load(d / "rank0.pt", weights_only=False)["history"] for d in (out, straight_run))
    assert [(h["loss"], h["lr"], h.get("eval")) for h in got] == [(h["loss"], h["lr"], h.get("eval")) for h in want]
    steps = [json.loads(line).get("step") for line in (out / "metrics.jsonl").read_text().splitlines()]
    ref_steps = [json.loads(line).get("step") for line in (straight_run / "metrics.jsonl").read_text().splitlines()]
    assert steps == ref_steps  # rewound: no duplicated stretch from the killed epoch
    assert math.isfinite(final["meta"]["metrics"]["acc"])


def test_checkpoint_every_and_extending_a_finished_run(tmp_path):
    first = train(ToyRecipe(), fast_cfg(epochs=3, checkpoint_every=2, keep_checkpoints=0), tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*.pt")) == ["epoch_0002.pt", "epoch_0003.pt"]
    more = train(ToyRecipe(), fast_cfg(epochs=4, checkpoint_every=2, keep_checkpoints=0), tmp_path, resume=True)
    assert [h["epoch"] for h in more.history] == [0, 1, 2, 3] and more.history[:3] == first.history
    assert (tmp_path / "checkpoints" / "epoch_0004.pt").is_file()


# -- the recipe contract: hooks, schedules, auxiliary modules --------------------------------------
def test_hooks_run_in_order_with_the_schedules_values(tmp_path):
    recipe = ToyRecipe(ema=True)
    cfg = fast_cfg(epochs=2, optimizer="adamw", weight_decay=0.04, weight_decay_end=0.4, ema_momentum=0.9)
    result = train(recipe, cfg, tmp_path)
    steps = 8  # 256 samples / batch 32
    expected = [("on_train_start",)]
    for epoch in range(2):
        expected += [("on_epoch_start", epoch)] + [("after_step", epoch * steps + i) for i in range(steps)]
        expected += [("on_epoch_end", epoch)]
    assert recipe.calls == expected
    assert recipe.device == torch.device("cpu") and (recipe.rank, recipe.world_size) == (0, 1)
    momenta = [info.ema_momentum for info in recipe.infos]
    decays = [info.weight_decay for info in recipe.infos]
    assert momenta[0] == pytest.approx(0.9) and momenta == sorted(momenta) and momenta[-1] < 1.0
    assert decays[0] == pytest.approx(0.04) and decays == sorted(decays) and decays[-1] < 0.4
    assert recipe.infos[-1].total_steps == 2 * steps
    # the optimizer really used the schedule: its groups hold the value for the step after the last
    from personsearch.engine import weight_decay_factor_fn

    saved = torch.load(tmp_path / "checkpoints" / "epoch_0002.pt", weights_only=False)["optimizer"]
    expected_wd = 0.04 * weight_decay_factor_fn(cfg, steps)(2 * steps)
    assert saved["param_groups"][0]["weight_decay"] == pytest.approx(expected_wd)
    assert result.model is recipe.student


def test_ema_teacher_follows_the_student_stays_out_of_the_optimizer_and_is_checkpointed(tmp_path):
    recipe = ToyRecipe(ema=True)
    start = {k: v.clone() for k, v in recipe.build_model().state_dict().items()}
    recipe = ToyRecipe(ema=True)
    train(recipe, fast_cfg(epochs=2, ema_momentum=0.5), tmp_path)
    teacher, student = recipe.teacher.net.state_dict(), recipe.student.state_dict()
    weight = "0.weight"
    assert not torch.equal(teacher[weight], student[weight])  # an average, not a copy
    assert not torch.equal(teacher[weight], start[weight])  # it moved
    assert all(not p.requires_grad for p in recipe.teacher.parameters())
    saved = torch.load(tmp_path / "checkpoints" / "epoch_0002.pt", weights_only=False)
    assert_same_state(saved["aux"]["teacher"], recipe.teacher.state_dict())
    again = ToyRecipe(ema=True)  # a finished run resumed: the teacher comes back from the checkpoint
    train(again, fast_cfg(epochs=2, ema_momentum=0.5), tmp_path, resume=True)
    assert_same_state(again.teacher.state_dict(), recipe.teacher.state_dict())


def test_auxiliary_parameters_in_the_optimizer_are_refused(tmp_path):
    class Greedy(ToyRecipe):
        def param_groups(self, model):
            return [{"params": list(model.parameters()) + list(self.teacher.parameters())}]

    with pytest.raises(ValueError, match="auxiliary module 'teacher'"):
        train(Greedy(ema=True), fast_cfg(epochs=1), tmp_path)


def test_a_misspelt_hook_fails_when_the_recipe_is_defined():
    with pytest.raises(TypeError, match="after_setp looks like an engine hook"):
        class Typo(ToyRecipe):  # noqa: F841 - defining it is the test
            def after_setp(self, model, info):
                pass


def test_train_refuses_objects_that_are_not_recipes(tmp_path):
    class Duck:
        def build_model(self):
            return torch.nn.Linear(2, 2)

    with pytest.raises(TypeError, match="Recipe subclass"):
        train(Duck(), fast_cfg(epochs=1), tmp_path)


def test_max_iters_per_epoch_caps_every_epoch_and_the_schedule(tmp_path):
    recipe = ToyRecipe()
    result = train(recipe, fast_cfg(epochs=2, max_iters_per_epoch=3), tmp_path)
    assert recipe.steps == 6 and [h["step"] for h in result.history] == [3, 6]
    assert recipe.infos[-1].total_steps == 6


def test_weight_decay_and_ema_schedules_are_cosine_between_their_ends():
    from personsearch.engine import cosine_value, ema_momentum_fn, weight_decay_factor_fn

    cfg = fast_cfg(epochs=4, weight_decay=0.04, weight_decay_end=0.4, ema_momentum=0.996)
    wd, ema = weight_decay_factor_fn(cfg, 10), ema_momentum_fn(cfg, 10)
    assert wd(0) == pytest.approx(1.0) and wd(40) == pytest.approx(10.0) and wd(20) == pytest.approx(5.5)
    assert ema(0) == pytest.approx(0.996) and ema(40) == pytest.approx(1.0) and ema(1000) == pytest.approx(1.0)
    assert weight_decay_factor_fn(fast_cfg(), 10)(7) == 1.0
    assert cosine_value(2.0, 0.0, 5, 10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="ema_momentum"):
        fast_cfg(ema_momentum=1.5)
