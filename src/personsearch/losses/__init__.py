"""Losses. Identity classification: ``torch.nn.functional.cross_entropy(..., label_smoothing=0.1)``."""

from personsearch.losses.triplet import (
    METRICS,
    TripletLoss,
    hard_example_mining,
    pairwise_distance,
    triplet_from_distances,
)

__all__ = ["METRICS", "TripletLoss", "hard_example_mining", "pairwise_distance", "triplet_from_distances"]
