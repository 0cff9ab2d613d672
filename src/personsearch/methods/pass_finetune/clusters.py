"""Cluster-contrast parts (Dai et al., 2021; PASS's unsupervised fine-tuning): DBSCAN pseudo-labels
over k-reciprocal Jaccard distances, a cluster memory updated with each cluster's hardest sample,
and PK batches over the current pseudo-labels."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...evaluation.jaccard import jaccard_distance


def pseudo_labels(features: np.ndarray, eps: float = 0.6, min_samples: int = 4, k1: int = 30,
                  k2: int = 6) -> np.ndarray:
    """DBSCAN (precomputed Jaccard distances of the L2-normalised ``features``) labels, -1 = outlier."""
    from sklearn.cluster import DBSCAN

    feats = _unit(np.asarray(features, dtype=np.float32))
    dist = jaccard_distance(feats, k1=min(k1, len(feats) - 1), k2=min(k2, len(feats)), metric="l2")
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=1).fit_predict(dist)


def camera_centred(features: np.ndarray, cameras: np.ndarray) -> np.ndarray:
    """Features with each camera's mean removed: normalise(f_i / |f_i| - mean of f_j / |f_j| over the
    images j of camera(i)). A feature that mostly encodes the camera (its colour cast, its scenery)
    then clusters by what the cameras share instead; camera labels are part of USL ReID's input."""
    feats = np.asarray(features, dtype=np.float32)
    cameras = np.asarray(cameras)
    if len(cameras) != len(feats):
        raise ValueError(f"{len(cameras)} camera ids for {len(feats)} features")
    unit = _unit(feats)
    centred = unit.copy()
    for cam in np.unique(cameras):
        members = cameras == cam
        centred[members] -= unit[members].mean(axis=0)
    return _unit(centred)


def _unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def majority_share(labels: np.ndarray, keys: np.ndarray) -> float:
    """Share of the clustered samples (label >= 0) whose ``keys`` value is their cluster's most common
    one: 1.0 = every cluster holds one key (e.g. one camera); NaN when nothing is clustered."""
    labels, keys = np.asarray(labels), np.asarray(keys)
    kept = labels >= 0
    if not kept.any():
        return float("nan")
    agree = sum(np.unique(keys[labels == c], return_counts=True)[1].max() for c in np.unique(labels[kept]))
    return float(agree / kept.sum())


def cluster_centroids(features: Tensor, labels: Tensor) -> Tensor:
    """(C, D) L2-normalised mean feature of each cluster 0..C-1 (outliers, label -1, ignored)."""
    kept = labels >= 0
    count = int(labels.max()) + 1 if bool(kept.any()) else 0
    sums = torch.zeros(count, features.shape[1], dtype=features.dtype)
    sums.index_add_(0, labels[kept], features[kept])
    return F.normalize(sums, dim=1)


class ClusterMemory:
    """Unit cluster prototypes M (C, D); ``loss(f, y)`` = CE(f M^T / temperature, y) on unit f;
    ``update(f, y)``: M_c <- normalise(m M_c + (1 - m) f_hard), f_hard the batch's least similar
    sample of cluster c (cluster-contrast's hard update; PASS: m = 0.2)."""

    def __init__(self, centroids: Tensor, temperature: float = 0.05, momentum: float = 0.2) -> None:
        if centroids.ndim != 2 or len(centroids) < 2:
            raise ValueError(f"a cluster memory needs >= 2 clusters, got {tuple(centroids.shape)}")
        self.memory = F.normalize(centroids.float(), dim=1)
        self.temperature, self.momentum = float(temperature), float(momentum)

    def loss(self, features: Tensor, labels: Tensor) -> Tensor:
        unit = F.normalize(features.float(), dim=1)
        memory = self.memory.to(unit.device).clone()  # update() changes it in place before backward
        return F.cross_entropy(unit @ memory.t() / self.temperature, labels)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        unit = F.normalize(features.detach().float(), dim=1).cpu()
        labels = labels.cpu()
        memory = self.memory
        for c in labels.unique().tolist():
            members = unit[labels == c]
            hardest = members[(members @ memory[c]).argmin()]
            memory[c] = F.normalize(self.momentum * memory[c] + (1 - self.momentum) * hardest, dim=0)


class PseudoLabelBatchSampler:
    """``iters`` batches per epoch of ``p`` clusters x ``k`` samples each (with replacement inside a
    cluster smaller than k), drawn from the labels set last (:meth:`set_labels`); outliers never.
    Deterministic per (seed, epoch, rank) (``set_epoch``)."""

    def __init__(self, p: int, k: int, iters: int, seed: int = 0, rank: int = 0) -> None:
        if p < 2 or k < 1 or iters < 1:
            raise ValueError(f"need p >= 2 clusters, k >= 1 and iters >= 1 per epoch, got {p}, {k}, {iters}")
        self.p, self.k, self.iters, self.seed, self.rank = p, k, iters, seed, rank
        self.epoch = 0
        self.labels = np.zeros(0, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_labels(self, labels: np.ndarray) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return self.iters

    def __iter__(self) -> Iterator[list[int]]:
        clusters = [np.flatnonzero(self.labels == c) for c in range(int(self.labels.max(initial=-1)) + 1)]
        clusters = [members for members in clusters if len(members)]
        if len(clusters) < self.p:
            raise ValueError(f"{len(clusters)} pseudo-identity clusters, fewer than data.p = {self.p}: lower "
                             "data.p or cluster.eps / cluster.min_samples, or start from a pre-trained model")
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        for _ in range(self.iters):
            batch: list[int] = []
            for c in rng.choice(len(clusters), self.p, replace=False):
                members = clusters[c]
                batch += rng.choice(members, self.k, replace=len(members) < self.k).tolist()
            yield batch
