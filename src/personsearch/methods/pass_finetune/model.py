"""A part-token ViT as a ReID model: a BNNeck per token, feature = concat([CLS], mean [PART]s)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from ...engine.checkpoint import read_weights
from ...models.part_vit import PartTokenViT

LOG = logging.getLogger(__name__)
PRETRAINED_PREFIXES = ("teacher.net.backbone.", "backbone.")  # a pass/dino run's teacher; a fine-tuned run


def _bnneck(dim: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim)
    bn.bias.requires_grad_(False)  # BoT's BNNeck: no shift
    return bn


class PartVitReid(nn.Module):
    """Training: ``{"global" (pre-BN concat), "embedding" (post-BN concat), "logits" [(B, C) per token]}``;
    eval: the post-BN embedding (B, 2D; D with no parts)."""

    def __init__(self, backbone: PartTokenViT, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        tokens = 1 + backbone.num_parts
        self.necks = nn.ModuleList(_bnneck(backbone.dim) for _ in range(tokens))
        self.classifiers = nn.ModuleList(nn.Linear(backbone.dim, num_classes, bias=False) for _ in range(tokens)) \
            if num_classes > 0 else None
        if self.classifiers is not None:
            for fc in self.classifiers:
                nn.init.normal_(fc.weight, std=0.001)

    @staticmethod
    def _join(tokens: list[Tensor]) -> Tensor:
        return tokens[0] if len(tokens) == 1 else torch.cat([tokens[0], torch.stack(tokens[1:]).mean(0)], dim=1)

    def forward(self, x: Tensor) -> dict[str, Tensor] | Tensor:
        tokens = self.backbone(x)
        raw = [tokens[:, t] for t in range(tokens.shape[1])]
        normed = [neck(f) for neck, f in zip(self.necks, raw)]
        embedding = self._join(normed)
        if not self.training:
            return embedding
        out: dict = {"global": self._join(raw), "embedding": embedding}
        if self.classifiers is not None:
            out["logits"] = [fc(f) for fc, f in zip(self.classifiers, normed)]
        return out


def load_pretrained_backbone(backbone: PartTokenViT, weights: str | Path) -> None:
    """Load a pre-trained part-token ViT (a pass/dino run's teacher, or another fine-tuned run's backbone)."""
    state = read_weights(weights)
    for prefix in PRETRAINED_PREFIXES:
        found = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if found:
            break
    else:
        raise ValueError(f"{weights}: no part-token ViT weights (keys starting with {' or '.join(PRETRAINED_PREFIXES)})")
    theirs = found.get("part_tokens")
    if theirs is not None and theirs.shape != backbone.part_tokens.shape:
        raise ValueError(f"{weights}: pre-trained with {theirs.shape[1]} [PART] tokens, this model has "
                         f"{backbone.num_parts}: set model.num_parts={theirs.shape[1]}")
    missing, unexpected = backbone.load_state_dict(found, strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights}: backbone weights do not fit model.arch/depth/stem (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    LOG.info("backbone initialised from %s (%d tensors)", weights, len(found))
