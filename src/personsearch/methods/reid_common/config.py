"""Settings of the ReID recipes, as dataclass defaults that YAML recipes override."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.transforms import AugmentConfig
from ...distance import check_metric
from ...engine.config import EngineConfig


def _choose(name: str, value: object, allowed: tuple) -> None:
    """ValueError naming setting ``name`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


@dataclass(frozen=True)
class ReidDataConfig:
    """Which dataset, at what size, sampled how."""

    format: str = "market1501"  # any reader of personsearch.data.registry with train/query/gallery
    root: str = "outputs/demo/synth-standard-0/market1501"
    height: int = 256
    width: int = 128
    p: int = 16  # identities per batch
    k: int = 4  # images per identity
    workers: int = 2
    test_batch: int = 128
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        for name in ("height", "width", "p", "k", "test_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class ReidModelConfig:
    """The network: backbone (random init, offline ImageNet weights or a local file) and head."""

    backbone: str = "resnet50"
    weights: str | None = None  # None | "imagenet" (mobilenetv2) | path to a checkpoint
    last_stride: int = 1
    pooling: str = "avg"  # avg | max | gem
    neck: str = "bnneck"  # bnneck | none
    embed_dim: int | None = None

    def __post_init__(self) -> None:
        _choose("model.pooling", self.pooling, ("avg", "max", "gem"))
        _choose("model.neck", self.neck, ("bnneck", "none"))
        _choose("model.last_stride", self.last_stride, (1, 2))
        if self.embed_dim is not None and self.embed_dim < 1:
            raise ValueError(f"model.embed_dim must be a positive embedding size or null, got {self.embed_dim}")


@dataclass(frozen=True)
class ReidLossConfig:
    """BoT losses: label-smoothed cross-entropy + batch-hard triplet."""

    id_weight: float = 1.0
    label_smoothing: float = 0.1
    triplet_weight: float = 1.0
    margin: float | None = 0.3  # None = soft margin
    metric: str = "l2"  # personsearch.distance metric of the triplet loss: l2 (BoT) | sql2 | cosine

    def __post_init__(self) -> None:
        check_metric(self.metric, "loss.metric")


@dataclass(frozen=True)
class ReidEvalConfig:
    """Test protocol: distance, optional re-ranking, flip averaging, precision, report."""

    metric: str = "cosine"  # personsearch.distance metric: cosine | l2 | sql2 (torchreid's "euclidean")
    rerank: bool = False  # also report k-reciprocal re-ranked metrics
    flip: bool = False
    precision: str = "fp32"  # fp32 | bf16
    max_rank: int = 50
    report_queries: int = 0  # >0 writes a ranked-list HTML report for that many queries
    report_file: str = "ranked_lists.html"  # where: absolute, or relative to the run folder

    def __post_init__(self) -> None:
        check_metric(self.metric, "eval.metric")
        _choose("eval.precision", self.precision, ("fp32", "bf16"))
        if self.max_rank < 1 or self.report_queries < 0:
            raise ValueError(f"eval.max_rank must be >= 1 and eval.report_queries >= 0, "
                             f"got {self.max_rank} and {self.report_queries}")


@dataclass(frozen=True)
class ReidRecipeConfig:
    """A whole ReID recipe: method name + its parts."""

    method: str = "baseline"
    data: ReidDataConfig = field(default_factory=ReidDataConfig)
    model: ReidModelConfig = field(default_factory=ReidModelConfig)
    loss: ReidLossConfig = field(default_factory=ReidLossConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    eval: ReidEvalConfig = field(default_factory=ReidEvalConfig)
