"""PASS supervised fine-tuning: a (pre-trained) part-token ViT, a BNNeck per token, cross-entropy on
each token's logits (averaged) + soft-margin batch-hard triplet on concat([CLS], mean [PART]s)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...losses import TripletLoss
from ...models.part_vit import build_part_vit
from ..reid_common.recipe import ReidRecipe
from .config import PassReidConfig
from .model import PartVitReid, load_pretrained_backbone


class PassReidRecipe(ReidRecipe):
    """Any ReID dataset with train/query/gallery; ``model.weights`` = a ``pass`` or ``dino`` run."""

    CONFIG = PassReidConfig
    cfg: PassReidConfig

    def __init__(self, cfg: PassReidConfig, **kwargs) -> None:
        super().__init__(cfg, **kwargs)
        self.triplet = TripletLoss(margin=cfg.loss.margin, metric=cfg.loss.metric)

    def build_model(self) -> torch.nn.Module:
        m = self.cfg.model
        backbone = build_part_vit(m, self.input_size, m.drop_path)
        if m.weights:
            load_pretrained_backbone(backbone, m.weights)
        return PartVitReid(backbone, self.num_classes)

    def restore_sizes(self, state_dict: dict[str, torch.Tensor]) -> None:
        rows = [v.shape[0] for k, v in state_dict.items() if k.startswith("classifiers.") and k.endswith(".weight")]
        self.num_classes = rows[0] if rows else 0

    def training_step(self, model: torch.nn.Module, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        out, pids, loss_cfg = model(batch["images"]), batch["pids"], self.cfg.loss
        loss_id = torch.stack([F.cross_entropy(lg.float(), pids, label_smoothing=loss_cfg.label_smoothing)
                               for lg in out["logits"]]).mean()
        loss_tri = self.triplet(out["global"].float(), pids)
        acc = (out["logits"][0].argmax(1) == pids).float().mean()
        loss = loss_cfg.id_weight * loss_id + loss_cfg.triplet_weight * loss_tri
        return loss, {"loss_id": loss_id.item(), "loss_triplet": loss_tri.item(), "acc": acc.item()}

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """The ReID smoke settings with a 2-block ViT-Tiny at 64x32."""
        return [*ReidRecipe.smoke_overrides(synth_root, work_dir), "model.arch=vit_tiny", "model.depth=2"]
