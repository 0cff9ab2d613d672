"""Hybrid pre-training's settings: the sub-task data, the batch mix, the alignment and loss weights.

The model section is the person search recipes' (``SearchModelConfig``); the pre-trained run
initialises any of them through their ``model.weights``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.crop_regions import CROP_MODES
from ...engine.config import EngineConfig
from ..search_common.config import SearchLossConfig, SearchModelConfig

ALIGN_SCOPES = ("all", "task")


@dataclass(frozen=True)
class HybridBatchConfig:
    """What one training step holds besides ``data.batch_size`` detection scenes."""

    p: int = 8  # identities of the ReID crops (PK sampling over every ReID dataset)
    k: int = 2  # crops per identity
    scene_persons: int = 8  # people cut from the detection scenes (no identity: alignment + OIM queue)
    unlabeled: int = 0  # unlabeled crops (data.unlabeled_root; no identity: alignment + OIM queue)


@dataclass(frozen=True)
class HybridDataConfig:
    """Sub-task data only: detection scenes (no identities) and ReID crops (identities)."""

    detection_format: str = "coco"
    detection_roots: tuple[str, ...] = ("outputs/demo/synth-standard-0/detection/annotations/instances_person.json",)
    reid_format: str = "market1501"
    reid_roots: tuple[str, ...] = ("outputs/demo/synth-standard-0/market1501",)
    unlabeled_root: str = ""  # a folder of unlabeled crops ("" = none)
    eval_scenes: float = 0.1  # share of each detection dataset held out for det_AP (the last images)
    crop_mode: str = "crop"  # crop: a crop is a scene whose one box is the crop | paste: pasted into detection scenes
    crop_height: int = 128  # ReID crops are resized so the person is this many pixels tall in the model
    paste_context: float = 1.5  # paste: the background patch is this multiple of the crop's size
    scene_context: float = 1.3  # scene persons: box enlarged by this, clipped to the scene
    flip: bool = True
    batch_size: int = 2  # detection scenes per step
    batch: HybridBatchConfig = field(default_factory=HybridBatchConfig)
    workers: int = 2
    min_size: int = 360
    max_size: int = 480

    def __post_init__(self) -> None:
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"data.crop_mode must be one of {', '.join(CROP_MODES)}, got {self.crop_mode!r}")
        if not self.detection_roots or not self.reid_roots:
            raise ValueError("hybrid pre-training needs detection_roots and reid_roots (one dataset at least each)")
        if not 0.0 <= self.eval_scenes < 1.0:
            raise ValueError(f"data.eval_scenes must be in [0, 1), got {self.eval_scenes}")


@dataclass(frozen=True)
class AlignConfig:
    """Intra-task alignment (``losses/moments.py``): moments of the sources' person features matched
    within each group of sources; weight ``loss.align`` (0 = off)."""

    scope: str = "all"  # all: every source with every other | task: detection datasets among themselves, crop datasets among themselves
    min_rows: int = 2  # a source needs this many rows in a batch to count

    def __post_init__(self) -> None:
        if self.scope not in ALIGN_SCOPES:
            raise ValueError(f"align.scope must be one of {', '.join(ALIGN_SCOPES)}, got {self.scope!r}")


@dataclass(frozen=True)
class HybridLossConfig(SearchLossConfig):
    """SeqNet's detection weights; identity losses on the ReID crops; the alignment term."""

    proposal_reg: float = 10.0
    box_reg: float = 1.0
    align: float = 1.0


@dataclass(frozen=True)
class HybridEvalConfig:
    """Pre-training monitors: det AP on held-out detection scenes, ReID mAP on each ReID test split."""

    det_thresh: float = 0.5
    batch: int = 32


@dataclass(frozen=True)
class HybridConfig:
    """Hybrid pre-training of a whole person search model (SeqNet heads by default: they initialise
    SeqNet and, head 2 being NAE's head, NAE too)."""

    method: str = "hybrid_pretrain"
    data: HybridDataConfig = field(default_factory=HybridDataConfig)
    model: SearchModelConfig = field(default_factory=lambda: SearchModelConfig(head="seqnet", bg_iou=0.5))
    loss: HybridLossConfig = field(default_factory=HybridLossConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(
        optimizer="adam", lr=3e-4, weight_decay=5e-4, schedule="cosine", epochs=3, warmup_epochs=0.2))
    eval: HybridEvalConfig = field(default_factory=HybridEvalConfig)
