"""Teachers a recipe trains beside its model: an EMA copy of the student, or a frozen network.

Declare them in ``Recipe.auxiliary_modules`` so the engine moves, checkpoints and restores them.

    self.teacher = EmaTeacher(student)                       # DINO / PASS: momentum teacher
    def after_step(self, model, info): self.teacher.update(unwrap_model(model), info.ema_momentum)

    self.teacher = freeze(load_reid_teacher(...))            # DKD: a fixed crop ReID teacher
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """``module`` in eval mode with every parameter's ``requires_grad`` off (in place)."""
    for param in module.parameters():
        param.requires_grad_(False)
    return module.eval()


class EmaTeacher(nn.Module):
    """An exponential moving average of a student network: ``t = m t + (1 - m) s`` per parameter.

    Built as a frozen deep copy of the student (so the two start equal); buffers (BatchNorm
    statistics, counters) are copied from the student at every update. ``forward`` runs the teacher.
    """

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.net = freeze(copy.deepcopy(student))

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        """Move every parameter towards the student's; ``student`` must have the same structure."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
        own = list(self.net.parameters())
        theirs = list(student.parameters())
        if len(own) != len(theirs):
            raise ValueError(f"student has {len(theirs)} parameters, the EMA teacher {len(own)}")
        torch._foreach_mul_(own, momentum)
        torch._foreach_add_(own, [p.detach() for p in theirs], alpha=1.0 - momentum)
        for mine, other in zip(self.net.buffers(), student.buffers()):
            mine.copy_(other)
