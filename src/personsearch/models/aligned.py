"""AlignedReID model (Zhang et al., arXiv 1711.08184): the BoT ReID model plus a local stripe branch.

The global branch (pooling -> [reduction] -> BNNeck -> classifier) is ``ReidModel``'s, inherited
unchanged. The local branch pools the backbone map to ``stripes`` horizontal rows (adaptive
pooling, so any map height works: 16x8 at 256x128 with last_stride=1, 8x4 at 128x64, ViT token
grids), then 1x1 conv -> BatchNorm -> ReLU to ``local_dim`` channels per stripe. Aligned local
distances between stripe sets are in ``personsearch.distance.local_distance``.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from personsearch.models.backbones import build_backbone
from personsearch.models.reid_model import ReidModel

LOCAL_POOLINGS = ("avg", "max")


class LocalBranch(nn.Module):
    """(B, C, h, w) feature map -> (B, stripes, local_dim) non-negative stripe features.

    Adaptive avg/max pooling to (stripes, 1) (rows are repeated when h < stripes), then a
    bias-free 1x1 conv, BatchNorm2d and ReLU, as in the paper.
    """

    def __init__(self, in_channels: int, stripes: int = 8, local_dim: int = 128, pooling: str = "avg") -> None:
        super().__init__()
        if stripes < 1 or local_dim < 1:
            raise ValueError(f"stripes and local_dim must be >= 1, got {stripes}, {local_dim}")
        if pooling not in LOCAL_POOLINGS:
            raise ValueError(f"unknown local pooling {pooling!r}; choose from {', '.join(LOCAL_POOLINGS)}")
        self.stripes = stripes
        self.local_dim = local_dim
        pool_cls = nn.AdaptiveAvgPool2d if pooling == "avg" else nn.AdaptiveMaxPool2d
        self.pool = pool_cls((stripes, 1))
        self.conv = nn.Conv2d(in_channels, local_dim, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(local_dim)
        self.relu = nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, feature_map: Tensor) -> Tensor:
        x = self.relu(self.bn(self.conv(self.pool(feature_map))))  # (B, local_dim, stripes, 1)
        return x.squeeze(-1).transpose(1, 2).contiguous()


class AlignedReidModel(ReidModel):
    """``ReidModel`` + ``LocalBranch``.

    Training forward: ReidModel's dict (``feature_map``, ``global``, ``embedding``[, ``logits``])
    plus ``local`` (B, stripes, local_dim). Eval forward: the global embedding (B, D) alone, so
    the standard extraction / evaluation path is unchanged; ``embed_with_local`` gives both.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        stripes: int = 8,
        local_dim: int = 128,
        pooling: str = "avg",
        local_pooling: str = "avg",
        neck: str = "bnneck",
        embed_dim: int | None = None,
    ) -> None:
        super().__init__(backbone, num_classes, pooling=pooling, neck=neck, embed_dim=embed_dim)
        self.local_branch = LocalBranch(backbone.out_channels, stripes, local_dim, local_pooling)

    @property
    def stripes(self) -> int:
        """Number of horizontal stripes H of the local features."""
        return self.local_branch.stripes

    @property
    def local_dim(self) -> int:
        """Channels C of each local stripe feature."""
        return self.local_branch.local_dim

    def forward(self, x: Tensor) -> dict[str, Tensor] | Tensor:
        if not self.training:
            return super().forward(x)
        out = super().forward(x)
        out["local"] = self.local_branch(out["feature_map"])
        return out

    def embed_with_local(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(global embedding (B, D) as the eval forward, local features (B, stripes, local_dim)).

        Runs in the model's current mode (call ``.eval()`` first for test features).
        """
        feature_map = self.backbone(x)
        embedding = self.neck(self.reduction(self.pool(feature_map)))
        return embedding, self.local_branch(feature_map)


def build_aligned_model(
    backbone: str,
    num_classes: int,
    *,
    stripes: int = 8,
    local_dim: int = 128,
    weights: str | Path | None = None,
    last_stride: int = 1,
    pooling: str = "avg",
    local_pooling: str = "avg",
    neck: str = "bnneck",
    embed_dim: int | None = None,
    img_size: tuple[int, int] = (256, 128),
) -> AlignedReidModel:
    """An AlignedReidModel on ``build_backbone(backbone, ...)``; arguments as ``build_reid_model``.

    pooling: global pooling (avg | max | gem); local_pooling: stripe pooling (avg | max).
    """
    body = build_backbone(backbone, last_stride=last_stride, weights=weights, img_size=img_size)
    return AlignedReidModel(body, num_classes, stripes=stripes, local_dim=local_dim, pooling=pooling,
                            local_pooling=local_pooling, neck=neck, embed_dim=embed_dim)


__all__ = ["LOCAL_POOLINGS", "AlignedReidModel", "LocalBranch", "build_aligned_model"]
