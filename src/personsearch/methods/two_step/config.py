"""Settings of the two-step recipe: the crop ReID model's, the scenes', and the detector's."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.scene_crops import IsaConfig
from ...data.transforms import AugmentConfig
from ...engine.config import EngineConfig
from ..detector.config import DetectorModelConfig
from ..reid_common.config import ReidLossConfig, ReidModelConfig


@dataclass(frozen=True)
class TwoStepDataConfig:
    """Scenes (CUHK-SYSU / PRW format): their labeled boxes are the ReID training crops."""

    format: str = "cuhk-sysu"
    root: str = "outputs/demo/synth-standard-0/cuhk_sysu"
    height: int = 256  # crop size of the ReID model
    width: int = 128
    p: int = 16  # identities per PK batch
    k: int = 4  # crops per identity (fewer are sampled with replacement)
    workers: int = 2
    test_batch: int = 64
    min_size: int = 900  # scene resize of the detector (as in its own run)
    max_size: int = 1500
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    isa: IsaConfig = field(default_factory=IsaConfig)  # DKD's spatial-invariant augmentation (off: enlarge 1)


@dataclass(frozen=True)
class TwoStepEvalConfig:
    """Protocol knobs, as the end-to-end recipes'."""

    det_thresh: float = 0.5
    gallery_sizes: tuple[int, ...] = ()
    prw_cross_camera: bool = False


@dataclass(frozen=True)
class TwoStepRecipeConfig:
    """A detector run + the crop ReID model this recipe trains (BoT by default)."""

    method: str = "two_step"
    detector_run: str = ""  # a trained `detector` run; its weights are loaded when training starts
    detector: DetectorModelConfig = field(default_factory=DetectorModelConfig)  # must match detector_run's model
    data: TwoStepDataConfig = field(default_factory=TwoStepDataConfig)
    model: ReidModelConfig = field(default_factory=ReidModelConfig)
    loss: ReidLossConfig = field(default_factory=ReidLossConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    eval: TwoStepEvalConfig = field(default_factory=TwoStepEvalConfig)
