"""AlignedReID's metric losses: batch-hard triplet on global features + triplet on aligned local distances.

Zhang et al., arXiv 1711.08184: the hard positive / negative of each anchor are mined with the
global distance, and the local triplet loss uses the aligned local distances (shortest path over
the stripe-to-stripe distance matrix, ``personsearch.distance.local_distance``) of those same
pairs. ``mining="local"`` instead mines the local loss's pairs on the local distance matrix.
"""

from __future__ import annotations

from torch import Tensor

from ..distance import local_distance, paired_local_distance, pairwise_distance
from .triplet import hard_example_mining, triplet_from_distances

MININGS = ("global", "local")


def _local_triplet_on_pairs(
    local_feats: Tensor, idx_ap: Tensor, idx_an: Tensor, margin: float | None
) -> Tensor:
    """Triplet loss on paired local distances (anchor, idx_ap) vs (anchor, idx_an), usable anchors only.

    Anchors with index -1 are dropped before computing any distance (no self-pairs, whose
    zero distance could give non-finite gradients); none usable gives a graph-attached 0.
    """
    anchors = ((idx_ap >= 0) & (idx_an >= 0)).nonzero().squeeze(1)
    if anchors.numel() == 0:
        return local_feats.sum() * 0.0
    anchor_feats = local_feats[anchors]
    dist_ap = paired_local_distance(anchor_feats, local_feats[idx_ap[anchors]])
    dist_an = paired_local_distance(anchor_feats, local_feats[idx_an[anchors]])
    return triplet_from_distances(dist_ap, dist_an, margin)


def aligned_triplet_losses(
    global_feats: Tensor,
    local_feats: Tensor,
    targets: Tensor,
    margin: float | None = 0.3,
    local_margin: float | None = 0.3,
    mining: str = "global",
) -> dict[str, Tensor]:
    """AlignedReID's two triplet terms on a batch.

    global_feats (N, D), local_feats (N, H, C), targets (N,) identity labels.
    Returns ``{"global": ..., "local": ...}``:
    - "global": batch-hard triplet on euclidean global distances (hinge ``margin``, None = soft);
    - "local": triplet on aligned local distances, with hinge ``local_margin``, of the hard pairs
      mined on the global distance matrix (``mining="global"``, the paper's default) or on the
      (N, N) aligned local distance matrix (``mining="local"``).
    Anchors without a positive or a negative (hard_example_mining's index -1) are left out.
    """
    if mining not in MININGS:
        raise ValueError(f"unknown mining {mining!r}; choose from {', '.join(MININGS)}")
    n = global_feats.shape[0]
    if local_feats.ndim != 3 or local_feats.shape[0] != n:
        raise ValueError(f"need (N, H, C) local features for N={n}, got {tuple(local_feats.shape)}")
    dist_ap, dist_an, idx_ap, idx_an = hard_example_mining(pairwise_distance(global_feats, global_feats), targets)
    loss_global = triplet_from_distances(dist_ap, dist_an, margin, valid=(idx_ap >= 0) & (idx_an >= 0))
    if mining == "local":  # mine on a detached matrix, then recompute only the chosen pairs with gradient:
        # the matrix's zero diagonal never enters the graph (sqrt at 0 has no finite derivative)
        _, _, idx_ap, idx_an = hard_example_mining(local_distance(local_feats, local_feats).detach(), targets)
    return {"global": loss_global, "local": _local_triplet_on_pairs(local_feats, idx_ap, idx_an, local_margin)}


__all__ = ["MININGS", "aligned_triplet_losses"]
