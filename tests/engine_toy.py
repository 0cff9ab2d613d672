"""A toy recipe for the engine tests: Gaussian clusters, a tiny MLP (or conv net), a sharded sampler,
optionally an EMA teacher (an auxiliary module updated in ``after_step``).

Also a script, for subprocess / torchrun tests (always with the EMA teacher and a weight-decay schedule):
    python tests/engine_toy.py OUT_DIR [--epochs 3] [--workers 2] [--kill-at-step N] [--resume] [--tensorboard]
Each rank writes OUT_DIR/rank{r}.pt with its final state_dict, teacher state, history and a few counters.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

if __name__ == "__main__":  # running as a script from a checkout: make `personsearch` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from personsearch.engine import (  # noqa: E402
    Auxiliary,
    EmaTeacher,
    EngineConfig,
    Recipe,
    StepInfo,
    all_gather_tensor,
    all_reduce_mean,
    get_rank,
    get_world_size,
    train,
)


def make_clusters(n: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points around ``classes`` fixed random centres (the centres do not depend on ``seed``)."""
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * 1.5
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    return centres[labels] + torch.randn(n, dim, generator=g), labels


class ClusterDataset(Dataset):
    """Points plus a little per-access noise drawn from the (worker's) torch RNG: an 'augmentation'."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, noise: float = 0.1, image: bool = False):
        self.x, self.y, self.noise, self.image = x, y, noise, image

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = self.x[i] + self.noise * torch.randn(self.x.shape[1])
        side = int(math.isqrt(x.numel()))
        return (x.view(1, side, side) if self.image else x), self.y[i]


class ShardSampler:
    """DistributedSampler-like: a (seed, epoch) permutation, padded, every world_size-th index."""

    def __init__(self, n: int, rank: int, world_size: int, seed: int):
        self.n, self.rank, self.world, self.seed, self.epoch = n, rank, world_size, seed, 0
        self.per_rank = math.ceil(n / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        perm += perm[: self.per_rank * self.world - self.n]
        return iter(perm[self.rank :: self.world])

    def __len__(self) -> int:
        return self.per_rank


class ToyRecipe(Recipe):
    """The engine's recipe contract on synthetic data, with switches to inject NaN losses or a SIGKILL
    and an optional EMA teacher; ``calls`` records every hook the engine made, in order."""

    def __init__(self, n: int = 256, dim: int = 16, classes: int = 4, batch_size: int = 32, hidden: int = 32,
                 workers: int = 0, image: bool = False, nan_at_step: int | None = None,
                 kill_at_step: int | None = None, ema: bool = False):
        super().__init__(cfg=None)
        self.ema, self.teacher = ema, None
        self.calls: list[tuple] = []
        self.infos: list[StepInfo] = []
        self.x, self.y = make_clusters(n, dim, classes, seed=0)
        self.val_x, self.val_y = make_clusters(256, dim, classes, seed=1)
        self.dim, self.classes, self.batch_size, self.hidden = dim, classes, batch_size, hidden
        self.workers, self.image = workers, image
        self.nan_at_step, self.kill_at_step = nan_at_step, kill_at_step
        self.steps = self.samples_seen = self.eval_calls = 0
        self.epochs_started: list[int] = []

    def build_model(self) -> nn.Module:
        if self.image:
            side = int(math.isqrt(self.dim))
            net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                                nn.Linear(8 * side * side, self.classes))
        else:
            net = nn.Sequential(nn.Linear(self.dim, self.hidden), nn.BatchNorm1d(self.hidden), nn.ReLU(),
                                nn.Linear(self.hidden, self.classes))
        self.student = net
        return net

    def auxiliary_modules(self) -> dict[str, Auxiliary]:
        if not self.ema:
            return {}
        self.teacher = EmaTeacher(self.student)
        return {"teacher": Auxiliary(self.teacher)}

    def on_train_start(self, model: nn.Module) -> None:
        self.calls.append(("on_train_start",))

    def after_step(self, model: nn.Module, info: StepInfo) -> None:
        self.calls.append(("after_step", info.step))
        self.infos.append(info)
        if self.teacher is not None:
            self.teacher.update(model, info.ema_momentum)

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        self.calls.append(("on_epoch_end", epoch))

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        dataset = ClusterDataset(self.x, self.y, image=self.image)
        sampler = ShardSampler(len(dataset), rank, world_size, seed)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.workers,
                          drop_last=True)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        self.calls.append(("on_epoch_start", epoch))
        self.epochs_started.append(epoch)
        if get_world_size() > 1:  # exercise the collectives while the process group is alive
            rank = get_rank()
            self.collectives = {"gather": all_gather_tensor(torch.full((rank + 1, 2), float(rank))),
                                "mean": all_reduce_mean(float(rank)),
                                "mean_tensor": all_reduce_mean(torch.tensor([float(rank), 2.0]))}

    def training_step(self, model: nn.Module, batch, epoch: int):
        x, y = batch
        if self.kill_at_step is not None and self.steps == self.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)  # a hard crash: no cleanup, no finally blocks
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        if self.nan_at_step is not None and self.steps == self.nan_at_step:
            loss = loss * float("nan")
        self.steps += 1
        self.samples_seen += len(y)
        return loss, {"acc": (logits.argmax(1) == y).float().mean().item()}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        self.eval_calls += 1
        device = next(model.parameters()).device
        x = self.val_x.view(-1, 1, *(2 * [int(math.isqrt(self.dim))])) if self.image else self.val_x
        pred = model(x.to(device)).argmax(1).cpu()
        return {"acc": (pred == self.val_y).float().mean().item()}

    def extra_state(self) -> dict:
        return {"saved_by_rank": get_rank(), "steps": self.steps}

    def load_extra_state(self, state: dict) -> None:
        self.loaded_extra = state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--kill-at-step", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--log-every", type=int, default=2)
    parser.add_argument("--tensorboard", action="store_true")
    args = parser.parse_args(argv)
    recipe = ToyRecipe(workers=args.workers, kill_at_step=args.kill_at_step, ema=True)
    cfg = EngineConfig(epochs=args.epochs, lr=1e-2, schedule="cosine", warmup_epochs=0.5, grad_clip=5.0,
                       log_every=args.log_every, progress=False, seed=7, optimizer="adamw",
                       weight_decay=0.04, weight_decay_end=0.4, ema_momentum=0.9, ema_momentum_end=1.0,
                       tensorboard=args.tensorboard)
    result = train(recipe, cfg, args.out_dir, resume=args.resume)
    # helpers checked by the DDP test (run after train(): the group is gone, so world size is 1 again)
    rank = int(os.environ.get("RANK", "0"))
    torch.save({"state": result.model.state_dict(), "teacher": recipe.teacher.state_dict(),
                "history": result.history, "metrics": result.metrics,
                "samples_seen": recipe.samples_seen, "eval_calls": recipe.eval_calls,
                "collectives": getattr(recipe, "collectives", None)},
               Path(args.out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    main()
