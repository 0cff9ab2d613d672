"""Metrics as pure functions over arrays: no model imports."""

from .distance import compute_distance
from .reid import ReidResult, evaluate_reid
from .reid_cuhk03 import evaluate_reid_cuhk03
from .report import ranked_list_html
from .rerank import re_ranking, re_ranking_features

__all__ = ["ReidResult", "compute_distance", "evaluate_reid", "evaluate_reid_cuhk03", "ranked_list_html",
           "re_ranking", "re_ranking_features"]
