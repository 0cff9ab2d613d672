"""Settings of supervised fine-tuning of a part-token ViT (PASS's ReID fine-tuning)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...models.part_vit import check_stem_settings

from ..reid_common.config import ReidLossConfig, ReidRecipeConfig


@dataclass(frozen=True)
class PartVitModelConfig:
    """The part-token ViT; ``weights``: a ``pass`` / ``dino`` run (its EMA teacher backbone) or null."""

    arch: str = "vit_small"
    depth: int | None = None
    num_parts: int = 3  # must match the pre-trained run's
    drop_path: float = 0.1
    stem: str = "patch"  # patch: 16x16 patches | mobilenetv2: hybrid ViT on MobileNetV2 (stride 16)
    stem_weights: str | None = "imagenet"  # the mobilenetv2 stem's init: imagenet | null (random)
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.num_parts < 0 or not 0 <= self.drop_path < 1:
            raise ValueError("model.num_parts must be >= 0 and 0 <= model.drop_path < 1")
        check_stem_settings(self.stem, self.stem_weights)


@dataclass(frozen=True)
class PassReidConfig(ReidRecipeConfig):
    """PASS supervised fine-tuning: CE per token (no label smoothing) + soft-margin batch-hard triplet."""

    method: str = "pass_reid"
    model: PartVitModelConfig = field(default_factory=PartVitModelConfig)  # type: ignore[assignment]
    loss: ReidLossConfig = field(default_factory=lambda: ReidLossConfig(label_smoothing=0.0, margin=None))


@dataclass(frozen=True)
class ClusterConfig:
    """Cluster-contrast (PASS's USL fine-tuning): re-clustered at every epoch start."""

    k1: int = 30  # k-reciprocal Jaccard distance
    k2: int = 6
    eps: float = 0.6  # DBSCAN radius (PASS: 0.6 on Market)
    min_samples: int = 4
    temperature: float = 0.05  # cluster memory softmax
    momentum: float = 0.2  # memory update towards each cluster's hardest sample
    iters_per_epoch: int = 200  # PK batches per epoch over the pseudo-labels
    camera_norm: bool = False  # cluster camera-centred features (clusters.camera_centred); not in PASS

    def __post_init__(self) -> None:
        if self.k1 < 1 or self.k2 < 1 or self.eps <= 0 or self.min_samples < 1 or self.iters_per_epoch < 1:
            raise ValueError("cluster.k1, k2, min_samples and iters_per_epoch must be >= 1 and cluster.eps > 0")
        if self.temperature <= 0 or not 0 <= self.momentum <= 1:
            raise ValueError("cluster.temperature must be > 0 and 0 <= cluster.momentum <= 1")


@dataclass(frozen=True)
class PassUslConfig(PassReidConfig):
    """PASS unsupervised fine-tuning: the training split's identities are never read (only its images)."""

    method: str = "pass_usl"
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
