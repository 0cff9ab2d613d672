"""NAE (Chen et al., CVPR 2020) with OIM: one Faster R-CNN whose RoI head also embeds identities."""

from __future__ import annotations

import torch
from torch import nn

from ...losses.oim import OIMLoss
from ...models.search import build_person_search_model
from ..search_common.recipe import PersonSearchRecipe


class NaeRecipe(PersonSearchRecipe):
    """Faster R-CNN (C4) + norm-aware embedding + OIM on CUHK-SYSU/PRW-format scenes."""

    def build_model(self) -> nn.Module:
        m, d = self.cfg.model, self.cfg.data
        oim = OIMLoss(256, self.num_pids, self.num_cq)
        return build_person_search_model(m.backbone, oim, weights=m.weights, embedding_dim=256,
                                         min_size=d.min_size, max_size=d.max_size,
                                         roi_output_size=m.roi_output_size, box_batch_size_per_image=m.box_batch_size,
                                         rpn_post_nms_top_n=tuple(m.rpn_post_nms),
                                         detections_per_img=m.detections_per_img,
                                         embedding_grad_scale=m.embedding_grad_scale)

    def param_groups(self, model: nn.Module) -> list[dict]:
        """The embedding head at ``model.embedding_lr_mult`` x the base learning rate, the rest at 1x."""
        lr, mult = self.cfg.engine.lr, self.cfg.model.embedding_lr_mult
        head = {id(p) for p in model.roi_heads.embedding_head.parameters()}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head]
        embedding = [p for p in model.roi_heads.embedding_head.parameters() if p.requires_grad]
        return [{"params": rest, "lr": lr}, {"params": embedding, "lr": lr * mult}]

    def training_step(self, model: nn.Module, batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        images, targets = batch
        losses = model(images, [{"boxes": t["boxes"], "pids": t["pids"]} for t in targets])
        weights = self.cfg.loss
        total = sum(getattr(weights, key.removeprefix("loss_")) * value for key, value in losses.items())
        return total, {k: float(v.detach()) for k, v in losses.items()}
