"""NAE's settings: the person search recipe's, with NAE's head, sampling and loss weights."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..search_common.config import SearchLossConfig, SearchModelConfig, SearchRecipeConfig


@dataclass(frozen=True)
class NaeConfig(SearchRecipeConfig):
    """NAE as published (ResNet-50, 900 px, 14x14 RoIs): background RoIs below IoU 0.1, box regression x10."""

    method: str = "nae"
    model: SearchModelConfig = field(default_factory=lambda: SearchModelConfig(head="nae", bg_iou=0.1))
    loss: SearchLossConfig = field(default_factory=lambda: SearchLossConfig(box_reg=10.0))
