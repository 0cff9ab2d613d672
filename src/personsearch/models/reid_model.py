"""The BoT-style ReID model: backbone -> global pooling -> [reduction] -> BNNeck -> ID classifier.

Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-identification" (BoT): the
triplet loss uses the pooled feature before the BN neck, the ID loss the logits computed from the
feature after it, and the test embedding is the post-BN feature.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from personsearch.models.backbones import build_backbone
from personsearch.models.pooling import build_pooling

NECKS = ("bnneck", "none")


class ReidModel(nn.Module):
    """backbone + pooling + optional linear reduction + neck + classifier.

    forward in training mode returns a dict: ``feature_map`` (B, C, h, w), ``global`` (B, D) the
    pooled (and reduced) feature before the neck, ``embedding`` (B, D) after the neck and, when
    num_classes > 0, ``logits`` (B, num_classes). In eval mode it returns the embedding alone.
    neck "bnneck": BatchNorm1d with a frozen zero bias, bias-free classifier on its output;
    "none": embedding = global, classifier (with bias) on it. num_classes=0: no classifier.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        pooling: str = "avg",
        neck: str = "bnneck",
        embed_dim: int | None = None,
    ) -> None:
        super().__init__()
        if neck not in NECKS:
            raise ValueError(f"unknown neck {neck!r}; choose from {', '.join(NECKS)}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.backbone = backbone
        self.pool = build_pooling(pooling)
        in_dim: int = backbone.out_channels
        self.reduction: nn.Module = nn.Identity() if embed_dim is None else nn.Linear(in_dim, embed_dim, bias=False)
        self.embed_dim: int = in_dim if embed_dim is None else embed_dim
        self.neck_type = neck
        self.num_classes = num_classes
        if neck == "bnneck":
            self.neck: nn.Module = nn.BatchNorm1d(self.embed_dim)
            self.neck.bias.requires_grad_(False)  # BoT: no shift, so the BN output stays centred
        else:
            self.neck = nn.Identity()
        self.classifier: nn.Module | None = (
            nn.Linear(self.embed_dim, num_classes, bias=neck == "none") if num_classes > 0 else None
        )
        self._init_head()

    def _init_head(self) -> None:
        if isinstance(self.reduction, nn.Linear):
            nn.init.kaiming_normal_(self.reduction.weight, mode="fan_out")
        if isinstance(self.neck, nn.BatchNorm1d):
            nn.init.ones_(self.neck.weight)
            nn.init.zeros_(self.neck.bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)
            if self.classifier.bias is not None:
                nn.init.zeros_(self.classifier.bias)

    def forward(self, x: Tensor) -> dict[str, Tensor] | Tensor:
        feature_map = self.backbone(x)
        global_feat = self.reduction(self.pool(feature_map))
        embedding = self.neck(global_feat)
        if not self.training:
            return embedding
        out = {"feature_map": feature_map, "global": global_feat, "embedding": embedding}
        if self.classifier is not None:
            out["logits"] = self.classifier(embedding)
        return out


def build_reid_model(
    backbone: str,
    num_classes: int,
    *,
    weights: str | Path | None = None,
    last_stride: int = 1,
    pooling: str = "avg",
    neck: str = "bnneck",
    embed_dim: int | None = None,
    img_size: tuple[int, int] = (256, 128),
) -> ReidModel:
    """A ReidModel on ``build_backbone(backbone, ...)``; see those two for the arguments."""
    body = build_backbone(backbone, last_stride=last_stride, weights=weights, img_size=img_size)
    return ReidModel(body, num_classes, pooling=pooling, neck=neck, embed_dim=embed_dim)
