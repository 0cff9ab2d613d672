"""Optimizers and per-iteration schedules: learning rate (warmup x multistep | cosine | constant),
weight decay and EMA momentum (cosine from a start to an end value, as DINO / PASS)."""

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


def cosine_value(start: float, end: float, step: int, total: int) -> float:
    """``start`` at step 0 to ``end`` at step ``total`` (and after) along a half cosine."""
    t = min(max(step, 0), max(total, 1)) / max(total, 1)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))


def weight_decay_factor_fn(cfg: EngineConfig, iters_per_epoch: int) -> Callable[[int], float]:
    """``f(step)``: the multiplier of each group's own weight decay at global iteration ``step``
    (1 throughout unless ``weight_decay_end`` is set; then cosine to ``weight_decay_end / weight_decay``)."""
    if cfg.weight_decay_end is None or cfg.weight_decay == 0:
        return lambda step: 1.0
    total = max(cfg.epochs * max(int(iters_per_epoch), 1), 1)
    end = cfg.weight_decay_end / cfg.weight_decay
    return lambda step: cosine_value(1.0, end, step, total)


def ema_momentum_fn(cfg: EngineConfig, iters_per_epoch: int) -> Callable[[int], float]:
    """``f(step)``: EMA teacher momentum at global iteration ``step`` (cosine ``ema_momentum`` -> ``ema_momentum_end``)."""
    total = max(cfg.epochs * max(int(iters_per_epoch), 1), 1)
    return lambda step: cosine_value(cfg.ema_momentum, cfg.ema_momentum_end, step, total)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: EngineConfig, iters_per_epoch: int) -> LambdaLR:
    """A LambdaLR over :func:`lr_factor_fn`, to be stepped once per iteration. The factor is a
    closure, so it is rebuilt from the config on resume rather than restored from the checkpoint."""
    return LambdaLR(optimizer, lr_factor_fn(cfg, iters_per_epoch))
