"""Person search evaluation shared by every scene recipe: the protocols' galleries, search and
detection metrics from detections + embeddings (numbers from personsearch.evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...data.galleries import cuhk_sysu_galleries, prw_galleries
from ...data.images import read_image
from ...data.records import SearchDataset
from ...evaluation.detection import evaluate_detection
from ...evaluation.search import evaluate_search
from ...inference.crops import crop_people
from ...utils.devices import model_device
from ...utils.progress import iterate


def image_tensor(path: Path, device: torch.device) -> torch.Tensor:
    """(3, H, W) float image in [0, 1] on ``device``."""
    array = np.asarray(read_image(path), np.uint8).copy()
    return torch.from_numpy(array).to(device).permute(2, 0, 1).float().div_(255)


def detection_metrics(dataset: SearchDataset, detections: dict[str, np.ndarray]) -> dict[str, float]:
    """``det_AP`` and ``det_recall`` of (N, 5) detections on the test scenes (SeqNet: scores >= 0.01)."""
    gt = {s.name: np.asarray(s.boxes, np.float32) for s in dataset.gallery}
    det = evaluate_detection(gt, detections)
    return {"det_AP": det["AP"], "det_recall": det["recall"]}


def search_metrics(dataset: SearchDataset, eval_cfg, query_feats: np.ndarray, detections: dict[str, np.ndarray],
                   det_feats: dict[str, np.ndarray], contexts: Sequence[np.ndarray] | None = None,
                   tag: str = "") -> dict[str, float]:
    """mAP / top-k per CUHK-SYSU gallery size (``name@size``) or under the PRW protocol; with
    ``contexts`` also CBGM's (``name_cbgm@size``). ``tag`` is inserted before ``@`` (``mAP_imagenet@100``).
    ``eval_cfg`` gives ``det_thresh``, ``gallery_sizes``, ``prw_cross_camera`` and, for CBGM, ``cbgm_k``."""
    if dataset.gallery_lists:
        protocols = [(f"@{size}", cuhk_sysu_galleries(dataset, size)[1])
                     for size in eval_cfg.gallery_sizes or tuple(sorted(dataset.gallery_lists))]
    else:
        protocols = [("", prw_galleries(dataset, cross_camera=eval_cfg.prw_cross_camera)[1])]
    metrics: dict[str, float] = {}
    for suffix, galleries in protocols:
        scores = evaluate_search(query_feats, galleries, detections, det_feats, eval_cfg.det_thresh)
        metrics.update({f"{k}{tag}{suffix}": v for k, v in scores.items()})
        if contexts is not None:
            scores = evaluate_search(query_feats, galleries, detections, det_feats, eval_cfg.det_thresh,
                                     query_context=contexts, cbgm_k1=eval_cfg.cbgm_k[0])
            metrics.update({f"{k}{tag}_cbgm{suffix}": v for k, v in scores.items()})
    return metrics


@torch.no_grad()
def crop_embeddings(embedder: torch.nn.Module, path: Path, boxes: np.ndarray, size: tuple[int, int],
                    batch: int = 64) -> np.ndarray:
    """L2-normalised (N, D) embeddings of the ``boxes`` of one image by a crop model, on its device."""
    device = model_device(embedder)
    if len(boxes) == 0:
        return np.zeros((0, 0), np.float32)
    crops = crop_people(image_tensor(path, device), boxes, size)
    feats = torch.cat([embedder(crops[i:i + batch]) for i in range(0, len(crops), batch)])
    return torch.nn.functional.normalize(feats.float(), dim=1).cpu().numpy()


def crop_model_outputs(embedder: torch.nn.Module, dataset: SearchDataset, detections: dict[str, np.ndarray],
                       size: tuple[int, int], det_thresh: float) -> tuple[dict, dict, np.ndarray]:
    """Two-step evaluation inputs from a crop model: the detections scoring >= ``det_thresh`` with
    their crops' embeddings (by scene name), and the embeddings of the queries' ground-truth boxes."""
    kept, feats = {}, {}
    paths = {s.name: s.path for s in dataset.gallery}
    for name, det in iterate(detections.items(), "embedding crops", unit="scene"):
        det = det[det[:, 4] >= det_thresh]
        kept[name], feats[name] = det, crop_embeddings(embedder, paths[name], det[:, :4], size)
    queries = np.concatenate([crop_embeddings(embedder, q.image, np.asarray(q.box, np.float64)[None], size)
                              for q in dataset.queries])
    return kept, feats, queries
