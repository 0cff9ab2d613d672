"""End-to-end person search models (NAE, SeqNet), composed C4-style from torchvision detection parts.

    images -> GeneralizedRCNNTransform -> trunk (stride 16, "res4") -> RPN -> proposals
           -> MultiScaleRoIAlign -> RoI heads (nae_heads.py: one head; seqnet_heads.py: two) ->
              boxes, person scores, norm-aware embeddings (res4 + res5 vectors, OIM-trained)

As in NAE/SeqNet the RPN and the RoI head share one stride-16 map: ResNet conv1..layer3 (layer4
is the RoI head) or MobileNetV2 ``features[:14]`` (``features[14:]`` is the RoI head).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from ..backbones import MobileNetV2Backbone, ResNetBackbone, build_backbone
from ..offline_weights import read_checkpoint
from .heads import NormAwareEmbedding, PooledHead
from .nae_heads import NaeRoIHeads
from .seqnet_heads import SeqNetRoIHeads
from .transfer import is_search_state, load_search_init

SEARCH_BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenetv2")
FEATURE_NAME = "feat_res4"
LOSS_KEYS: dict[str, tuple[str, ...]] = {  # what a training forward returns, per head
    "nae": ("loss_objectness", "loss_rpn_box_reg", "loss_box_reg", "loss_nae", "loss_oim"),
    "seqnet": ("loss_objectness", "loss_rpn_box_reg", "loss_proposal_cls", "loss_proposal_reg", "loss_box_reg",
               "loss_nae", "loss_oim"),
}


class PersonSearchModel(nn.Module):
    """Detector + re-identification in one network.

    Training: ``forward(images, targets)`` with targets ``[{"boxes": (N, 4) x1y1x2y2 pixels,
    "pids": (N,) long, -1 = unlabeled}]`` -> dict with the head's ``LOSS_KEYS`` (unweighted); with
    ``crops`` (see :meth:`embed_regions`) also ``crop_identity``, their unit identity features.
    Eval: ``forward(images)`` -> per image ``{"boxes" (N, 4), "scores" (N,), "embeddings" (N, D)}``
    in input-image pixels; embeddings are unit identity features x person score.
    Images are float (3, H, W) in [0, 1]; normalisation and resizing happen inside.
    """

    def __init__(
        self,
        transform: GeneralizedRCNNTransform,
        trunk: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: nn.Module,
    ) -> None:
        super().__init__()
        self.transform, self.trunk, self.rpn, self.roi_heads = transform, trunk, rpn, roi_heads

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None,
        crops: dict[str, list] | None = None,
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        if self.training and targets is None:
            raise ValueError("targets are required in training mode")
        extra = {} if crops is None else {"crop_identity": self.embed_regions(crops["images"], crops["boxes"],
                                                                              crops["scales"])}
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        internal = None if targets is None else [_internal_target(t) for t in targets]
        image_list, internal = self.transform(images, internal)
        features = {FEATURE_NAME: self.trunk(image_list.tensors)}
        proposals, rpn_losses = self.rpn(image_list, features, internal)
        detections, roi_losses = self.roi_heads(features, proposals, image_list.image_sizes, internal)
        if self.training:
            return {**rpn_losses, **roi_losses, **extra}
        return self.transform.postprocess(detections, image_list.image_sizes, original_sizes)

    def embed_regions(self, crops: list[Tensor], boxes: list[Tensor], scales: list[float]) -> Tensor:
        """Unit identity features (N, D) of one box per image region (a crop of a scene, in [0, 1]),
        each resized by ``scale``: the factor its whole scene gets from the transform, so the person
        is seen at the scale of training scenes. Differentiable; the identity batches of training."""
        normalised, scaled = [], []
        for crop, box, scale in zip(crops, boxes, scales):
            image = self.transform.normalize(crop)
            if scale != 1.0:
                image = torch.nn.functional.interpolate(image[None], scale_factor=float(scale), mode="bilinear",
                                                        recompute_scale_factor=True, align_corners=False)[0]
            normalised.append(image)
            scaled.append(torch.as_tensor(box, dtype=torch.float32, device=image.device).reshape(1, 4) * scale)
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in normalised]
        batch = self.transform.batch_images(normalised, size_divisible=self.transform.size_divisible)
        features = {FEATURE_NAME: self.trunk(batch)}
        return torch.cat(self.roi_heads.embed_boxes(features, scaled, sizes))

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
        return self.roi_heads.embed_boxes(features, scaled, image_list.image_sizes)


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
    return split_parts(build_backbone(name, last_stride=2, weights=weights))


def split_parts(backbone: nn.Module) -> tuple[nn.Module, int, nn.Module, int]:
    """(stride-16 trunk, its channels, RoI head blocks, their channels): submodules of ``backbone``."""
    if isinstance(backbone, ResNetBackbone):
        stem = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
        trunk = nn.Sequential(*(getattr(backbone, n) for n in stem))
        trunk_channels = backbone.layer4[0].conv1.in_channels
        return trunk, trunk_channels, backbone.layer4, backbone.out_channels
    if isinstance(backbone, MobileNetV2Backbone):
        features = backbone.features  # features[14] holds the last stride-2 convolution (16 -> 32)
        return features[:14], features[13].out_channels, features[14:], backbone.out_channels
    raise AssertionError(f"unhandled backbone type {type(backbone).__name__}")


HEADS: tuple[str, ...] = ("nae", "seqnet")


def build_person_search_model(
    backbone: str = "resnet50",
    reid_loss: nn.Module | None = None,
    *,
    head: str = "nae",
    weights: str | Path | None = None,
    min_size: int | tuple[int, ...] = 900,
    max_size: int = 1500,
    embedding_dim: int = 256,
    freeze_bn: bool | None = None,
    rpn_pre_nms_top_n: tuple[int, int] = (12000, 6000),
    rpn_post_nms_top_n: tuple[int, int] = (2000, 300),
    box_batch_size_per_image: int = 128,
    fg_iou_thresh: float = 0.5,
    bg_iou_thresh: float = 0.5,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.4,
    detections_per_img: int = 300,
    roi_output_size: int | tuple[int, int] = 14,
    embedding_grad_scale: float = 1.0,
) -> PersonSearchModel:
    """An NAE or SeqNet person search model (defaults follow NAE/SeqNet on CUHK-SYSU).

    head: ``nae`` (one head; the embedding's norm is the person score) or ``seqnet`` (a detection
    head, then a separate res5 copy that re-embeds its boxes).
    reid_loss: the identity loss on the unit embeddings and sampled proposal pids, e.g.
    ``personsearch.losses.OIMLoss(embedding_dim, num_pids, num_cq)`` (the recipe composes it; a
    model built without one is for inference only). Its state (OIM memories) is part of the model's.
    weights: backbone weights as in ``build_backbone`` (None, "imagenet", or a checkpoint path or run
    folder); a person search model's checkpoint (hybrid pre-training) initialises the whole model
    except the OIM memories, across heads (``transfer.py``: what is skipped is logged).
    min_size/max_size: GeneralizedRCNNTransform resize (a tuple of min sizes = multi-scale training).
    freeze_bn: FrozenBatchNorm2d in trunk and heads (default: when ``weights`` is given).
    rpn_*_top_n: (training, testing) proposal counts. fg/bg_iou_thresh: RoI sampling (NAE: 0.5 / 0.1,
    the band between ignored; SeqNet: 0.5 / 0.5). box_score_thresh / box_nms_thresh /
    detections_per_img: test-time filtering. roi_output_size: RoIAlign grid (14 as published; an
    int or (height, width)). embedding_grad_scale: factor on the gradient the identity branch sends
    into shared features (NAE: the pooled head features; SeqNet: the trunk under head 2).
    """
    if head not in HEADS:
        raise ValueError(f"unknown person search head {head!r}; choose from {', '.join(HEADS)}")
    whole = read_checkpoint(weights) if weights is not None and str(weights) != "imagenet" else None
    whole = whole if whole is not None and is_search_state(whole) else None  # else: backbone weights only
    trunk, trunk_channels, head_blocks, head_channels = split_backbone(backbone, None if whole else weights)
    frozen = freeze_bn if freeze_bn is not None else weights is not None
    if frozen:
        freeze_batchnorm(trunk)
        freeze_batchnorm(head_blocks)
    anchors = AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),))
    rpn = RegionProposalNetwork(
        anchors, RPNHead(trunk_channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
        pre_nms_top_n={"training": rpn_pre_nms_top_n[0], "testing": rpn_pre_nms_top_n[1]},
        post_nms_top_n={"training": rpn_post_nms_top_n[0], "testing": rpn_post_nms_top_n[1]},
        nms_thresh=0.7,
    )
    common = dict(
        box_roi_pool=MultiScaleRoIAlign([FEATURE_NAME], output_size=roi_output_size, sampling_ratio=2),
        box_head=PooledHead(head_blocks, trunk_channels, head_channels),
        embedding_head=NormAwareEmbedding([trunk_channels, head_channels], embedding_dim),
        reid_loss=reid_loss, fg_iou_thresh=fg_iou_thresh, bg_iou_thresh=bg_iou_thresh,
        batch_size_per_image=box_batch_size_per_image, positive_fraction=0.5, bbox_reg_weights=None,
        score_thresh=box_score_thresh, nms_thresh=box_nms_thresh, detections_per_img=detections_per_img,
    )
    if head == "nae":
        roi_heads: nn.Module = NaeRoIHeads(embedding_grad_scale=embedding_grad_scale, **common)
    else:
        reid_blocks = copy.deepcopy(head_blocks)  # same initial weights, its own parameters
        roi_heads = SeqNetRoIHeads(box_predictor=_box_predictor(head_channels),
                                   reid_head=PooledHead(reid_blocks, trunk_channels, head_channels),
                                   reid_grad_scale=embedding_grad_scale, **common)
    min_sizes = (min_size,) if isinstance(min_size, int) else tuple(min_size)
    transform = GeneralizedRCNNTransform(min_sizes, max_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    model = PersonSearchModel(transform, trunk, rpn, roi_heads)
    if whole is not None:  # a whole person search model: RPN and heads too, not only the backbone
        load_search_init(model, whole, str(weights))
    return model
