"""Models: backbones (offline-loadable weights), pooling, and the BoT-style ReID model."""

from personsearch.models.backbones import (
    BACKBONES,
    MobileNetV2Backbone,
    ResNetBackbone,
    ViTBackbone,
    build_backbone,
)
from personsearch.models.offline_weights import (
    deep_sort_mobilenetv2_path,
    load_deep_sort_mobilenetv2,
    load_strict,
    read_checkpoint,
)
from personsearch.models.pooling import GeM, build_pooling
from personsearch.models.reid_model import ReidModel, build_reid_model

__all__ = [
    "BACKBONES",
    "GeM",
    "MobileNetV2Backbone",
    "ReidModel",
    "ResNetBackbone",
    "ViTBackbone",
    "build_backbone",
    "build_pooling",
    "build_reid_model",
    "deep_sort_mobilenetv2_path",
    "load_deep_sort_mobilenetv2",
    "load_strict",
    "read_checkpoint",
]
