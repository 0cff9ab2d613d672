"""SeqNet's settings: the person search recipe's, with two sequential heads and SeqNet's loss weights."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..search_common.config import SearchLossConfig, SearchModelConfig, SearchRecipeConfig


@dataclass(frozen=True)
class SeqNetConfig(SearchRecipeConfig):
    """SeqNet as published (ResNet-50, 900 px, 14x14 RoIs): fg/bg at IoU 0.5 in both heads, head-1 box
    regression x10, head-2 box regression x1."""

    method: str = "seqnet"
    model: SearchModelConfig = field(default_factory=lambda: SearchModelConfig(head="seqnet", bg_iou=0.5))
    loss: SearchLossConfig = field(default_factory=lambda: SearchLossConfig(proposal_reg=10.0, box_reg=1.0))
