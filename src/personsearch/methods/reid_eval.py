"""Evaluate a ReID model on a dataset's query/gallery split (features -> distances -> metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.records import ReidDataset
from ..data.transforms import build_test_transform
from ..evaluation.distance import compute_distance
from ..evaluation.reid import evaluate_reid
from ..evaluation.report import ranked_list_html
from ..inference.extract import ExtractConfig, extract_from_paths
from .reid_config import ReidDataConfig, ReidEvalConfig


def extract_split_features(model: torch.nn.Module, dataset: ReidDataset, data: ReidDataConfig,
                           cfg: ReidEvalConfig, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery embeddings, float32."""
    transform = build_test_transform(data.height, data.width)
    ext = ExtractConfig(batch_size=data.test_batch, precision=cfg.precision, flip=cfg.flip, progress=progress)
    query = extract_from_paths(model, [s.path for s in dataset.query], transform, ext)
    gallery = extract_from_paths(model, [s.path for s in dataset.gallery], transform, ext)
    return query, gallery


def metrics_from_features(query: np.ndarray, gallery: np.ndarray, dataset: ReidDataset, cfg: ReidEvalConfig,
                          report_dir: Path | None = None, distmat: np.ndarray | None = None) -> dict[str, float]:
    """rank-1/5/10, mAP, mINP (and the re-ranked ones when asked); optionally an HTML report."""
    ids = lambda samples, key: np.asarray([getattr(s, key) for s in samples])  # noqa: E731
    q_pids, g_pids = ids(dataset.query, "pid"), ids(dataset.gallery, "pid")
    q_cams, g_cams = ids(dataset.query, "camid"), ids(dataset.gallery, "camid")
    dist = compute_distance(query, gallery, cfg.metric) if distmat is None else distmat
    metrics = evaluate_reid(dist, q_pids, g_pids, q_cams, g_cams, cfg.max_rank).as_dict()
    if cfg.rerank:
        from ..evaluation.rerank import re_ranking

        reranked = re_ranking(dist, compute_distance(query, query, cfg.metric),
                              compute_distance(gallery, gallery, cfg.metric))
        metrics.update({f"{k}_rerank": v for k, v in
                        evaluate_reid(reranked, q_pids, g_pids, q_cams, g_cams, cfg.max_rank).as_dict().items()})
    if report_dir is not None and cfg.report_queries > 0:
        picks = np.linspace(0, len(dataset.query) - 1, num=min(cfg.report_queries, len(dataset.query))).astype(int)
        ranked_list_html(dist, [s.path for s in dataset.query], [s.path for s in dataset.gallery],
                         q_pids, g_pids, q_cams, g_cams, Path(report_dir) / "ranked_lists.html", queries=picks.tolist())
    return metrics


def evaluate_reid_model(model: torch.nn.Module, dataset: ReidDataset, data: ReidDataConfig, cfg: ReidEvalConfig,
                        report_dir: Path | None = None, progress: bool = False) -> dict[str, float]:
    """Extract, rank and score the query/gallery split of ``dataset`` with ``model`` (eval mode)."""
    query, gallery = extract_split_features(model, dataset, data, cfg, progress)
    return metrics_from_features(query, gallery, dataset, cfg, report_dir)
