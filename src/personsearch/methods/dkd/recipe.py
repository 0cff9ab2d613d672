"""DKD (Zhang et al., AAAI 2021): diverse knowledge distillation from a crop ReID teacher into an
end-to-end person search student.

The student is the SeqNet (or NAE) recipe with identity batches: PK labeled people cut from the
training scenes. The frozen teacher (a ``two_step`` run's ReID model, trained with ISA on the same
scenes' ground-truth crops) sees each person's ground-truth box; the student's re-id branch sees the
box jittered by ``data.identity_batch.isa`` (feature-level spatial-invariant augmentation, FSA).
Three terms tie the student's unit features to the teacher's (``loss.kd_*``; formulas in
``losses/distill.py``): identity distributions (the student's OIM logits over its lookup table
against the teacher's classifier logits: the same training identities), in-batch pair similarities,
and triplet relations. The teacher is used during training only: a DKD run is a student run.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from ...engine.distributed import unwrap_model
from ...engine.recipe import Auxiliary
from ...losses.distill import pairwise_relation_kd, probability_kd, triplet_relation_kd
from ..seqnet.recipe import SeqNetRecipe
from .config import DkdConfig
from .teacher import CropTeacher, load_crop_teacher


class DkdRecipe(SeqNetRecipe):
    """The student recipe plus a frozen crop ReID teacher and three distillation terms."""

    CONFIG = DkdConfig
    cfg: DkdConfig

    @cached_property
    def teacher(self) -> CropTeacher:
        """The teacher run's ReID model, checked against the student's data (read when training starts)."""
        teacher, theirs = load_crop_teacher(self.cfg.teacher)
        if self.cfg.loss.kd_prob > 0:
            classes = None if teacher.classifier is None else int(teacher.classifier.out_features)
            if classes != self.num_pids:
                raise ValueError(f"teacher {self.cfg.teacher}: its classifier has {classes} identities, the "
                                 f"student's scenes {self.num_pids}; probability-level KD needs a teacher trained "
                                 "on the same scenes (a two_step run with the same data.root), or loss.kd_prob=0")
            ours = (self.cfg.data.format, Path(self.cfg.data.root).resolve())
            data = getattr(theirs, "data", None)
            if data is None or (data.format, Path(data.root).resolve()) != ours:
                raise ValueError(f"teacher {self.cfg.teacher} was trained on "
                                 f"{getattr(data, 'format', '?')}:{getattr(data, 'root', '?')}, the student "
                                 f"trains on {ours[0]}:{ours[1]}; identities would not correspond")
        return teacher

    def auxiliary_modules(self) -> dict[str, Auxiliary]:
        if self.cfg.distill.teacher_logits not in ("cosine", "raw"):
            raise ValueError(f"distill.teacher_logits: {self.cfg.distill.teacher_logits!r} is not 'cosine' or 'raw'")
        if self.cfg.data.identity_batch.p <= 0:
            raise ValueError("dkd distils on identity batches: set data.identity_batch.p > 0")
        return {"teacher": Auxiliary(self.teacher, persistent=False, train_mode=False)}

    def crop_losses(self, model: nn.Module, feats: torch.Tensor, crops: dict) -> dict[str, torch.Tensor]:
        """The distillation terms, then the student's own (OIM updates its lookup table last)."""
        weights, d = self.cfg.loss, self.cfg.distill
        losses: dict[str, torch.Tensor] = {}
        if max(weights.kd_prob, weights.kd_pair, weights.kd_triplet) <= 0:  # FSA alone: no teacher needed
            return super().crop_losses(model, feats, crops)
        t_feats, t_logits = self.teacher(crops["images"], crops["gt_boxes"])
        if weights.kd_prob > 0:
            oim = unwrap_model(model).roi_heads.oim
            s_logits = feats @ oim.lut.detach().clone().to(feats.dtype).t() * oim.scalar  # OIM updates it in place
            if d.teacher_logits == "cosine":
                t_logits = self.teacher.cosine_logits(t_feats, oim.scalar)
            losses["loss_kd_prob"] = probability_kd(s_logits, t_logits, d.temperature)
        if weights.kd_pair > 0:
            losses["loss_kd_pair"] = pairwise_relation_kd(feats, t_feats)
        if weights.kd_triplet > 0:
            losses["loss_kd_triplet"] = triplet_relation_kd(feats, t_feats, crops["pids"], d.tau)
        return {**losses, **super().crop_losses(model, feats, crops)}

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """The student's tiny settings, identity batches on, and a tiny two_step run as the teacher."""
        from ..smoke import smoke_recipe

        teacher = Path(work_dir) / "teacher-for-dkd"
        if not (teacher / "model_final.pt").is_file():
            smoke_recipe("two_step", synth_root, teacher, device="cpu")
        return [*SeqNetRecipe.smoke_overrides(synth_root, work_dir), "data.identity_batch.p=4",
                "data.identity_batch.k=2", f"teacher={teacher}"]
