"""Online Instance Matching (OIM) loss for person search (Xiao et al., CVPR 2017), DDP-correct.

Each RoI embedding is classified against two memories that are not trained by gradient:
a look-up table ``lut`` (one row per labeled training identity) and a circular queue ``cq`` of
recent unlabeled-person features (extra negatives). Labeled rows give a cross-entropy term over
``[x . lut^T, x . cq^T] * scalar``; unlabeled and background rows contribute no loss.

After the logits are computed, the memories are updated (no gradient): every labeled feature
moves its identity's row, ``lut[pid] = normalize(m * lut[pid] + (1 - m) * x)`` (sequentially, so
duplicate pids in one batch compose), and every unlabeled feature is written into the queue.
Under DDP the features and pids of **all ranks** are gathered first (``all_gather_tensor``, rank
order), so every rank applies the same update and the memories stay bit-identical across ranks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.collectives import all_gather_tensor
from ..utils.labels import BACKGROUND, UNLABELED

__all__ = ["BACKGROUND", "UNLABELED", "OIMLoss"]


class OIMLoss(nn.Module):
    """OIM loss with a labeled look-up table and an unlabeled circular queue.

    Args:
        num_features: embedding dimension D.
        num_pids: number of labeled training identities K (pids are ``0..K-1``).
        num_cq: length of the unlabeled circular queue (0 disables it).
        momentum: LUT update momentum m (weight of the old row).
        scalar: logit scale (inverse temperature).
    """

    lut: Tensor
    cq: Tensor
    cq_pointer: Tensor

    def __init__(
        self,
        num_features: int = 256,
        num_pids: int = 5532,
        num_cq: int = 5000,
        momentum: float = 0.5,
        scalar: float = 30.0,
    ) -> None:
        super().__init__()
        if num_pids <= 0:
            raise ValueError(f"num_pids must be positive, got {num_pids}")
        self.num_features, self.num_pids, self.num_cq = num_features, num_pids, num_cq
        self.momentum, self.scalar = momentum, scalar
        self.register_buffer("lut", torch.zeros(num_pids, num_features))
        self.register_buffer("cq", torch.zeros(num_cq, num_features))
        self.register_buffer("cq_pointer", torch.zeros((), dtype=torch.long))

    def forward(self, features: Tensor, pids: Tensor) -> Tensor:
        """Mean cross-entropy over labeled rows of ``features`` (N, D, L2-normalised).

        pids (N,): ``0..K-1`` labeled, ``UNLABELED`` (-1) unlabeled person, ``BACKGROUND`` (-2)
        or lower ignored. Returns a scalar (0 with a graph when no row is labeled). In training
        mode the memories are updated afterwards with the features of every rank.
        """
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"features must be (N, {self.num_features}), got {tuple(features.shape)}")
        pids = pids.to(device=features.device, dtype=torch.long)
        if bool((pids >= self.num_pids).any()):
            raise ValueError(f"pid {int(pids.max())} out of range for num_pids={self.num_pids}")
        memory = torch.cat([self.lut, self.cq]).to(features.dtype)  # a copy: safe to update buffers later
        logits = features @ memory.t() * self.scalar
        labeled = pids >= 0
        if bool(labeled.any()):
            loss = F.cross_entropy(logits, torch.where(labeled, pids, torch.full_like(pids, -100)))
        else:
            loss = logits.sum() * 0.0
        if self.training:
            self.update_memory(features, pids)
        return loss

    @torch.no_grad()
    def update_memory(self, features: Tensor, pids: Tensor) -> None:
        """Gather (features, pids) from every rank, then update LUT and queue identically everywhere."""
        features = all_gather_tensor(features.detach().to(self.lut.dtype))
        pids = all_gather_tensor(pids.to(torch.long))
        self._update_lut(features[pids >= 0], pids[pids >= 0])
        self._enqueue(features[pids == UNLABELED])

    def _update_lut(self, features: Tensor, pids: Tensor) -> None:
        """Sequential momentum update of ``lut`` rows (row re-normalised after each step)."""
        m = self.momentum
        for x, pid in zip(features, pids.tolist()):
            self.lut[pid] = F.normalize(m * self.lut[pid] + (1.0 - m) * x, dim=0)

    def _enqueue(self, features: Tensor) -> None:
        """Write ``features`` into the circular queue at ``cq_pointer`` (wrapping around)."""
        if self.num_cq == 0 or features.numel() == 0:
            return
        n = features.shape[0]
        start = int(self.cq_pointer)
        if n > self.num_cq:  # only the newest num_cq survive a full wrap
            start, features = (start + n - self.num_cq) % self.num_cq, features[-self.num_cq :]
        index = (start + torch.arange(features.shape[0], device=self.cq.device)) % self.num_cq
        self.cq[index] = features
        self.cq_pointer.fill_((start + features.shape[0]) % self.num_cq)

    def extra_repr(self) -> str:
        return (
            f"num_features={self.num_features}, num_pids={self.num_pids}, num_cq={self.num_cq}, "
            f"momentum={self.momentum}, scalar={self.scalar}"
        )
