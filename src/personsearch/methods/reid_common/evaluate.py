"""Evaluate a ReID model on a dataset's query/gallery split (features -> distances -> metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ...data.records import ReidDataset
from ...data.transforms import build_test_transform
from ...distance import distance_matrix
from ...evaluation.reid import evaluate_reid
from ...evaluation.report import ranked_list_html
from ...inference.extract import ExtractConfig, extract_from_paths
from .config import ReidDataConfig, ReidEvalConfig


def extract_split_features(model: torch.nn.Module, dataset: ReidDataset, data: ReidDataConfig,
                           cfg: ReidEvalConfig, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery embeddings, float32, computed on the model's own device (never moved)."""
    transform = build_test_transform(data.height, data.width)
    ext = ExtractConfig(batch_size=data.test_batch, precision=cfg.precision, flip=cfg.flip, progress=progress)
    query = extract_from_paths(model, [s.path for s in dataset.query], transform, ext)
    gallery = extract_from_paths(model, [s.path for s in dataset.gallery], transform, ext)
    return query, gallery


def metrics_from_distances(dist_qg: np.ndarray, dataset: ReidDataset, cfg: ReidEvalConfig,
                           dist_qq: Callable[[], np.ndarray] | None = None,
                           dist_gg: Callable[[], np.ndarray] | None = None,
                           report_dir: Path | None = None, suffix: str = "") -> dict[str, float]:
    """rank-1/5/10, mAP, mINP from a query x gallery distance matrix; with ``cfg.rerank`` also the
    k-reciprocal re-ranked ones (``dist_qq``/``dist_gg`` give the other blocks, computed only then);
    optionally an HTML ranked-list report."""
    ids = lambda samples, key: np.asarray([getattr(s, key) for s in samples])  # noqa: E731
    q_pids, g_pids = ids(dataset.query, "pid"), ids(dataset.gallery, "pid")
    q_cams, g_cams = ids(dataset.query, "camid"), ids(dataset.gallery, "camid")
    scores = evaluate_reid(dist_qg, q_pids, g_pids, q_cams, g_cams, cfg.max_rank).as_dict()
    metrics = {f"{k}{suffix}": v for k, v in scores.items()}
    if cfg.rerank and dist_qq is not None and dist_gg is not None:
        from ...evaluation.rerank import re_ranking

        reranked = re_ranking(dist_qg, dist_qq(), dist_gg())
        scores = evaluate_reid(reranked, q_pids, g_pids, q_cams, g_cams, cfg.max_rank).as_dict()
        metrics.update({f"{k}{suffix}_rerank": v for k, v in scores.items()})
    if report_dir is not None and cfg.report_queries > 0:
        target = Path(report_dir) / cfg.report_file
        picks = np.linspace(0, len(dataset.query) - 1, num=min(cfg.report_queries, len(dataset.query))).astype(int)
        ranked_list_html(dist_qg, [s.path for s in dataset.query], [s.path for s in dataset.gallery],
                         q_pids, g_pids, q_cams, g_cams, target.with_name(f"{target.stem}{suffix}{target.suffix}"),
                         queries=picks.tolist())
    return metrics


def metrics_from_features(query: np.ndarray, gallery: np.ndarray, dataset: ReidDataset, cfg: ReidEvalConfig,
                          report_dir: Path | None = None) -> dict[str, float]:
    """Metrics of global embeddings under ``cfg.metric`` (see :func:`metrics_from_distances`)."""
    return metrics_from_distances(distance_matrix(query, gallery, cfg.metric), dataset, cfg,
                                  dist_qq=lambda: distance_matrix(query, query, cfg.metric),
                                  dist_gg=lambda: distance_matrix(gallery, gallery, cfg.metric),
                                  report_dir=report_dir)


def evaluate_reid_model(model: torch.nn.Module, dataset: ReidDataset, data: ReidDataConfig, cfg: ReidEvalConfig,
                        report_dir: Path | None = None, progress: bool = False) -> dict[str, float]:
    """Extract, rank and score the query/gallery split of ``dataset`` with ``model`` (eval mode)."""
    query, gallery = extract_split_features(model, dataset, data, cfg, progress)
    return metrics_from_features(query, gallery, dataset, cfg, report_dir)
