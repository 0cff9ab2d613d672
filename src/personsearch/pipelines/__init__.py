"""Whole-image person search pipelines behind one interface: image -> boxes, scores, embeddings."""

from .end_to_end import EndToEndSearcher
from .images import check_boxes, load_rgb
from .loading import PRETRAINED, Searcher, load_searcher, pretrained_searcher
from .search import SearchHit, embed_gallery, rank_gallery, search
from .two_step import TwoStepSearcher

__all__ = ["EndToEndSearcher", "PRETRAINED", "SearchHit", "Searcher", "TwoStepSearcher", "check_boxes",
           "embed_gallery", "load_rgb", "load_searcher", "pretrained_searcher", "rank_gallery", "search"]
