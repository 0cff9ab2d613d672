"""The ReID recipe base: dataset, PK loader, model from config, evaluation; subclasses add losses."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ...data.records import ReidDataset
from ...data.registry import read_dataset
from ...data.samplers import PKSampler
from ...data.torch_datasets import ReidImageDataset
from ...data.transforms import build_train_transform
from ...engine.recipe import Recipe
from ...models import build_reid_model
from .config import ReidRecipeConfig
from .evaluate import evaluate_reid_model


def load_reid_dataset(fmt: str, root: str | Path) -> ReidDataset:
    """Read a dataset that has train/query/gallery splits, or fail naming the format."""
    data = read_dataset(fmt, root)
    if not isinstance(data, ReidDataset):
        raise ValueError(f"format '{fmt}' has no train/query/gallery splits; a ReID recipe needs one")
    return data


class ReidRecipe(Recipe):
    """Shared parts of every ReID recipe; ``training_step`` is the method's own."""

    CONFIG = ReidRecipeConfig
    cfg: ReidRecipeConfig

    @cached_property
    def dataset(self) -> ReidDataset:
        """The recipe's dataset, read on first use (inference from a run needs no dataset)."""
        return load_reid_dataset(self.cfg.data.format, self.cfg.data.root)

    @cached_property
    def num_classes(self) -> int:
        """Identity classes of the classifier (assign to build a model without reading the data)."""
        return self.dataset.num_train_pids

    def restore_sizes(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Take the classifier size from trained weights instead of the dataset."""
        rows = [v.shape[0] for k, v in state_dict.items() if k.endswith("classifier.weight")]
        self.num_classes = rows[0] if rows else 0

    def build_model(self) -> torch.nn.Module:
        m = self.cfg.model
        return build_reid_model(m.backbone, self.num_classes, weights=m.weights, last_stride=m.last_stride,
                                pooling=m.pooling, neck=m.neck, embed_dim=m.embed_dim,
                                img_size=(self.cfg.data.height, self.cfg.data.width))

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d = self.cfg.data
        train = ReidImageDataset(self.dataset.train, build_train_transform(d.height, d.width, d.augment))
        sampler = PKSampler([s.pid for s in self.dataset.train], d.p, d.k, seed=seed, rank=rank, world_size=world_size)
        return DataLoader(train, batch_size=d.p * d.k, sampler=sampler, num_workers=d.workers, drop_last=True,
                          persistent_workers=False)

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        return evaluate_reid_model(model, self.dataset, self.cfg.data, self.cfg.eval, self.report_dir)

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """Tiny Market-format data, small crops, a 4 x 2 PK batch, no data workers."""
        return [f"data.root={Path(synth_root) / 'market1501'}", "data.format=market1501", "data.height=64",
                "data.width=32", "data.p=4", "data.k=2", "data.workers=0", "data.test_batch=64"]
