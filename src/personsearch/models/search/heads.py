"""Person search RoI heads: the NAE norm-aware embedding and a torchvision ``RoIHeads`` that adds it.

``SearchRoIHeads`` keeps torchvision's proposal matching, fg/bg sampling, box coding, Fast R-CNN
loss and post-processing (NMS), and adds on the same pooled res5 features the
``NormAwareEmbedding``: its norm scores person vs background (BCE), its direction is the identity
feature trained with OIM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss

from ...utils.labels import BACKGROUND


class NormAwareEmbedding(nn.Module):
    """NAE (Chen et al., CVPR 2020): one embedding carries both detection confidence and identity.

    ``x = BN(Linear(features))``; its norm ``r = ||x||`` goes through a 1-d BatchNorm to the person
    logit; the identity feature is ``x / r``. At test the output is ``x / r * sigmoid(logit)``.
    """

    def __init__(self, in_channels: int, dim: int = 256) -> None:
        super().__init__()
        self.dim = dim
        self.projection = nn.Sequential(nn.Linear(in_channels, dim), nn.BatchNorm1d(dim))
        self.norm_bn = nn.BatchNorm1d(1)
        nn.init.normal_(self.projection[0].weight, std=0.01)
        nn.init.zeros_(self.projection[0].bias)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """(N, C) pooled RoI features -> (unit identity features (N, dim), person logits (N,))."""
        x = self.projection(features.flatten(1))
        norms = x.norm(dim=1, keepdim=True)
        logits = self.norm_bn(norms).squeeze(1)
        return x / norms.clamp_min(1e-12), logits

    def inference(self, features: Tensor) -> Tensor:
        """Test-time embedding: identity feature scaled by the person probability (N, dim)."""
        identity, logits = self(features)
        return identity * torch.sigmoid(logits).unsqueeze(1)


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


class PooledHead(nn.Module):
    """The res5 stage (or the last MobileNet blocks) on RoI features, then global max pooling -> (N, C)."""

    def __init__(self, blocks: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_max_pool2d(self.blocks(x), 1).flatten(1)


class SearchRoIHeads(RoIHeads):
    """torchvision ``RoIHeads`` (2 classes: background, person) plus NAE embedding and OIM.

    Training returns losses ``loss_box_cls``, ``loss_box_reg``, ``loss_nae`` (BCE of the NAE
    person logit on the sampled proposals) and ``loss_oim``. Inference returns, per image,
    ``boxes``, ``scores`` (box classifier) and ``embeddings`` (NAE test output); the embeddings are
    computed on the final (regressed, NMS-kept) boxes by a second pass through the head.
    """

    def __init__(self, *, embedding_head: NormAwareEmbedding, oim: nn.Module | None, embedding_grad_scale: float = 1.0,
                 **roi_kwargs) -> None:
        super().__init__(**roi_kwargs)
        self.embedding_head = embedding_head
        self.oim = oim
        self.embedding_grad_scale = float(embedding_grad_scale)

    def box_features(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        """RoIAlign + res5 head + pooling for ``boxes`` (concatenated over images): (sum N_i, C)."""
        return self.box_head(self.box_roi_pool(features, boxes, image_shapes))

    def embed_boxes(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
        *,
        query: bool = False,
    ) -> list[Tensor]:
        """Per image embeddings of given boxes: unit identity features if ``query``, else NAE test output."""
        dim = self.embedding_head.dim
        if sum(len(b) for b in boxes) == 0:
            return [b.new_zeros((0, dim)) for b in boxes]
        pooled = self.box_features(features, boxes, image_shapes)
        emb = self.embedding_head(pooled)[0] if query else self.embedding_head.inference(pooled)
        return list(emb.split([len(b) for b in boxes]))

    def forward(  # type: ignore[override]
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        if not self.training:
            pooled = self.box_features(features, proposals, image_shapes)
            class_logits, box_regression = self.box_predictor(pooled)
            boxes, scores, _ = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
            embeddings = self.embed_boxes(features, boxes, image_shapes)
            return [{"boxes": b, "scores": s, "embeddings": e} for b, s, e in zip(boxes, scores, embeddings)], {}

        if targets is None:
            raise ValueError("targets are required in training mode")
        if self.oim is None:
            raise ValueError("this model was built without an identity loss (reid_loss=None): inference only")
        proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        pids = [_sampled_pids(t["pids"], m, lab) for t, m, lab in zip(targets, matched_idxs, labels)]
        pooled = self.box_features(features, proposals, image_shapes)
        class_logits, box_regression = self.box_predictor(pooled)
        loss_cls, loss_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
        identity, person_logits = self.embedding_head(scale_gradient(pooled, self.embedding_grad_scale))
        is_person = torch.cat(labels) > 0
        losses = {
            "loss_box_cls": loss_cls,
            "loss_box_reg": loss_reg,
            "loss_nae": F.binary_cross_entropy_with_logits(person_logits, is_person.to(person_logits.dtype)),
            "loss_oim": self.oim(identity, torch.cat(pids)),
        }
        return [], losses


def _sampled_pids(gt_pids: Tensor, matched_idxs: Tensor, labels: Tensor) -> Tensor:
    """pid of each sampled proposal: its matched GT box's pid for foreground, ``BACKGROUND`` otherwise."""
    background = torch.full_like(matched_idxs, BACKGROUND)
    if gt_pids.numel() == 0:
        return background
    return torch.where(labels > 0, gt_pids.to(matched_idxs.device, torch.long)[matched_idxs], background)
