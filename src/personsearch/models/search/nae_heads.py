"""NAE's RoI head (Chen et al., CVPR 2020): one head whose norm-aware embedding is also the detector.

On each sampled proposal: RoIAlign -> res5 head -> (res4 vector, res5 vector); a class-agnostic
regressor moves the box; the NormAwareEmbedding's norm is the person score (BCE, foreground vs
background: IoU >= fg_iou vs < bg_iou, the band between ignored) and its direction the identity
feature (OIM on foreground proposals, ground-truth boxes included). At test, one pass gives boxes,
scores (sigmoid of the norm logit) and embeddings (identity x score), NMS-filtered together.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads

from .heads import BoxRegressor, check_training_inputs, NormAwareEmbedding, PooledHead, box_regression_loss, postprocess, sampled_pids, scale_gradient


class NaeRoIHeads(RoIHeads):
    """torchvision ``RoIHeads`` matching/sampling/box coding with NAE's single head.

    Losses: ``loss_box_reg``, ``loss_nae`` (person BCE on the norm), ``loss_oim`` (identity).
    Inference per image: ``boxes``, ``scores``, ``embeddings`` (NAE test output).
    """

    def __init__(self, *, box_roi_pool: nn.Module, box_head: PooledHead, embedding_head: NormAwareEmbedding,
                 reid_loss: nn.Module | None, embedding_grad_scale: float = 1.0, **roi_kwargs) -> None:
        super().__init__(box_roi_pool=box_roi_pool, box_head=box_head, box_predictor=None, **roi_kwargs)
        self.box_regressor = BoxRegressor(box_head.out_channels)
        self.embedding_head = embedding_head
        self.oim = reid_loss
        self.embedding_grad_scale = float(embedding_grad_scale)

    def pooled(self, features: dict[str, Tensor], boxes: list[Tensor],
               image_shapes: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        """(res4, res5) vectors of ``boxes`` (concatenated over images)."""
        return self.box_head(self.box_roi_pool(features, boxes, image_shapes))

    def identity(self, res4: Tensor, res5: Tensor) -> tuple[Tensor, Tensor]:
        """(unit identity features, person logits), the shared features' gradient scaled."""
        s = self.embedding_grad_scale
        return self.embedding_head([scale_gradient(res4, s), scale_gradient(res5, s)])

    def embed_boxes(self, features: dict[str, Tensor], boxes: list[Tensor],
                    image_shapes: list[tuple[int, int]]) -> list[Tensor]:
        """Unit identity features (n_i, D) of given boxes, per image: the query path."""
        if sum(len(b) for b in boxes) == 0:
            return [b.new_zeros((0, self.embedding_head.dim)) for b in boxes]
        identity, _ = self.identity(*self.pooled(features, boxes, image_shapes))
        return list(identity.split([len(b) for b in boxes]))

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None = None) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        if not self.training:
            return self.detect(features, proposals, image_shapes), {}
        check_training_inputs(targets, self.oim)
        proposals, matched, labels, reg_targets = self.select_training_samples(proposals, targets)
        pids = torch.cat([sampled_pids(t["pids"], m, lab) for t, m, lab in zip(targets, matched, labels)])
        res4, res5 = self.pooled(features, proposals, image_shapes)
        deltas = self.box_regressor(res5)
        identity, logits = self.identity(res4, res5)
        labels_all = torch.cat(labels)
        return [], {
            "loss_box_reg": box_regression_loss(deltas, torch.cat(reg_targets), labels_all),
            "loss_nae": F.binary_cross_entropy_with_logits(logits, (labels_all > 0).to(logits.dtype)),
            "loss_oim": self.oim(identity, pids),
        }

    def detect(self, features: dict[str, Tensor], proposals: list[Tensor],
               image_shapes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """One pass: boxes, scores and embeddings of the same RoIs, NMS-filtered together."""
        counts = [len(p) for p in proposals]
        res4, res5 = self.pooled(features, proposals, image_shapes)
        boxes = self.box_coder.decode(self.box_regressor(res5), proposals).reshape(-1, 4)
        identity, logits = self.identity(res4, res5)
        scores = torch.sigmoid(logits)
        embeddings = identity * scores.unsqueeze(1)
        out = []
        for b, s, e, shape in zip(boxes.split(counts), scores.split(counts), embeddings.split(counts), image_shapes):
            b, s, e = postprocess(b, s, e, shape, self.score_thresh, self.nms_thresh, self.detections_per_img)
            out.append({"boxes": b, "scores": s, "embeddings": e})
        return out
