"""Whole-image person search pipelines behind one interface: image -> boxes, scores, embeddings."""

from .end_to_end import EndToEndSearcher
from .images import check_boxes, load_rgb
from ..methods.tracklet_finetune import FinetuneConfig, finetune_on_tracklets
from .loading import (PRETRAINED, Searcher, ZeroShot, is_pretrained, load_searcher, pretrained_options,
                      pretrained_searcher, save_embedder, shipped_detector)
from .search import SearchHit, embed_gallery, rank_gallery, search
from .two_step import TwoStepSearcher

__all__ = ["EndToEndSearcher", "FinetuneConfig", "PRETRAINED", "SearchHit", "Searcher", "TwoStepSearcher", "ZeroShot",
           "check_boxes", "embed_gallery", "finetune_on_tracklets", "is_pretrained", "load_rgb", "load_searcher",
           "pretrained_options", "pretrained_searcher", "rank_gallery", "save_embedder", "search", "shipped_detector"]
