"""Settings of the end-to-end person search recipes (OIM / NAE), dataclass defaults under YAML."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...engine.config import EngineConfig


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


@dataclass(frozen=True)
class SearchModelConfig:
    """Faster R-CNN (C4) with a norm-aware embedding head."""

    backbone: str = "resnet50"  # resnet50 | resnet18 | mobilenetv2
    weights: str | None = None  # None | "imagenet" (mobilenetv2, offline) | local checkpoint path
    num_cq: int = 5000  # circular queue of unlabeled persons (capped by the dataset's unlabeled boxes)
    roi_output_size: int = 14  # RoIAlign grid into the res5 head; 8 is ~3x cheaper on a CPU
    box_batch_size: int = 128  # sampled proposals per image for the box/identity losses
    rpn_post_nms: tuple[int, int] = (2000, 300)  # proposals kept after NMS (training, testing)
    detections_per_img: int = 300  # at most this many people per image at test time
    embedding_grad_scale: float = 1.0  # < 1 damps the NAE/OIM gradient into the shared detector features
    embedding_lr_mult: float = 1.0  # learning rate of the embedding head relative to engine.lr


@dataclass(frozen=True)
class SearchLossConfig:
    """Weight of each loss term in the total (1.0 = as in NAE)."""

    objectness: float = 1.0
    rpn_box_reg: float = 1.0
    box_cls: float = 1.0
    box_reg: float = 1.0
    nae: float = 1.0
    oim: float = 1.0


@dataclass(frozen=True)
class SearchEvalConfig:
    """Protocol knobs (protocols.md): detection threshold, gallery sizes, PRW camera mode."""

    det_thresh: float = 0.5
    gallery_sizes: tuple[int, ...] = ()  # CUHK-SYSU sizes to report; empty = every size the dataset has
    prw_cross_camera: bool = False


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
