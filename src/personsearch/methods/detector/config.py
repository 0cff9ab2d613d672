"""Settings of the person detector recipe."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...engine.config import EngineConfig
from ..search_common.config import SearchDataConfig


@dataclass(frozen=True)
class DetectorModelConfig:
    """torchvision Faster R-CNN over the C4 split of a backbone (models.search.build_person_detector)."""

    backbone: str = "resnet50"  # resnet18/34/50/101 | mobilenetv2
    weights: str | None = None  # None | "imagenet" (mobilenetv2, offline) | local checkpoint path
    roi_output_size: tuple[int, int] = (14, 14)
    box_batch_size: int = 128
    rpn_pre_nms: tuple[int, int] = (12000, 6000)
    rpn_post_nms: tuple[int, int] = (2000, 300)
    score_thresh: float = 0.05
    nms_thresh: float = 0.4
    detections_per_img: int = 300
    fold_bn: bool = True  # inference: fold frozen BatchNorm into convolutions


@dataclass(frozen=True)
class DetectorEvalConfig:
    """Detection metrics on the test scenes (AP and recall at IoU 0.5)."""

    det_thresh: float = 0.01  # detections scoring below are ignored (SeqNet: 0.01)


@dataclass(frozen=True)
class DetectorRecipeConfig:
    """A whole person detector recipe (scenes of a CUHK-SYSU / PRW-format dataset; pids unused)."""

    method: str = "detector"
    data: SearchDataConfig = field(default_factory=SearchDataConfig)
    model: DetectorModelConfig = field(default_factory=DetectorModelConfig)
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(
        optimizer="sgd", lr=0.003, weight_decay=5e-4, schedule="multistep", milestones=(16,), epochs=20,
        warmup_epochs=1.0, grad_clip=10.0))
    eval: DetectorEvalConfig = field(default_factory=DetectorEvalConfig)
