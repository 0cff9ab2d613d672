"""PASS unsupervised fine-tuning (cluster-contrast): at every epoch start the training images (their
identities never read) are embedded, clustered (DBSCAN over k-reciprocal Jaccard distances, outliers
dropped) and a cluster memory is built from the cluster means; each step is a PK batch over the
pseudo-identities, trained with CE(f . M^T / 0.05) and followed by the hardest-sample memory update.
Camera ids (USL ReID's usual input) give the logged ``camera_purity`` of the clusters and, with
``cluster.camera_norm``, camera-centred features to cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ...data.torch_datasets import ReidImageDataset
from ...data.transforms import build_test_transform, build_train_transform
from ...engine.distributed import unwrap_model
from ...inference.extract import ExtractConfig, extract_from_paths
from ...utils.collectives import all_gather_tensor, broadcast_object, is_main_process
from .clusters import (ClusterMemory, PseudoLabelBatchSampler, camera_centred, cluster_centroids, majority_share,
                       pseudo_labels)
from .config import PassUslConfig
from .recipe import PassReidRecipe


class PassUslRecipe(PassReidRecipe):
    """No classifier; pseudo-labels and the memory are rebuilt from the model at each epoch start."""

    CONFIG = PassUslConfig
    cfg: PassUslConfig

    num_classes = 0  # identities are never read for training
    memory: ClusterMemory | None = None

    def restore_sizes(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.num_classes = 0

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d, c = self.cfg.data, self.cfg.cluster
        train = ReidImageDataset(self.dataset.train, build_train_transform(d.height, d.width, d.augment))
        self.sampler = PseudoLabelBatchSampler(d.p, d.k, c.iters_per_epoch, seed=seed, rank=rank)
        return DataLoader(train, batch_sampler=self.sampler, num_workers=d.workers, persistent_workers=False)

    def cluster(self, model: torch.nn.Module) -> dict[str, float]:
        """Embed the training images, cluster them, set the sampler's labels and the memory."""
        d, c = self.cfg.data, self.cfg.cluster
        was_training = model.training
        model.eval()
        feats = extract_from_paths(model, [s.path for s in self.dataset.train], build_test_transform(d.height, d.width),
                                   ExtractConfig(batch_size=d.test_batch,
                                                 progress=self.cfg.engine.progress and is_main_process()))
        model.train(was_training)
        cameras = np.array([s.camid for s in self.dataset.train])
        labels = None
        if is_main_process():  # the other ranks receive the labels
            clustered = camera_centred(feats, cameras) if c.camera_norm else feats
            labels = pseudo_labels(clustered, c.eps, c.min_samples, c.k1, c.k2)
        labels = broadcast_object(labels)
        self.sampler.set_labels(labels)
        self.memory = ClusterMemory(cluster_centroids(torch.from_numpy(feats), torch.from_numpy(labels)),
                                    c.temperature, c.momentum) if labels.max() >= 1 else None
        return {"clusters": float(labels.max() + 1), "outliers": float(np.mean(labels < 0)),
                "camera_purity": majority_share(labels, cameras)}

    def on_epoch_start(self, model: torch.nn.Module, epoch: int) -> None:
        self.cluster_stats = self.cluster(model)

    def training_step(self, model: torch.nn.Module, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        if self.memory is None:
            raise ValueError("fewer than 2 pseudo-identity clusters: nothing to contrast (raise cluster.eps)")
        labels = torch.from_numpy(self.sampler.labels[batch["index"].cpu().numpy()]).to(batch["images"].device)
        out = model(batch["images"])
        loss_cc = self.memory.loss(out["embedding"], labels)
        self.memory.update(all_gather_tensor(out["embedding"]), all_gather_tensor(labels))
        return loss_cc, {"loss_cluster": loss_cc.item(), **self.cluster_stats}

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """The fine-tuning smoke settings; loose clusters so that the tiny set forms some."""
        return [*PassReidRecipe.smoke_overrides(synth_root, work_dir), "data.p=2", "cluster.eps=0.75",
                "cluster.min_samples=2", "cluster.k1=6", "cluster.k2=2", "cluster.iters_per_epoch=2"]
