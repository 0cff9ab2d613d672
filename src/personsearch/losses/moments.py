"""Feature moment alignment across data sources (hybrid pre-training's intra-task alignment).

For the person features ``x_i`` (N, D) of a batch, each from a source ``s(i)`` (a pre-training
dataset), and a grouping of sources (``groups``: sources aligned with each other, e.g. the
datasets of one sub-task), with ``S_g`` the sources of group ``g`` present in the batch with at
least ``min_rows`` rows:

    mu_s    = mean_{i: s(i)=s} x_i                            (D,)  per-channel mean
    sigma_s = sqrt(mean_{i: s(i)=s} (x_i - mu_s)^2 + eps)     (D,)  per-channel standard deviation
    mu_g    = mean_{s in S_g} mu_s,   sigma_g = mean_{s in S_g} sigma_s     (every source counts alike)
    L_align = mean_{g: |S_g| >= 2} mean_{s in S_g} ( ||mu_s - mu_g||^2 + ||sigma_s - sigma_g||^2 )

Zero (with a graph) when no group has two sources in the batch. Gradients reach every source's
features: each is pulled toward the group's common first and second moments.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

EPS = 1e-6


def source_moments(features: Tensor, sources: Tensor, min_rows: int = 2) -> dict[int, tuple[Tensor, Tensor]]:
    """``{source: (mean (D,), std (D,))}`` of the rows of each source with at least ``min_rows`` rows."""
    if features.dim() != 2 or sources.shape != features.shape[:1]:
        raise ValueError(f"features must be (N, D) with one source per row, got {tuple(features.shape)} "
                         f"and {tuple(sources.shape)}")
    out = {}
    for source in sorted(set(sources.tolist())):
        rows = features[sources == source]
        if len(rows) >= min_rows:
            mean = rows.mean(0)
            out[int(source)] = (mean, ((rows - mean) ** 2).mean(0).add(EPS).sqrt())
    return out


def moment_alignment(features: Tensor, sources: Tensor, groups: Mapping[int, int] | None = None,
                     min_rows: int = 2) -> Tensor:
    """``L_align`` of the module docstring; ``groups`` maps source -> group (None: one group of all)."""
    moments = source_moments(features, sources, min_rows)
    by_group: dict[int, list[tuple[Tensor, Tensor]]] = {}
    for source, stats in moments.items():
        by_group.setdefault(0 if groups is None else int(groups[source]), []).append(stats)
    terms = []
    for members in by_group.values():
        if len(members) < 2:
            continue
        means, stds = torch.stack([m for m, _ in members]), torch.stack([s for _, s in members])
        gaps = (means - means.mean(0)).pow(2).sum(1) + (stds - stds.mean(0)).pow(2).sum(1)
        terms.append(gaps.mean())
    return torch.stack(terms).mean() if terms else features.sum() * 0.0
