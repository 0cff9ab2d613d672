"""OIM loss: memory update rules, labeled-only cross-entropy, and DDP-identical memories."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import personsearch.losses.oim as oim_module
from personsearch.losses.oim import BACKGROUND, OIMLoss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _unit(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_lut_update_rule_is_normalised_momentum_average() -> None:
    loss = OIMLoss(num_features=8, num_pids=3, num_cq=4, momentum=0.5)
    old = _unit(3, 8, seed=1)
    loss.lut.copy_(old)
    x = _unit(2, 8, seed=2)
    loss(x, torch.tensor([2, 0]))
    assert torch.allclose(loss.lut[2], F.normalize(0.5 * old[2] + 0.5 * x[0], dim=0), atol=1e-6)
    assert torch.allclose(loss.lut[0], F.normalize(0.5 * old[0] + 0.5 * x[1], dim=0), atol=1e-6)
    assert torch.equal(loss.lut[1], old[1])
    assert torch.count_nonzero(loss.cq) == 0  # labeled rows never enter the queue


def test_duplicate_pids_update_sequentially() -> None:
    loss = OIMLoss(num_features=4, num_pids=1, num_cq=0, momentum=0.5)
    x = _unit(2, 4, seed=3)
    loss(x, torch.tensor([0, 0]))
    expected = F.normalize(0.5 * F.normalize(0.5 * x[0], dim=0) + 0.5 * x[1], dim=0)
    assert torch.allclose(loss.lut[0], expected, atol=1e-6)


def test_circular_queue_wraps_around() -> None:
    loss = OIMLoss(num_features=4, num_pids=2, num_cq=5)
    first, second = _unit(3, 4, seed=4), _unit(4, 4, seed=5)
    loss(first, torch.full((3,), -1))
    assert int(loss.cq_pointer) == 3 and torch.equal(loss.cq[:3], first)
    loss(second, torch.full((4,), -1))
    assert int(loss.cq_pointer) == 2
    assert torch.equal(loss.cq[3:], second[:2]) and torch.equal(loss.cq[:2], second[2:])
    assert torch.equal(loss.cq[2], first[2])
    many = _unit(12, 4, seed=6)  # more than the queue holds: only the newest 5 survive
    loss(many, torch.full((12,), -1))
    assert int(loss.cq_pointer) == (2 + 12) % 5
    assert {tuple(r.tolist()) for r in loss.cq} == {tuple(r.tolist()) for r in many[-5:]}
    assert torch.equal(loss.cq[(2 + 12 - 1) % 5], many[-1])


def test_background_and_unlabeled_rows_give_no_loss() -> None:
    loss = OIMLoss(num_features=8, num_pids=4, num_cq=6, scalar=30.0)
    loss.lut.copy_(_unit(4, 8, seed=7))
    loss.cq.copy_(_unit(6, 8, seed=8))
    loss.eval()  # no memory update: compare against a manual computation
    x = _unit(5, 8, seed=9).requires_grad_()
    pids = torch.tensor([1, -1, BACKGROUND, 3, -7])
    value = loss(x, pids)
    logits = x[[0, 3]] @ torch.cat([loss.lut, loss.cq]).t() * 30.0
    assert torch.allclose(value, F.cross_entropy(logits, torch.tensor([1, 3])), atol=1e-5)
    value.backward()
    assert x.grad is not None and torch.count_nonzero(x.grad[[1, 2, 4]]) == 0
    none_labeled = loss(x, torch.tensor([-1, -2, -2, -1, -1]))
    assert none_labeled.item() == 0.0 and none_labeled.requires_grad


def test_loss_decreases_as_features_align_with_lut() -> None:
    loss = OIMLoss(num_features=16, num_pids=5, num_cq=10)
    pids = torch.arange(5)
    x = _unit(5, 16, seed=10)
    first, second = loss(x, pids).item(), loss(x, pids).item()  # after one update lut[pid] == x
    assert first == pytest.approx(math.log(15), rel=1e-5)  # empty memories: uniform logits
    assert second < 0.1 * first
    # gradient steps on the features (memories fixed) pull them towards their LUT rows
    loss.lut.copy_(_unit(5, 16, seed=13))
    loss.eval()
    raw = torch.randn(5, 16, generator=torch.Generator().manual_seed(14)).requires_grad_()
    optimizer = torch.optim.SGD([raw], lr=0.5)
    values = []
    for _ in range(20):
        value = loss(F.normalize(raw, dim=1), pids)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < 0.2 * values[0]
    nearest = (F.normalize(raw.detach(), dim=1) @ loss.lut.t()).argmax(1)
    assert torch.equal(nearest, pids)


def test_gathered_update_keeps_two_ranks_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ranks see different batches; with the gather both apply the union and stay equal."""
    torch.manual_seed(0)
    batches = [
        (_unit(4, 8, seed=11), torch.tensor([0, -1, 2, -2])),
        (_unit(3, 8, seed=12), torch.tensor([2, -1, 1])),
    ]
    ranks = [OIMLoss(num_features=8, num_pids=3, num_cq=4) for _ in batches]
    calls: list[int] = []

    def fake_gather(tensor: torch.Tensor) -> torch.Tensor:
        is_feature = tensor.is_floating_point()
        calls.append(int(is_feature))
        return torch.cat([b[0] if is_feature else b[1] for b in batches]).to(tensor.dtype)

    monkeypatch.setattr(oim_module, "all_gather_tensor", fake_gather)
    for model, (x, pids) in zip(ranks, batches):
        model(x, pids)
    assert len(calls) == 4
    for name in ("lut", "cq", "cq_pointer"):
        assert torch.equal(getattr(ranks[0], name), getattr(ranks[1], name)), name
    assert int(ranks[0].cq_pointer) == 2
    assert torch.count_nonzero(ranks[0].lut.norm(dim=1)) == 3  # every pid seen by some rank

    monkeypatch.undo()  # without the gather the ranks drift apart
    alone = [OIMLoss(num_features=8, num_pids=3, num_cq=4) for _ in batches]
    for model, (x, pids) in zip(alone, batches):
        model(x, pids)
    assert not torch.equal(alone[0].lut, alone[1].lut)


def test_rejects_bad_inputs() -> None:
    loss = OIMLoss(num_features=4, num_pids=2)
    with pytest.raises(ValueError):
        loss(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError):
        loss(_unit(1, 4), torch.tensor([2]))


_RANK_SCRIPT = """
import sys, torch, torch.distributed as dist
torch.set_num_threads(1)
from personsearch.losses.oim import OIMLoss
rank, init, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
torch.manual_seed(100 + rank)  # each rank sees different features and pids
loss = OIMLoss(num_features=8, num_pids=4, num_cq=5)
pids = [torch.tensor([0, -1, 2]), torch.tensor([2, -1, -2, 3, -1])][rank]
for _ in range(3):
    loss(torch.nn.functional.normalize(torch.randn(len(pids), 8), dim=1), pids)
torch.save(loss.state_dict(), out)
dist.destroy_process_group()
"""


@pytest.mark.skipif(not torch.distributed.is_available(), reason="needs torch.distributed")
def test_memories_identical_under_real_gloo_ranks(tmp_path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    init = f"file://{tmp_path / 'store'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, str(script), str(r), init, str(tmp_path / f"r{r}.pt")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(2)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out[-2000:]
    states = [torch.load(tmp_path / f"r{r}.pt") for r in range(2)]
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    assert int(states[0]["cq_pointer"]) == (3 * 3) % 5  # 1 + 2 unlabeled per step, both ranks
    assert torch.count_nonzero(states[0]["lut"].norm(dim=1)) == 3
