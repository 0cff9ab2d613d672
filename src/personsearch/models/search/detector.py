"""A plain person detector with the person search models' C4 layout: torchvision's ``FasterRCNN``
over the same trunk / res5 split (the detector of two-step search).

    images -> trunk (stride 16) -> RPN -> RoIAlign -> res5 blocks + max pool -> person / background
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from .model import freeze_batchnorm, split_backbone


class Res5Vector(nn.Module):
    """RoI features -> res5 blocks -> global max pool (N, C)."""

    def __init__(self, blocks: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.blocks, self.out_channels = blocks, out_channels

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_max_pool2d(self.blocks(x), 1).flatten(1)


def build_person_detector(backbone: str = "resnet50", *, weights: str | Path | None = None,
                          min_size: int = 900, max_size: int = 1500, roi_output_size: tuple[int, int] = (14, 14),
                          rpn_pre_nms_top_n: tuple[int, int] = (12000, 6000),
                          rpn_post_nms_top_n: tuple[int, int] = (2000, 300), box_batch_size_per_image: int = 128,
                          box_score_thresh: float = 0.05, box_nms_thresh: float = 0.4,
                          detections_per_img: int = 300, freeze_bn: bool | None = None) -> FasterRCNN:
    """torchvision ``FasterRCNN`` (2 classes) on the C4 split of ``backbone`` (see ``split_backbone``).

    Training: ``model(images, [{"boxes", "labels"}])`` -> losses; eval: ``model(images)`` ->
    ``[{"boxes", "labels", "scores"}]``. Frozen BatchNorm when ``weights`` are given (default).
    """
    trunk, trunk_channels, blocks, head_channels = split_backbone(backbone, weights)
    if freeze_bn if freeze_bn is not None else weights is not None:
        freeze_batchnorm(trunk)
        freeze_batchnorm(blocks)
    trunk.out_channels = trunk_channels
    predictor = FastRCNNPredictor(head_channels, 2)
    for layer, std in ((predictor.cls_score, 0.01), (predictor.bbox_pred, 0.001)):
        nn.init.normal_(layer.weight, std=std)
        nn.init.zeros_(layer.bias)
    return FasterRCNN(
        trunk, num_classes=None, min_size=min_size, max_size=max_size,
        rpn_anchor_generator=AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)),
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n[0], rpn_pre_nms_top_n_test=rpn_pre_nms_top_n[1],
        rpn_post_nms_top_n_train=rpn_post_nms_top_n[0], rpn_post_nms_top_n_test=rpn_post_nms_top_n[1],
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=tuple(roi_output_size), sampling_ratio=2),
        box_head=Res5Vector(blocks, head_channels), box_predictor=predictor,
        box_score_thresh=box_score_thresh, box_nms_thresh=box_nms_thresh, box_detections_per_img=detections_per_img,
        box_batch_size_per_image=box_batch_size_per_image)
