"""Whole-image person search pipelines behind one interface: image -> boxes, scores, embeddings."""

from .two_step import TwoStepSearcher

__all__ = ["TwoStepSearcher"]
