"""The strong baseline (BoT): BNNeck model, label-smoothed cross-entropy + batch-hard triplet."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...losses import TripletLoss
from ..reid_common.config import ReidRecipeConfig
from ..reid_common.recipe import ReidRecipe


class BaselineRecipe(ReidRecipe):
    """ID loss on the BNNeck logits, triplet loss on the pooled (pre-BN) feature."""

    CONFIG = ReidRecipeConfig

    def __init__(self, cfg: ReidRecipeConfig, **kwargs) -> None:
        super().__init__(cfg, **kwargs)
        self.triplet = TripletLoss(margin=cfg.loss.margin, metric=cfg.loss.metric)

    def training_step(self, model: torch.nn.Module, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["images"])
        pids = batch["pids"]
        loss_cfg = self.cfg.loss
        loss_id = F.cross_entropy(out["logits"].float(), pids, label_smoothing=loss_cfg.label_smoothing)
        loss_tri = self.triplet(out["global"].float(), pids)
        loss = loss_cfg.id_weight * loss_id + loss_cfg.triplet_weight * loss_tri
        acc = (out["logits"].argmax(1) == pids).float().mean()
        return loss, {"loss_id": loss_id.item(), "loss_triplet": loss_tri.item(), "acc": acc.item()}
