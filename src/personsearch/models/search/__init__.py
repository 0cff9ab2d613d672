"""End-to-end person search: a C4 Faster R-CNN (torchvision parts) with NAE embedding and OIM loss."""

from personsearch.models.search.heads import NormAwareEmbedding, PooledHead, SearchRoIHeads
from personsearch.models.search.model import (
    LOSS_KEYS,
    SEARCH_BACKBONES,
    PersonSearchModel,
    build_person_search_model,
    freeze_batchnorm,
    split_backbone,
)

__all__ = [
    "LOSS_KEYS",
    "SEARCH_BACKBONES",
    "NormAwareEmbedding",
    "PersonSearchModel",
    "PooledHead",
    "SearchRoIHeads",
    "build_person_search_model",
    "freeze_batchnorm",
    "split_backbone",
]
