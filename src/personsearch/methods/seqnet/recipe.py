"""SeqNet (Li & Miao, AAAI 2021): a detection head, then a separate res5 head re-embeds its boxes."""

from __future__ import annotations

from ..search_common.recipe import PersonSearchRecipe
from .config import SeqNetConfig


class SeqNetRecipe(PersonSearchRecipe):
    """Two sequential heads + norm-aware embedding + OIM; CBGM at test with ``eval.cbgm``."""

    CONFIG = SeqNetConfig
