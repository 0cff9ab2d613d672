"""DKD's settings: the student's (SeqNet by default) plus a teacher run and the distillation terms."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..search_common.config import SearchLossConfig
from ..seqnet.config import SeqNetConfig


@dataclass(frozen=True)
class DkdLossConfig(SearchLossConfig):
    """The student's loss weights (SeqNet's) plus one weight per distillation term (0 = off)."""

    proposal_reg: float = 10.0
    box_reg: float = 1.0
    kd_prob: float = 1.0  # probability level: T^2 KL(teacher || student) over the training identities
    kd_pair: float = 1.0  # pair-wise relation: MSE of in-batch cosine similarity matrices
    kd_triplet: float = 1.0  # triplet-wise relation: BCE of sigmoid((s_ap - s_an) / tau)


@dataclass(frozen=True)
class DistillConfig:
    """How the teacher's knowledge is read (losses/distill.py states the formulas)."""

    temperature: float = 3.0  # probability level: both distributions softened by T
    # probability level, the teacher's logits: "cosine" = the student's OIM scale x cosine between the
    # teacher's feature and each class weight (same form and scale as the student's OIM logits);
    # "raw" = its classifier's logits as trained (a softer, differently scaled distribution)
    teacher_logits: str = "cosine"
    tau: float = 0.1  # triplet-wise relation: the similarity gap's temperature


@dataclass(frozen=True)
class DkdConfig(SeqNetConfig):
    """A student person search model (``model.head``: seqnet or nae) taught by a crop ReID ``teacher``
    run (a ``two_step`` run on the same scenes: its ReID model, with its identity classifier)."""

    method: str = "dkd"
    teacher: str = ""  # run folder of the crop ReID teacher; used during training only
    loss: DkdLossConfig = field(default_factory=DkdLossConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
