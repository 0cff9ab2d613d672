"""Hybrid pre-training data: the sub-task datasets, their sources, and the mixed region batches.

Sources are numbered in this order: each detection dataset, each ReID dataset, the unlabeled crops.
A step's region batch holds ``p x k`` identity-labeled ReID crops (PK over all ReID datasets, pids
offset per dataset), ``scene_persons`` people cut from the detection training scenes and
``unlabeled`` unlabeled crops (both pid -1), drawn from (seed, epoch, rank): a resumed run draws
the same batches, DDP ranks draw disjoint PK batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from torch.utils.data import ConcatDataset, DataLoader, Sampler

from ...data.crop_regions import CropRegionDataset, ScenePersonRegions, collate_crop_regions
from ...data.records import DetectionDataset, ReidDataset, SceneAnnotation
from ...data.registry import read_dataset
from ...data.samplers import PKSampler
from ...data.scene_crops import SceneRegionDataset, scene_crop_samples
from ..search_common.recipe import IdentityBatches
from .config import HybridDataConfig


@dataclass
class PretrainData:
    """Detection datasets (training and held-out scenes each), ReID datasets, unlabeled crops."""

    detection_train: list[list[SceneAnnotation]]
    detection_eval: list[list[SceneAnnotation]]
    reid: list[ReidDataset]
    unlabeled: list[Path] = field(default_factory=list)

    @property
    def gallery(self) -> list[SceneAnnotation]:
        """Every held-out detection scene (det AP; the scenes inference checks run on)."""
        return [s for scenes in self.detection_eval for s in scenes]

    @property
    def num_pids(self) -> int:
        return sum(d.num_train_pids for d in self.reid)

    def groups(self, scope: str) -> dict[int, int]:
        """Source -> alignment group: one group (``all``) or one per sub-task (``task``)."""
        detection = len(self.detection_train)
        total = detection + len(self.reid) + (1 if self.unlabeled else 0)
        return {s: 0 if scope == "all" or s < detection else 1 for s in range(total)}


def read_pretrain_data(cfg: HybridDataConfig) -> PretrainData:
    """Read every sub-task dataset; the last ``eval_scenes`` share of each detection set is held out."""
    train, held = [], []
    for root in cfg.detection_roots:
        data = read_dataset(cfg.detection_format, root)
        if not isinstance(data, DetectionDataset):
            raise ValueError(f"{root}: format '{cfg.detection_format}' is not a detection dataset (coco)")
        cut = len(data.images) - int(round(cfg.eval_scenes * len(data.images)))
        train.append(list(data.images[:cut]))
        held.append(list(data.images[cut:]))
    reid = []
    for root in cfg.reid_roots:
        data = read_dataset(cfg.reid_format, root)
        if not isinstance(data, ReidDataset):
            raise ValueError(f"{root}: format '{cfg.reid_format}' is not a ReID dataset with identities")
        reid.append(data)
    unlabeled = list(read_dataset("unlabeled", cfg.unlabeled_root)) if cfg.unlabeled_root else []
    return PretrainData(train, held, reid, unlabeled)


class MixedBatchSampler(Sampler[list[int]]):
    """Index batches over the concatenated region datasets: one PK batch of the labeled crops plus
    ``count`` random rows of each extra pool ``(start, size, count)``."""

    def __init__(self, pk: PKSampler, batch: int, pools: list[tuple[int, int, int]], seed: int, rank: int) -> None:
        self.pk, self.batch, self.pools, self.seed, self.rank = pk, batch, pools, seed, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.pk.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        labeled = list(self.pk)
        for i in range(0, len(labeled) - self.batch + 1, self.batch):
            extra = [int(start + j) for start, size, count in self.pools if size and count
                     for j in rng.integers(0, size, count)]
            yield labeled[i:i + self.batch] + extra

    def __len__(self) -> int:
        return len(self.pk) // self.batch


class HybridBatches(IdentityBatches):
    """The region batch of every step (module docstring), as ``collate_crop_regions`` dicts."""

    def __init__(self, data: PretrainData, cfg: HybridDataConfig, seed: int, rank: int, world_size: int) -> None:
        parts, pids, offset, source = [], [], 0, 0
        backgrounds = [s.path for scenes in data.detection_train for s in scenes]
        flip = 0.5 if cfg.flip else 0.0
        scene_parts = []
        for scenes in data.detection_train:
            regions = SceneRegionDataset(scene_crop_samples(scenes, labeled_only=False), cfg.scene_context, None, flip)
            scene_parts.append(ScenePersonRegions(regions, source, cfg.min_size, cfg.max_size))
            source += 1
        for dataset in data.reid:
            train = dataset.train
            parts.append(CropRegionDataset([s.path for s in train], [s.pid + offset for s in train], source,
                                           cfg.crop_height, cfg.crop_mode, backgrounds, cfg.paste_context, flip))
            pids += [s.pid + offset for s in train]
            offset, source = offset + dataset.num_train_pids, source + 1
        extras = [ConcatDataset(scene_parts)] if scene_parts else []
        pools_spec = [cfg.batch.scene_persons]
        if data.unlabeled:
            extras.append(CropRegionDataset(data.unlabeled, [-1] * len(data.unlabeled), source, cfg.crop_height,
                                            cfg.crop_mode, backgrounds, cfg.paste_context, flip))
            pools_spec.append(cfg.batch.unlabeled)
        self.dataset = ConcatDataset(parts + extras)
        start, pools = len(pids), []
        for extra, count in zip(extras, pools_spec):
            pools.append((start, len(extra), count))
            start += len(extra)
        b = cfg.batch
        pk = PKSampler(pids, b.p, b.k, seed=seed, rank=rank, world_size=world_size)
        self.sampler = MixedBatchSampler(pk, b.p * b.k, pools, seed, rank)
        self.workers = cfg.workers
        self.epoch, self.cycle, self.iterator = 0, 0, None

    def _loader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=self.workers,
                          collate_fn=collate_crop_regions)

    def next(self, device) -> dict:  # type: ignore[override]
        """The next region batch on ``device`` (``scales`` come with every item)."""
        return self.next_batch(device)
