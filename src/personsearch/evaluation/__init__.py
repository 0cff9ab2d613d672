"""Metrics as pure functions over arrays: no model imports."""

from .detection import evaluate_detection
from .distance import compute_distance
from .reid import ReidResult, evaluate_reid
from .reid_cuhk03 import evaluate_reid_cuhk03
from .report import ranked_list_html
from .rerank import re_ranking, re_ranking_features
from .search import evaluate_search
from .search_galleries import cuhk_sysu_galleries, prw_galleries

__all__ = ["ReidResult", "compute_distance", "cuhk_sysu_galleries", "evaluate_detection", "evaluate_reid",
           "evaluate_reid_cuhk03", "evaluate_search", "prw_galleries", "ranked_list_html", "re_ranking",
           "re_ranking_features"]
