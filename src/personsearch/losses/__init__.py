"""Losses. Identity classification: ``torch.nn.functional.cross_entropy(..., label_smoothing=0.1)``.

Distances come from the kernel, ``personsearch.distance`` (imported here no further).
"""

from .aligned import aligned_triplet_losses
from .distill import pairwise_relation_kd, probability_kd, triplet_relation_kd
from .moments import moment_alignment, source_moments
from .mutual import mutual_distance_loss, mutual_losses, mutual_probability_loss
from .oim import OIMLoss
from .triplet import TripletLoss, hard_example_mining, triplet_from_distances

__all__ = ["OIMLoss", "TripletLoss", "aligned_triplet_losses", "hard_example_mining", "moment_alignment",
           "mutual_distance_loss", "mutual_losses", "mutual_probability_loss", "pairwise_relation_kd", "probability_kd",
           "source_moments", "triplet_from_distances", "triplet_relation_kd"]
