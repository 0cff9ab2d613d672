"""Global pooling of a (B, C, h, w) feature map to a (B, C) vector: average, max, GeM."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GeM(nn.Module):
    """Generalised-mean pooling (Radenovic et al.): (mean(clamp(x, eps)^p))^(1/p), p learnable.

    p=1 is average pooling, p -> inf tends to max pooling. Inputs are clamped to ``eps`` first, so
    GeM suits non-negative (post-ReLU) CNN maps; on ViT tokens negative values are lost.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learnable)
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.p.item():.3f}, eps={self.eps}"


class _GlobalPool(nn.Module):
    def __init__(self, reduce: str) -> None:
        super().__init__()
        self.reduce = reduce

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(-2, -1)) if self.reduce == "avg" else x.amax(dim=(-2, -1))

    def extra_repr(self) -> str:
        return self.reduce


def build_pooling(name: str) -> nn.Module:
    """Pooling module ``"avg"``, ``"max"`` or ``"gem"``: (B, C, h, w) -> (B, C)."""
    if name in ("avg", "max"):
        return _GlobalPool(name)
    if name == "gem":
        return GeM()
    raise ValueError(f"unknown pooling {name!r}; choose avg, max or gem")


__all__ = ["GeM", "build_pooling"]
