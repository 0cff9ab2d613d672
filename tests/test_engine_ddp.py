"""The engine under torchrun: 2 CPU processes (gloo) train the toy recipe in lockstep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

TOY = Path(__file__).parent / "engine_toy.py"

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")


def torchrun(out: Path, *args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 tests/engine_toy.py OUT --epochs 3 ARGS``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TOY), str(out), "--epochs", "3", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "run"
    proc = torchrun(out, "--tensorboard")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def load_ranks(out: Path) -> list[dict]:
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_ranks_end_identical_and_learn(ddp_run):
    r0, r1 = load_ranks(ddp_run)
    assert r0["state"].keys() == r1["state"].keys()
    for key in r0["state"]:  # parameters and BatchNorm buffers
        assert torch.equal(r0["state"][key], r1["state"][key]), key
    losses = [h["loss"] for h in r0["history"]]
    assert losses[-1] < 0.7 * losses[0]
    assert r0["metrics"]["acc"] > 0.8 and r1["metrics"] == r0["metrics"]  # eval result shared
    final = torch.load(ddp_run / "model_final.pt", weights_only=False)["model"]
    assert all(torch.equal(final[k], r0["state"][k]) for k in final)


def test_each_rank_sees_its_shard_and_only_rank0_evaluates(ddp_run):
    r0, r1 = load_ranks(ddp_run)
    # 256 samples / 2 ranks / batch 32 -> 4 iterations of 32 per rank and epoch
    assert r0["samples_seen"] == r1["samples_seen"] == 3 * 4 * 32
    assert (r0["eval_calls"], r1["eval_calls"]) == (1, 0)


def test_collective_helpers_under_ddp(ddp_run):
    for rank in load_ranks(ddp_run):
        c = rank["collectives"]
        assert torch.equal(c["gather"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]))  # sizes 1 and 2
        assert c["mean"] == 0.5 and torch.equal(c["mean_tensor"], torch.tensor([0.5, 2.0]))


def test_only_rank0_wrote_logs_and_checkpoints(ddp_run):
    records = [json.loads(line) for line in (ddp_run / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("step") for r in records] == [1, 3, 5, 7, 9, 11, None]  # log_every 2, 12 steps: no duplicates
    assert "eval" in records[-1]
    assert len(list((ddp_run / "tb").glob("events.out.tfevents.*"))) == 1
    ckpt = torch.load(ddp_run / "checkpoints" / "epoch_0003.pt", weights_only=False)
    assert ckpt["extra"]["saved_by_rank"] == 0 and ckpt["step"] == 12
    assert sorted(p.name for p in (ddp_run / "checkpoints").iterdir()) == ["epoch_0002.pt", "epoch_0003.pt",
                                                                           "last.json"]


@pytest.mark.slow
def test_killed_ddp_run_resumes_bit_exactly(ddp_run, tmp_path):
    out = tmp_path / "killed"
    assert torchrun(out, "--kill-at-step", "5").returncode != 0  # both ranks die mid-epoch 2
    assert sorted(p.name for p in (out / "checkpoints").glob("epoch_*.pt")) == ["epoch_0001.pt"]
    proc = torchrun(out, "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for got, want in zip(load_ranks(out), load_ranks(ddp_run)):
        for key in want["state"]:
            assert torch.equal(got["state"][key], want["state"][key]), key
