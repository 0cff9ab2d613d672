"""End-to-end person search model (OIM + NAE), composed C4-style from torchvision detection parts.

    images -> GeneralizedRCNNTransform -> trunk (stride 16, "res4") -> RPN -> proposals
           -> MultiScaleRoIAlign 14x14 -> res5 head + max pool -> FastRCNNPredictor (person / bg)
                                                              -> NormAwareEmbedding (NAE + OIM)

As in NAE/SeqNet the RPN and the RoI head share one stride-16 map: ResNet conv1..layer3 (layer4
is the RoI head) or MobileNetV2 ``features[:14]`` (``features[14:]`` is the RoI head).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from ..backbones import MobileNetV2Backbone, ResNetBackbone, build_backbone
from .heads import NormAwareEmbedding, PooledHead, SearchRoIHeads

SEARCH_BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenetv2")
FEATURE_NAME = "feat_res4"
LOSS_KEYS: tuple[str, ...] = (
    "loss_objectness", "loss_rpn_box_reg", "loss_box_cls", "loss_box_reg", "loss_nae", "loss_oim"
)


class PersonSearchModel(nn.Module):
    """Detector + re-identification in one network.

    Training: ``forward(images, targets)`` with targets ``[{"boxes": (N, 4) x1y1x2y2 pixels,
    "pids": (N,) long, -1 = unlabeled}]`` -> dict with the ``LOSS_KEYS`` (unweighted).
    Eval: ``forward(images)`` -> per image ``{"boxes" (N, 4), "scores" (N,), "embeddings" (N, D)}``
    in input-image pixels; embeddings are NAE outputs (unit direction x person probability).
    Images are float (3, H, W) in [0, 1]; normalisation and resizing happen inside.
    """

    def __init__(
        self,
        transform: GeneralizedRCNNTransform,
        trunk: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: SearchRoIHeads,
    ) -> None:
        super().__init__()
        self.transform, self.trunk, self.rpn, self.roi_heads = transform, trunk, rpn, roi_heads

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        if self.training and targets is None:
            raise ValueError("targets are required in training mode")
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        internal = None if targets is None else [_internal_target(t) for t in targets]
        image_list, internal = self.transform(images, internal)
        features = {FEATURE_NAME: self.trunk(image_list.tensors)}
        proposals, rpn_losses = self.rpn(image_list, features, internal)
        detections, roi_losses = self.roi_heads(features, proposals, image_list.image_sizes, internal)
        if self.training:
            return {**rpn_losses, **roi_losses}
        return self.transform.postprocess(detections, image_list.image_sizes, original_sizes)

    def extract_query(self, images: list[Tensor], boxes: list[Tensor]) -> list[Tensor]:
        """Embeddings (n_i, D) of given boxes (input-image pixels), one tensor per image.

        The query path: RoI head on the given GT boxes, no RPN. Returns the unit-norm identity
        feature (not scaled by the person probability, which would scale every similarity of
        one query alike). Call in eval mode (and under ``torch.no_grad()`` unless training on it).
        """
        targets = [{"boxes": b.to(torch.float32)} for b in boxes]
        image_list, targets = self.transform(images, targets)
        features = {FEATURE_NAME: self.trunk(image_list.tensors)}
        scaled = [t["boxes"] for t in targets]
        return self.roi_heads.embed_boxes(features, scaled, image_list.image_sizes, query=True)


def _internal_target(target: dict[str, Tensor]) -> dict[str, Tensor]:
    """The torchvision target: float boxes, all-person ``labels`` (1), and the ``pids`` carried along."""
    boxes = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
    pids = torch.as_tensor(target["pids"], dtype=torch.long, device=boxes.device).reshape(-1)
    if len(pids) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(pids)} pids in a target")
    return {"boxes": boxes, "labels": torch.ones_like(pids), "pids": pids}


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` under ``module`` by a ``FrozenBatchNorm2d`` with its statistics (in place)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def _box_predictor(in_channels: int) -> FastRCNNPredictor:
    """Person/background predictor with Detectron's small init (std 0.01 scores, 0.001 deltas):
    pooled res5 features are large, default Linear init gives overconfident first steps."""
    predictor = FastRCNNPredictor(in_channels, 2)
    for layer, std in ((predictor.cls_score, 0.01), (predictor.bbox_pred, 0.001)):
        nn.init.normal_(layer.weight, std=std)
        nn.init.zeros_(layer.bias)
    return predictor


def split_backbone(name: str, weights: str | Path | None = None) -> tuple[nn.Module, int, nn.Module, int]:
    """(stride-16 trunk, its channels, RoI head blocks, their channels) of backbone ``name``."""
    if name not in SEARCH_BACKBONES:
        raise ValueError(f"unknown person search backbone {name!r}; choose from {', '.join(SEARCH_BACKBONES)}")
    backbone = build_backbone(name, last_stride=2, weights=weights)
    if isinstance(backbone, ResNetBackbone):
        stem = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
        trunk = nn.Sequential(*(getattr(backbone, n) for n in stem))
        trunk_channels = backbone.layer4[0].conv1.in_channels
        return trunk, trunk_channels, backbone.layer4, backbone.out_channels
    if isinstance(backbone, MobileNetV2Backbone):
        features = backbone.features  # features[14] holds the last stride-2 convolution (16 -> 32)
        return features[:14], features[13].out_channels, features[14:], backbone.out_channels
    raise AssertionError(f"unhandled backbone type {type(backbone).__name__}")


def build_person_search_model(
    backbone: str = "resnet50",
    reid_loss: nn.Module | None = None,
    *,
    weights: str | Path | None = None,
    min_size: int | tuple[int, ...] = 900,
    max_size: int = 1500,
    embedding_dim: int = 256,
    freeze_bn: bool | None = None,
    rpn_pre_nms_top_n: tuple[int, int] = (12000, 6000),
    rpn_post_nms_top_n: tuple[int, int] = (2000, 300),
    box_batch_size_per_image: int = 128,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.4,
    detections_per_img: int = 300,
    roi_output_size: int = 14,
    embedding_grad_scale: float = 1.0,
) -> PersonSearchModel:
    """Build an NAE person search model (defaults follow NAE/SeqNet on CUHK-SYSU).

    reid_loss: the identity loss on the unit embeddings and sampled proposal pids, e.g.
    ``personsearch.losses.OIMLoss(embedding_dim, num_pids, num_cq)`` (the recipe composes it; a
    model built without one is for inference only). Its state (OIM memories) is part of the model's.

    weights: backbone weights as in ``build_backbone`` (None, "imagenet", or a checkpoint path).
    min_size/max_size: GeneralizedRCNNTransform resize (a tuple of min sizes = multi-scale training).
    freeze_bn: use FrozenBatchNorm2d in trunk and head (default: True when ``weights`` is given,
    the usual detection choice for small batches; False for random init so BN can learn).
    rpn_pre_nms_top_n / rpn_post_nms_top_n: (training, testing) proposal counts.
    roi_output_size: RoIAlign grid fed to the res5 head (14 as in NAE; 8 is ~3x cheaper on a CPU).
    embedding_grad_scale: factor on the gradient the NAE/OIM losses send into the shared features.
    """
    trunk, trunk_channels, head_blocks, head_channels = split_backbone(backbone, weights)
    if freeze_bn if freeze_bn is not None else weights is not None:
        freeze_batchnorm(trunk)
        freeze_batchnorm(head_blocks)
    anchors = AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),))
    rpn = RegionProposalNetwork(
        anchors,
        RPNHead(trunk_channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_top_n={"training": rpn_pre_nms_top_n[0], "testing": rpn_pre_nms_top_n[1]},
        post_nms_top_n={"training": rpn_post_nms_top_n[0], "testing": rpn_post_nms_top_n[1]},
        nms_thresh=0.7,
    )
    roi_heads = SearchRoIHeads(
        embedding_head=NormAwareEmbedding(head_channels, embedding_dim),
        oim=reid_loss,
        embedding_grad_scale=embedding_grad_scale,
        box_roi_pool=MultiScaleRoIAlign([FEATURE_NAME], output_size=roi_output_size, sampling_ratio=2),
        box_head=PooledHead(head_blocks, head_channels),
        box_predictor=_box_predictor(head_channels),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=box_batch_size_per_image,
        positive_fraction=0.5,
        bbox_reg_weights=None,
        score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh,
        detections_per_img=detections_per_img,
    )
    min_sizes = (min_size,) if isinstance(min_size, int) else tuple(min_size)
    transform = GeneralizedRCNNTransform(min_sizes, max_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    return PersonSearchModel(transform, trunk, rpn, roi_heads)
