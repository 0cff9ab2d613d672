"""Seeding and epoch starts: per-epoch seeds and sampler epochs make resume exact."""

from __future__ import annotations

import random
from typing import Iterable

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A well-mixed 32-bit seed for (seed, epoch, rank): distinct streams, same on every rerun."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> int:
    """Reseed all generators for ``epoch`` on ``rank`` (the engine calls it before every epoch)."""
    value = epoch_seed(seed, epoch, rank)
    seed_everything(value)
    return value


def set_loader_epoch(loader: Iterable, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on the loader, its sampler and its batch sampler where present."""
    seen: list[int] = []
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if obj is not None and id(obj) not in seen and callable(getattr(obj, "set_epoch", None)):
            seen.append(id(obj))
            obj.set_epoch(epoch)
