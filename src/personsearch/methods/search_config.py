"""Settings of the end-to-end person search recipes (OIM / NAE), dataclass defaults under YAML."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.config import EngineConfig


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
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(
        optimizer="sgd", lr=0.003, weight_decay=5e-4, schedule="multistep", milestones=(16,), epochs=20,
        warmup_epochs=1.0, grad_clip=10.0))
    eval: SearchEvalConfig = field(default_factory=SearchEvalConfig)
