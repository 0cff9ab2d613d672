"""End-to-end person search: C4 Faster R-CNN (torchvision parts) with NAE or SeqNet heads."""

from .detector import Res5Vector, build_person_detector
from .fold import fold_frozen_batchnorm
from .heads import BoxRegressor, NormAwareEmbedding, PooledHead
from .model import (
    HEADS,
    LOSS_KEYS,
    SEARCH_BACKBONES,
    PersonSearchModel,
    build_person_search_model,
    freeze_batchnorm,
    split_backbone,
)
from .nae_heads import NaeRoIHeads
from .seqnet_heads import SeqNetRoIHeads

__all__ = [
    "HEADS",
    "LOSS_KEYS",
    "SEARCH_BACKBONES",
    "BoxRegressor",
    "NaeRoIHeads",
    "NormAwareEmbedding",
    "PersonSearchModel",
    "PooledHead",
    "SeqNetRoIHeads",
    "Res5Vector",
    "build_person_detector",
    "build_person_search_model",
    "fold_frozen_batchnorm",
    "freeze_batchnorm",
    "split_backbone",
]
