"""SeqNet's two sequential RoI heads (Li & Miao, AAAI 2021): detect first, then re-embed.

Head 1 (a res5 copy + Faster R-CNN predictor) classifies and regresses the RPN proposals. Its
regressed boxes, detached, are matched and sampled again and go through head 2 (a separate res5
copy): a class-agnostic regressor refines them once more, and a norm-aware embedding gives the
person score (BCE) and the identity feature (OIM). Detection and re-identification thus have their
own res5 stages; only the trunk is shared. At test, head 1's boxes (score threshold, NMS) are
re-pooled for head 2, whose regressed boxes and embeddings (identity x head-1 score) are NMS-ed again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import boxes as box_ops

from .heads import BoxRegressor, check_training_inputs, NormAwareEmbedding, PooledHead, box_regression_loss, postprocess, sampled_pids, scale_gradient


class SeqNetRoIHeads(RoIHeads):
    """Losses: ``loss_proposal_cls``, ``loss_proposal_reg`` (head 1), ``loss_box_reg``, ``loss_nae``,
    ``loss_oim`` (head 2). ``reid_grad_scale`` scales the gradient head 2 sends into the shared trunk
    (head 2 itself learns at full rate). Inference per image: ``boxes``, ``scores``, ``embeddings``."""

    def __init__(self, *, box_roi_pool: nn.Module, box_head: PooledHead, box_predictor: FastRCNNPredictor,
                 reid_head: PooledHead, embedding_head: NormAwareEmbedding, reid_loss: nn.Module | None,
                 reid_grad_scale: float = 1.0, second_nms_thresh: float = 0.5, **roi_kwargs) -> None:
        super().__init__(box_roi_pool=box_roi_pool, box_head=box_head, box_predictor=box_predictor, **roi_kwargs)
        self.reid_head = reid_head
        self.box_regressor = BoxRegressor(reid_head.out_channels)
        self.embedding_head = embedding_head
        self.oim = reid_loss
        self.reid_grad_scale = float(reid_grad_scale)
        self.second_nms_thresh = float(second_nms_thresh)

    def second(self, features: dict[str, Tensor], boxes: list[Tensor],
               image_shapes: list[tuple[int, int]]) -> tuple[Tensor, Tensor, Tensor]:
        """Head 2 on ``boxes``: (deltas (N, 4), unit identity (N, D), person logits (N,))."""
        shared = {k: scale_gradient(v, self.reid_grad_scale) for k, v in features.items()}
        res4, res5 = self.reid_head(self.box_roi_pool(shared, boxes, image_shapes))
        identity, logits = self.embedding_head([res4, res5])
        return self.box_regressor(res5), identity, logits

    def embed_boxes(self, features: dict[str, Tensor], boxes: list[Tensor],
                    image_shapes: list[tuple[int, int]]) -> list[Tensor]:
        """Unit identity features (n_i, D) of given boxes through head 2, per image: the query path."""
        if sum(len(b) for b in boxes) == 0:
            return [b.new_zeros((0, self.embedding_head.dim)) for b in boxes]
        _, identity, _ = self.second(features, boxes, image_shapes)
        return list(identity.split([len(b) for b in boxes]))

    def _first(self, features, boxes, image_shapes) -> tuple[Tensor, Tensor]:
        _, res5 = self.box_head(self.box_roi_pool(features, boxes, image_shapes))
        return self.box_predictor(res5)

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None = None) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        if not self.training:
            return self.detect(features, proposals, image_shapes), {}
        check_training_inputs(targets, self.oim)
        proposals, _, labels, reg_targets = self.select_training_samples(proposals, targets)
        class_logits, deltas = self._first(features, proposals, image_shapes)
        loss_cls, loss_reg = fastrcnn_loss(class_logits, deltas, labels, reg_targets)
        counts = [len(p) for p in proposals]
        boxes = self.box_coder.decode(deltas.detach(), proposals)[:, 1]  # the person class's boxes
        boxes = [box_ops.clip_boxes_to_image(b, shape) for b, shape in zip(boxes.split(counts), image_shapes)]
        boxes, matched, labels2, reg_targets2 = self.select_training_samples(boxes, targets)
        pids = torch.cat([sampled_pids(t["pids"], m, lab) for t, m, lab in zip(targets, matched, labels2)])
        deltas2, identity, logits = self.second(features, boxes, image_shapes)
        labels2 = torch.cat(labels2)
        return [], {
            "loss_proposal_cls": loss_cls,
            "loss_proposal_reg": loss_reg,
            "loss_box_reg": box_regression_loss(deltas2, torch.cat(reg_targets2), labels2),
            "loss_nae": F.binary_cross_entropy_with_logits(logits, (labels2 > 0).to(logits.dtype)),
            "loss_oim": self.oim(identity, pids),
        }

    def detect(self, features: dict[str, Tensor], proposals: list[Tensor],
               image_shapes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Head 1 boxes (thresholded, NMS), re-pooled through head 2 for refined boxes and embeddings."""
        class_logits, deltas = self._first(features, proposals, image_shapes)
        boxes, scores, _ = self.postprocess_detections(class_logits, deltas, proposals, image_shapes)
        counts = [len(b) for b in boxes]
        if sum(counts) == 0:
            dim = self.embedding_head.dim
            return [{"boxes": b, "scores": s, "embeddings": b.new_zeros((0, dim))} for b, s in zip(boxes, scores)]
        deltas2, identity, _ = self.second(features, boxes, image_shapes)
        refined = self.box_coder.decode(deltas2, boxes).reshape(-1, 4)
        embeddings = identity * torch.cat(scores).unsqueeze(1)
        out = []
        for b, s, e, shape in zip(refined.split(counts), scores, embeddings.split(counts), image_shapes):
            b, s, e = postprocess(b, s, e, shape, self.score_thresh, self.second_nms_thresh, self.detections_per_img)
            out.append({"boxes": b, "scores": s, "embeddings": e})
        return out
