"""Settings of PASS / DINO pre-training: unlabeled crops, multi-crop views, the part-token ViT, the
self-distillation loss. Engine defaults follow PASS (AdamW, cosine lr and weight decay .04 -> .4,
gradient clip 3, EMA teacher .996 -> 1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.multicrop import MultiCropConfig
from ...engine.config import EngineConfig
from ...models.part_vit import check_stem_settings
from ..reid_common.config import ReidEvalConfig


@dataclass(frozen=True)
class PassDataConfig:
    """Unlabeled person crops (any folder of images), how they are viewed, and an optional labeled
    Market-format set on which each evaluation ranks with the teacher's features (no training on it)."""

    root: str = "outputs/demo/synth-standard-0/unlabeled"
    views: MultiCropConfig = field(default_factory=MultiCropConfig)
    batch_size: int = 64
    workers: int = 2
    eval_format: str = "market1501"
    eval_root: str | None = "outputs/demo/synth-standard-0/market1501"  # null: no evaluation
    test_batch: int = 128

    def __post_init__(self) -> None:
        if self.batch_size < 2 or self.workers < 0 or self.test_batch < 1:
            raise ValueError("data.batch_size must be >= 2, data.workers >= 0 and data.test_batch >= 1")


@dataclass(frozen=True)
class PassModelConfig:
    """The student ViT (the teacher is its EMA copy) and the DINO heads, one per token type."""

    arch: str = "vit_small"  # vit_tiny | vit_small | vit_base (timm sizes, patch 16)
    depth: int | None = None  # fewer blocks than the timm size (CPU recipes); null = as published
    num_parts: int = 3  # [PART] tokens and part areas; 0 = DINO (one [CLS] token)
    drop_path: float = 0.1  # student only; the teacher runs in eval mode
    stem: str = "patch"  # patch: 16x16 patches | mobilenetv2: hybrid ViT on MobileNetV2 (stride 16)
    stem_weights: str | None = "imagenet"  # the mobilenetv2 stem's init: imagenet | null (random)
    out_dim: int = 65536  # prototypes per head
    hidden_dim: int = 2048
    bottleneck_dim: int = 256

    def __post_init__(self) -> None:
        if self.num_parts < 0 or self.out_dim < 2 or not 0 <= self.drop_path < 1:
            raise ValueError("model.num_parts must be >= 0, model.out_dim >= 2 and 0 <= model.drop_path < 1")
        check_stem_settings(self.stem, self.stem_weights)


@dataclass(frozen=True)
class PassLossConfig:
    """Self-distillation: temperatures, centring, and the frozen-last-layer warm-up."""

    student_temp: float = 0.1
    teacher_temp: float = 0.04
    center_momentum: float = 0.9
    freeze_last_layer_epochs: int = 1  # the prototype layer gets no gradient during these epochs
    target_shift: int = 0  # control, not PASS: > 0 matches image i's views to image i + shift's teacher

    def __post_init__(self) -> None:
        if self.student_temp <= 0 or self.teacher_temp <= 0 or not 0 <= self.center_momentum <= 1:
            raise ValueError("loss temperatures must be > 0 and 0 <= loss.center_momentum <= 1")
        if self.target_shift < 0:
            raise ValueError(f"loss.target_shift must be >= 0, got {self.target_shift}")


def _pass_engine() -> EngineConfig:
    return EngineConfig(epochs=100, optimizer="adamw", lr=5e-4 * 64 / 256, weight_decay=0.04, weight_decay_end=0.4,
                        schedule="cosine", warmup_epochs=10, min_lr=1e-6, grad_clip=3.0)


@dataclass(frozen=True)
class PassConfig:
    """PASS pre-training (``method: pass``; ``model.num_parts: 0`` is the DINO ablation)."""

    method: str = "pass"
    data: PassDataConfig = field(default_factory=PassDataConfig)
    model: PassModelConfig = field(default_factory=PassModelConfig)
    loss: PassLossConfig = field(default_factory=PassLossConfig)
    engine: EngineConfig = field(default_factory=_pass_engine)
    eval: ReidEvalConfig = field(default_factory=ReidEvalConfig)

    def __post_init__(self) -> None:
        if self.loss.target_shift % self.data.batch_size == 0 and self.loss.target_shift:
            raise ValueError(f"loss.target_shift {self.loss.target_shift} pairs each image with itself in a batch of "
                             f"data.batch_size {self.data.batch_size}: use 0 (the method) or a shift it does not divide")


@dataclass(frozen=True)
class DinoConfig(PassConfig):
    """DINO, the ablation of PASS: the same recipe with no [PART] token (local views of the whole crop)."""

    method: str = "dino"
    model: PassModelConfig = field(default_factory=lambda: PassModelConfig(num_parts=0))
