"""Self-distillation with prototypes (DINO, Caron et al. 2021) and its part-aware pairing (PASS).

- ``DinoHead``: MLP (GELU) -> L2-normalised bottleneck -> weight-normalised linear layer onto K
  prototypes (its weight rows have unit norm; ``freeze_last`` passes no gradient to it, as DINO and
  PASS do during the first epoch).
- ``TokenCenters``: one centre per token type ([CLS], PART_1..P), an EMA (momentum 0.9) of the
  teacher's batch-mean logits, averaged over processes under DDP.
- ``pass_pairs``: which student output meets which teacher output. [CLS] of each teacher global view
  against the student [CLS] of every other view; PART_k of each teacher global view against the
  student PART_k of the other global view and of the local views cut from area k.
- ``self_distillation_loss``: the mean over those pairs of the cross-entropy between the centred,
  sharpened teacher softmax (temperature 0.04) and the student log-softmax (temperature 0.1).
  ``target_shift`` (a control, not in DINO or PASS): image i's student views meet the teacher
  outputs of image i + shift of the batch, so the pairs share no content and nothing of the
  views' agreement can be learned, at the same steps, views and optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.collectives import all_reduce_mean


class DinoHead(nn.Module):
    """in_dim -> hidden -> ... -> bottleneck (``layers`` linear layers, GELU between), L2-normalised,
    then a linear layer with unit-norm rows onto ``out_dim`` prototypes."""

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 layers: int = 3) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"DinoHead needs >= 1 layer, got {layers}")
        dims = [in_dim, *([hidden_dim] * (layers - 1)), bottleneck_dim]
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            blocks.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                blocks.append(nn.GELU())
        self.mlp = nn.Sequential(*blocks)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.prototypes, std=0.02)

    def forward(self, x: Tensor, freeze_last: bool = False) -> Tensor:
        z = F.normalize(self.mlp(x), dim=-1)
        weight = F.normalize(self.prototypes, dim=-1)
        if freeze_last:  # zero gradient, same graph (DDP sees the parameter used)
            weight = weight.detach() + 0.0 * weight
        return z @ weight.t()


class TokenCenters(nn.Module):
    """Centres (T, K) of the teacher's logits, one per token type, updated as an EMA."""

    def __init__(self, tokens: int, out_dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"centre momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("center", torch.zeros(tokens, out_dim))

    @torch.no_grad()
    def update(self, teacher_logits: dict[int, Tensor]) -> None:
        """``teacher_logits``: token index -> (N, K) logits of the teacher's global views."""
        for token, logits in teacher_logits.items():
            mean = all_reduce_mean(logits.float().mean(dim=0))
            self.center[token].mul_(self.momentum).add_(mean, alpha=1.0 - self.momentum)


@dataclass(frozen=True)
class ViewLayout:
    """How a multi-crop batch is laid out: ``globals`` global views (all parts), then local views,
    ``local_areas[i]`` being the area the i-th local view was cut from (None: the whole image)."""

    globals: int
    local_areas: tuple[int | None, ...]
    num_parts: int

    def parts_of(self, view: int) -> list[int]:
        """The part tokens view ``view`` carries (global: all; local of area k: [k]; whole-image local: none)."""
        if view < self.globals:
            return list(range(self.num_parts))
        area = self.local_areas[view - self.globals]
        return [] if area is None else [area]

    @property
    def views(self) -> int:
        return self.globals + len(self.local_areas)


def pass_pairs(layout: ViewLayout) -> list[tuple[int, int, int]]:
    """(token, teacher global view, student view) of every loss term; token 0 = [CLS], k + 1 = PART_k."""
    pairs = [(0, g, v) for g in range(layout.globals) for v in range(layout.views) if v != g]
    for k in range(layout.num_parts):
        for g in range(layout.globals):
            pairs += [(k + 1, g, v) for v in range(layout.views) if v != g and k in layout.parts_of(v)]
    return pairs


def self_distillation_loss(student: dict[tuple[int, int], Tensor], teacher: dict[tuple[int, int], Tensor],
                           centers: Tensor, pairs: list[tuple[int, int, int]], student_temp: float = 0.1,
                           teacher_temp: float = 0.04, target_shift: int = 0) -> Tensor:
    """Mean over ``pairs`` of ``-sum softmax((t - c_token) / teacher_temp) * log_softmax(s / student_temp)``.

    ``student[(token, view)]`` / ``teacher[(token, global view)]``: (N, K) logits; ``centers`` (T, K);
    ``target_shift`` != 0 pairs row i of the student with row i + shift (mod N) of the teacher.
    """
    if not pairs:
        raise ValueError("self-distillation needs at least one (teacher, student) pair of views")
    targets = {key: F.softmax((t.detach().float() - centers[key[0]]) / teacher_temp, dim=-1)
               for key, t in teacher.items()}
    if target_shift:
        rows = next(iter(targets.values())).shape[0]
        if target_shift % rows == 0:
            raise ValueError(f"target_shift {target_shift} pairs each image with itself in a batch of {rows}")
        targets = {key: torch.roll(t, -target_shift, dims=0) for key, t in targets.items()}
    total = 0.0
    for token, g, v in pairs:
        log_p = F.log_softmax(student[(token, v)].float() / student_temp, dim=-1)
        total = total + (-(targets[(token, g)] * log_p).sum(dim=-1)).mean()
    return total / len(pairs)
