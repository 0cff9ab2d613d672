"""NAE (Chen et al., CVPR 2020) with OIM: one Faster R-CNN head whose embedding norm is the person score."""

from __future__ import annotations

from ..search_common.recipe import PersonSearchRecipe
from .config import NaeConfig


class NaeRecipe(PersonSearchRecipe):
    """Faster R-CNN (C4) + norm-aware embedding + OIM on CUHK-SYSU/PRW-format scenes."""

    CONFIG = NaeConfig
