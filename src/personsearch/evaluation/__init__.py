"""Metrics as pure functions over arrays: numpy/torch/scipy and the distance kernel, no model imports.

    from personsearch.evaluation import evaluate_reid, re_ranking, distance_matrix, local_distance
"""

from ..distance import distance_matrix, local_distance, paired_local_distance
from .detection import evaluate_detection
from .reid import ReidResult, evaluate_reid
from .reid_cuhk03 import evaluate_reid_cuhk03
from .report import ranked_list_html
from .rerank import re_ranking, re_ranking_features
from .search import evaluate_search
from .search_plan import FrameGalleryLike

__all__ = ["FrameGalleryLike", "ReidResult", "distance_matrix", "evaluate_detection", "evaluate_reid",
           "evaluate_reid_cuhk03", "evaluate_search", "local_distance", "paired_local_distance", "ranked_list_html",
           "re_ranking", "re_ranking_features"]
