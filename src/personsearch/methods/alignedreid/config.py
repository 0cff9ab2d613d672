"""Settings of the AlignedReID recipe: the ReID recipe's plus the local branch and mutual learning."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...distance import check_metric
from ..reid_common.config import ReidEvalConfig, ReidRecipeConfig

TEST_DISTANCES = ("global", "local", "global+local")


@dataclass(frozen=True)
class AlignedConfig:
    """Local branch, local loss and mutual learning (methods.md, section 1)."""

    stripes: int = 8
    local_dim: int = 128
    local: bool = True  # False trains the global-only baseline through the same recipe
    local_weight: float = 1.0
    local_margin: float = 0.3
    mining: str = "global"  # hard pairs for the local triplet: mined on global (paper) or local distance
    normalize_local: bool = True  # L2 per stripe before distances, so tanh(d/2) does not saturate
    models: int = 1  # >= 2: mutual learning of that many models trained together
    mutual_probability: float = 1.0  # weight of the KL between class probabilities
    mutual_global: float = 1.0  # weight of the squared difference of global distance matrices
    mutual_local: float = 0.0  # same for local distance matrices
    mutual_metric: str = "l2"  # kernel metric of the global distance matrices compared
    mutual_normalize: bool = True  # L2-normalise global features first: distances in [0, 2] at any dim/norm

    def __post_init__(self) -> None:
        check_metric(self.mutual_metric, "aligned.mutual_metric")
        if self.mining not in ("global", "local"):
            raise ValueError(f"aligned.mining must be 'global' or 'local', got {self.mining!r}")
        if self.models < 1 or self.stripes < 1 or self.local_dim < 1:
            raise ValueError("aligned.models, aligned.stripes and aligned.local_dim must be >= 1, got "
                             f"{self.models}, {self.stripes} and {self.local_dim}")


@dataclass(frozen=True)
class AlignedEvalConfig(ReidEvalConfig):
    """Test distance: global (default, under ``metric``), local (aligned, normalised stripes), or
    global+local (L2 between L2-normalised global embeddings + aligned local distance, as the paper
    sums them); each also re-ranked when rerank is on."""

    distances: tuple[str, ...] = ("global",)

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = set(self.distances) - set(TEST_DISTANCES)
        if bad or not self.distances:
            raise ValueError(f"eval.distances must be a non-empty subset of {TEST_DISTANCES}, got {self.distances}")


@dataclass(frozen=True)
class AlignedRecipeConfig(ReidRecipeConfig):
    """A ReID recipe config with an ``aligned`` section and test-time distance choices."""

    method: str = "alignedreid"
    aligned: AlignedConfig = field(default_factory=AlignedConfig)
    eval: AlignedEvalConfig = field(default_factory=AlignedEvalConfig)
