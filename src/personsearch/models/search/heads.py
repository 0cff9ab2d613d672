"""Parts of the person search RoI heads: pooled features, the norm-aware embedding, box regression.

NAE and SeqNet (``nae_heads.py``, ``seqnet_heads.py``) compose these on torchvision's ``RoIHeads``
(proposal matching, fg/bg sampling, box coding). Names follow the C4 layout: "res4" is the RoIAligned
trunk map, "res5" the head blocks' output; both are max-pooled to vectors.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import boxes as box_ops

from ...utils.labels import BACKGROUND


class PooledHead(nn.Module):
    """RoI features (N, C4, h, w) -> (res4 vector (N, C4), res5 vector (N, C5)), both global max pools."""

    def __init__(self, blocks: nn.Module, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        res4 = F.adaptive_max_pool2d(x, 1).flatten(1)
        return res4, F.adaptive_max_pool2d(self.blocks(x), 1).flatten(1)


class NormAwareEmbedding(nn.Module):
    """NAE (Chen et al., CVPR 2020): one embedding carries person confidence (its norm) and identity.

    Each input vector (res4, res5) is projected by Linear + BatchNorm1d to its share of ``dim``
    (128 + 128 for two inputs) and the parts are concatenated into ``x``. The norm ``r = ||x||``
    goes through a 1-d BatchNorm (the "rescaler") to the person logit; the identity feature is
    ``x / r``. Linear weights and BatchNorm scales start at N(0, 0.01), as in NAE/SeqNet.
    """

    def __init__(self, in_channels: Sequence[int], dim: int = 256) -> None:
        super().__init__()
        parts = [dim // len(in_channels)] * len(in_channels)
        parts[-1] += dim - sum(parts)
        self.dim = dim
        self.projections = nn.ModuleList(nn.Sequential(nn.Linear(c, d), nn.BatchNorm1d(d))
                                         for c, d in zip(in_channels, parts))
        for proj in self.projections:
            nn.init.normal_(proj[0].weight, std=0.01)
            nn.init.zeros_(proj[0].bias)
        self.rescaler = nn.BatchNorm1d(1)

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Input vectors -> (unit identity features (N, dim), person logits (N,))."""
        if len(features) != len(self.projections):
            raise ValueError(f"expected {len(self.projections)} feature vectors, got {len(features)}")
        x = torch.cat([proj(f.flatten(1)) for proj, f in zip(self.projections, features)], 1)
        norms = x.norm(dim=1, keepdim=True)
        return x / norms.clamp_min(1e-12), self.rescaler(norms).squeeze(1)


class BoxRegressor(nn.Module):
    """Class-agnostic box deltas (N, 4) from a pooled vector: Linear + BatchNorm1d (SeqNet's BN neck)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, 4)
        self.bn = nn.BatchNorm1d(4)
        nn.init.normal_(self.linear.weight, std=0.01)
        nn.init.zeros_(self.linear.bias)
        nn.init.normal_(self.bn.weight, std=0.01)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.linear(x)) if x.shape[0] > 1 or not self.training else self.linear(x)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``scale`` on the way back."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def scale_gradient(x: Tensor, scale: float) -> Tensor:
    """``x`` unchanged, with its gradient multiplied by ``scale`` (1.0: plain identity)."""
    return x if scale == 1.0 else _ScaleGradient.apply(x, scale)


def sampled_pids(gt_pids: Tensor, matched_idxs: Tensor, labels: Tensor) -> Tensor:
    """pid of each sampled proposal: its matched GT box's pid for foreground, ``BACKGROUND`` otherwise."""
    background = torch.full_like(matched_idxs, BACKGROUND)
    if gt_pids.numel() == 0:
        return background
    return torch.where(labels > 0, gt_pids.to(matched_idxs.device, torch.long)[matched_idxs], background)


def box_regression_loss(deltas: Tensor, targets: Tensor, labels: Tensor) -> Tensor:
    """Smooth-L1 (beta 1/9, as torchvision) of class-agnostic deltas on foreground rows, summed and
    divided by the number of sampled rows (Fast R-CNN's normalisation)."""
    fg = labels > 0
    if not bool(fg.any()):
        return deltas.sum() * 0.0
    loss = F.smooth_l1_loss(deltas[fg], targets[fg], beta=1 / 9, reduction="sum")
    return loss / labels.numel()


def postprocess(boxes: Tensor, scores: Tensor, extras: Tensor, image_shape: tuple[int, int], score_thresh: float,
                nms_thresh: float, detections: int) -> tuple[Tensor, Tensor, Tensor]:
    """One image: clip, drop tiny and low-score boxes, NMS, keep the ``detections`` best.

    ``extras`` (N, ...) rows follow their boxes (the embeddings of a one-pass head).
    """
    boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
    keep = torch.where(scores > score_thresh)[0]
    boxes, scores, extras = boxes[keep], scores[keep], extras[keep]
    keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
    boxes, scores, extras = boxes[keep], scores[keep], extras[keep]
    keep = box_ops.nms(boxes, scores, nms_thresh)[:detections]
    return boxes[keep], scores[keep], extras[keep]


def check_training_inputs(targets: list | None, oim: nn.Module | None) -> None:
    """The RoI heads' training-mode preconditions: targets given, an identity loss built in."""
    if targets is None:
        raise ValueError("targets are required in training mode")
    if oim is None:
        raise ValueError("this model was built without an identity loss (reid_loss=None): inference only")
