"""The strong baseline (BoT): BNNeck model, label-smoothed cross-entropy + batch-hard triplet."""

from __future__ import annotations

import torch

from ..reid_common.config import ReidRecipeConfig
from ..reid_common.losses import BotLoss
from ..reid_common.recipe import ReidRecipe


class BaselineRecipe(ReidRecipe):
    """ID loss on the BNNeck logits, triplet loss on the pooled (pre-BN) feature."""

    CONFIG = ReidRecipeConfig

    def __init__(self, cfg: ReidRecipeConfig, **kwargs) -> None:
        super().__init__(cfg, **kwargs)
        self.loss = BotLoss(cfg.loss)

    def training_step(self, model: torch.nn.Module, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss(model(batch["images"]), batch["pids"])
