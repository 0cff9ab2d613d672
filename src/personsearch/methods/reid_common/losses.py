"""BoT's training loss on a ReID model's output, shared by every recipe that trains a crop model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...losses import TripletLoss
from .config import ReidLossConfig


class BotLoss:
    """Label-smoothed cross-entropy on the BNNeck logits + batch-hard triplet on the pooled feature."""

    def __init__(self, cfg: ReidLossConfig) -> None:
        self.cfg = cfg
        self.triplet = TripletLoss(margin=cfg.margin, metric=cfg.metric)

    def __call__(self, out: dict[str, torch.Tensor], pids: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss, logs) of one batch; ``out`` holds ``logits`` and ``global`` (ReidModel training output)."""
        loss_id = F.cross_entropy(out["logits"].float(), pids, label_smoothing=self.cfg.label_smoothing)
        loss_tri = self.triplet(out["global"].float(), pids)
        loss = self.cfg.id_weight * loss_id + self.cfg.triplet_weight * loss_tri
        acc = (out["logits"].argmax(1) == pids).float().mean()
        return loss, {"loss_id": loss_id.item(), "loss_triplet": loss_tri.item(), "acc": acc.item()}
