"""Unsupervised adaptation of a crop embedder to one's own cameras: batch-hard triplet on tracklets.

The labels come for free from the footage: crops of one tracklet (the same person in consecutive
indexed frames) are positives; crops of other tracklets, among them the other people of the same
frames, are negatives. Only the later blocks are tuned, BatchNorm statistics stay frozen (batches
hold one camera's people, not a population), crops are mirrored at random. Resumable: the state is
saved atomically every ``checkpoint_every`` steps and picked up by the next call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..losses.triplet import TripletLoss
from ..engine.checkpoint import atomic_torch_save


@dataclass(frozen=True)
class FinetuneConfig:
    """Steps of ``ids_per_batch`` tracklets x ``crops_per_id`` crops; blocks from ``train_from`` on are tuned."""

    steps: int = 60
    lr: float = 1e-4
    ids_per_batch: int = 8
    crops_per_id: int = 4
    margin: float = 0.3
    train_from: int = 11
    checkpoint_every: int = 10
    seed: int = 0


def _freeze_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def finetune_on_tracklets(embedder: nn.Module, crops: torch.Tensor, labels: np.ndarray,
                          cfg: FinetuneConfig = FinetuneConfig(), state_file: Path | None = None,
                          progress: bool = True, on_step: Callable[[int, int], None] | None = None) -> list[float]:
    """Tune ``embedder`` in place on normalised crops (N, 3, h, w) labelled by tracklet; returns the
    loss per step. ``embedder.features`` (a block sequence) is tuned from block ``cfg.train_from``;
    an ``embedder.flip`` flag is switched off while training (random mirroring replaces it).
    ``on_step(done, total)`` is called after every step (a server's progress report).
    ValueError if fewer than two tracklets are given."""
    from tqdm import tqdm

    labels = np.asarray(labels)
    tracklets = np.unique(labels)
    if len(tracklets) < 2:
        raise ValueError(f"adaptation needs at least 2 tracklets (people followed over frames), got {len(tracklets)}")
    members = {int(t): np.flatnonzero(labels == t) for t in tracklets}
    trainable = [p for i, block in enumerate(embedder.features) if i >= cfg.train_from for p in block.parameters()]
    for p in embedder.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.Adam(trainable, lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    losses: list[float] = []
    if state_file is not None and Path(state_file).is_file():
        state = torch.load(state_file, map_location="cpu", weights_only=False)
        embedder.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        losses = list(state["losses"])
    criterion = TripletLoss(margin=cfg.margin, metric="l2")
    flip = getattr(embedder, "flip", False)
    embedder.flip = False
    embedder.train()
    _freeze_batchnorm(embedder)
    per_batch = min(cfg.ids_per_batch, len(tracklets))
    try:
        for step in tqdm(range(len(losses), cfg.steps), desc="adapt", unit="step", disable=not progress,
                         initial=len(losses), total=cfg.steps):
            chosen = rng.choice(tracklets, per_batch, replace=False)
            idx = np.concatenate([rng.choice(members[int(t)], cfg.crops_per_id,
                                             replace=len(members[int(t)]) < cfg.crops_per_id) for t in chosen])
            batch = crops[idx].float()
            mirror = torch.from_numpy(rng.random(len(idx)) < 0.5)
            batch[mirror] = batch[mirror].flip(-1)
            loss = criterion(embedder(batch), torch.from_numpy(labels[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step + 1, cfg.steps)
            if state_file is not None and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps):
                atomic_torch_save({"model": embedder.state_dict(), "optimizer": opt.state_dict(),
                                   "rng": rng.bit_generator.state, "losses": losses}, Path(state_file))
    finally:
        embedder.flip = flip
        embedder.eval()
        for p in embedder.parameters():
            p.requires_grad_(False)
    return losses


__all__ = ["FinetuneConfig", "finetune_on_tracklets"]
