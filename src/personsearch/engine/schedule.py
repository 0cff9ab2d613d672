"""Optimizers and per-iteration learning-rate schedules (warmup x multistep | cosine | constant)."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from .config import EngineConfig


def build_optimizer(params: Iterable, cfg: EngineConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer``; ``params`` may be parameters or param-group dicts
    (a group's own ``lr`` / ``weight_decay`` override the config's)."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor_fn(cfg: EngineConfig, iters_per_epoch: int) -> Callable[[int], float]:
    """``f(step)``: the multiplier of each group's base lr for global iteration ``step`` (0-based).

    Warmup rises linearly from ``warmup_factor`` to 1 over ``warmup_epochs`` (in iterations) and
    multiplies the main schedule: multistep drops by ``gamma`` at each milestone epoch; cosine
    decays from 1 at step 0 to ``min_lr / lr`` at step ``epochs * iters_per_epoch``.
    """
    ipe = max(int(iters_per_epoch), 1)
    warmup_iters = int(round(cfg.warmup_epochs * ipe))
    total = max(cfg.epochs * ipe, 1)
    floor = cfg.min_lr / cfg.lr
    boundaries = sorted(m * ipe for m in cfg.milestones)

    def factor(step: int) -> float:
        if cfg.schedule == "multistep":
            main = cfg.gamma ** sum(step >= b for b in boundaries)
        elif cfg.schedule == "cosine":
            main = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        else:
            main = 1.0
        if step < warmup_iters:
            main *= cfg.warmup_factor + (1.0 - cfg.warmup_factor) * step / warmup_iters
        return main

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: EngineConfig, iters_per_epoch: int) -> LambdaLR:
    """A LambdaLR over :func:`lr_factor_fn`, to be stepped once per iteration. The factor is a
    closure, so it is rebuilt from the config on resume rather than restored from the checkpoint."""
    return LambdaLR(optimizer, lr_factor_fn(cfg, iters_per_epoch))
