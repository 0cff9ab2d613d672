"""Settings of the end-to-end person search recipes (OIM / NAE), dataclass defaults under YAML."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.scene_crops import IsaConfig
from ...engine.config import EngineConfig


@dataclass(frozen=True)
class IdentityBatchConfig:
    """Identity batches (a CPU-budget variant, off as published): with every scene batch, ``p``
    identities x ``k`` labeled people cut from the training scenes (box enlarged by ``context``, at
    the scenes' scale, boxes jittered by ``isa``, mirrored with probability ``flip``) go through the
    identity branch, trained with OIM + batch-hard triplet (``loss.crop_oim``, ``loss.crop_triplet``).
    A scene batch carries about two labeled people; this gives identity learning PK batches."""

    p: int = 0  # identities per batch; 0 = off
    k: int = 2
    context: float = 1.3
    flip: float = 0.5
    isa: IsaConfig = field(default_factory=lambda: IsaConfig(enlarge=1.1, min_side=0.85))


@dataclass(frozen=True)
class SearchDataConfig:
    """Which scenes, at what size, batched how."""

    format: str = "cuhk-sysu"  # cuhk-sysu | prw
    root: str = "outputs/demo/synth-standard-0/cuhk_sysu"
    batch_size: int = 2
    workers: int = 2
    flip: bool = True
    min_size: int = 480  # torchvision GeneralizedRCNNTransform resize (shorter side)
    max_size: int = 800
    identity_batch: IdentityBatchConfig = field(default_factory=IdentityBatchConfig)
    train_fraction: float = 1.0  # train on this share of the training scenes (a fixed subset by subset_seed)
    subset_seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"data.train_fraction must be in (0, 1], got {self.train_fraction}")


@dataclass(frozen=True)
class SearchModelConfig:
    """Faster R-CNN (C4) with NAE or SeqNet heads (models.search.build_person_search_model)."""

    head: str = "nae"  # nae | seqnet
    backbone: str = "resnet50"  # resnet18/34/50/101 | mobilenetv2
    weights: str | None = None  # None | "imagenet" (mobilenetv2, offline) | local checkpoint path
    num_cq: int = 5000  # circular queue of unlabeled persons (capped by the dataset's unlabeled boxes)
    roi_output_size: tuple[int, int] = (14, 14)  # RoIAlign grid (height, width) into the res5 head
    box_batch_size: int = 128  # sampled proposals per image for the box/identity losses
    fg_iou: float = 0.5  # RoI sampling: foreground at IoU >= fg_iou ...
    bg_iou: float = 0.5  # ... background below bg_iou (NAE: 0.1; the band between is ignored)
    rpn_pre_nms: tuple[int, int] = (12000, 6000)  # proposals before NMS (training, testing)
    rpn_post_nms: tuple[int, int] = (2000, 300)  # proposals kept after NMS (training, testing)
    score_thresh: float = 0.05  # test: detections below this score are dropped before NMS
    nms_thresh: float = 0.4  # test: NMS IoU
    detections_per_img: int = 300  # at most this many people per image at test time
    embedding_grad_scale: float = 1.0  # < 1 damps the identity gradient into shared features
    embedding_lr_mult: float = 1.0  # learning rate of the embedding head relative to engine.lr
    fold_bn: bool = True  # inference: fold frozen BatchNorm into convolutions (same outputs, faster)

    def __post_init__(self) -> None:
        if self.head not in ("nae", "seqnet"):
            raise ValueError(f"model.head must be nae or seqnet, got {self.head!r}")
        if len(self.roi_output_size) != 2 or min(self.roi_output_size) < 1:
            raise ValueError(f"model.roi_output_size must be [height, width], got {list(self.roi_output_size)}")


@dataclass(frozen=True)
class SearchLossConfig:
    """Weight of each loss term in the total (NAE: box_reg 10; SeqNet: proposal_reg 10, box_reg 1)."""

    objectness: float = 1.0
    rpn_box_reg: float = 1.0
    proposal_cls: float = 1.0  # SeqNet head 1
    proposal_reg: float = 10.0  # SeqNet head 1
    box_reg: float = 10.0  # NAE's regressor (SeqNet recipe: 1)
    nae: float = 1.0  # person score on the embedding's norm
    oim: float = 1.0
    crop_oim: float = 1.0  # identity batches (data.identity_batch): OIM on their embeddings ...
    crop_triplet: float = 1.0  # ... and batch-hard triplet (L2 of unit embeddings)
    triplet_margin: float = 0.3


@dataclass(frozen=True)
class SearchEvalConfig:
    """Protocol knobs (protocols.md): detection threshold, gallery sizes, PRW camera mode."""

    det_thresh: float = 0.5
    gallery_sizes: tuple[int, ...] = ()  # CUHK-SYSU sizes to report; empty = every size the dataset has
    prw_cross_camera: bool = False
    cbgm: bool = False  # also report SeqNet's context bipartite graph matching (keys ..._cbgm)
    cbgm_k: tuple[int, int] = (10, 3)  # (k1 top gallery detections, k2 people of the query image); PRW: (30, 4)
    imagenet_baseline: bool = False  # also score ImageNet MobileNetV2 crops of the same detections (..._imagenet)


@dataclass(frozen=True)
class SearchRecipeConfig:
    """A whole person search recipe."""

    method: str = "nae"
    data: SearchDataConfig = field(default_factory=SearchDataConfig)
    model: SearchModelConfig = field(default_factory=SearchModelConfig)
    loss: SearchLossConfig = field(default_factory=SearchLossConfig)
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(
        optimizer="sgd", lr=0.003, weight_decay=5e-4, schedule="multistep", milestones=(16,), epochs=20,
        warmup_epochs=1.0, grad_clip=10.0))
    eval: SearchEvalConfig = field(default_factory=SearchEvalConfig)
