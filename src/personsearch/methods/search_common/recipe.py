"""The person search recipe base: scenes, loader, exact-protocol evaluation, inference forms.

A subclass (NAE, and later SeqNet, DKD, hybrid pre-training) builds the model and its losses; the
model follows ``personsearch.models.search.PersonSearchModel``'s interface: training
``model(images, targets) -> losses``, eval ``model(images) -> [{"boxes", "scores", "embeddings"}]``,
``model.extract_query(images, boxes)`` and ``model.roi_heads.embedding_head.dim``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ...data.galleries import cuhk_sysu_galleries, prw_galleries
from ...data.images import read_image
from ...data.records import UNLABELED, SearchDataset
from ...data.registry import read_dataset
from ...data.torch_datasets import SceneDataset, collate_scenes
from ...data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ...engine.recipe import InferenceModels, Recipe
from ...evaluation.detection import evaluate_detection
from ...evaluation.search import evaluate_search
from ...utils.devices import model_device
from ...utils.progress import iterate
from .config import SearchRecipeConfig


def image_tensor(path: Path, device: torch.device) -> torch.Tensor:
    """(3, H, W) float image in [0, 1] on ``device``."""
    array = np.asarray(read_image(path), np.uint8).copy()
    return torch.from_numpy(array).to(device).permute(2, 0, 1).float().div_(255)


class CropsAsScenes(nn.Module):
    """Embeds ImageNet-normalised person crops with a person search model: each crop is an image
    whose one box is the whole crop (the query path of the RoI head). ``personsearch extract`` and
    two-step use of an end-to-end run go through this."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        images = (crops.float() * self.std + self.mean).clamp_(0, 1)
        h, w = images.shape[-2:]
        box = torch.tensor([[0.0, 0.0, float(w), float(h)]], device=images.device)
        return torch.cat(self.model.extract_query(list(images), [box] * len(images)))


class PersonSearchRecipe(Recipe):
    """Scenes in CUHK-SYSU/PRW format; evaluation with the exact protocols. Subclasses build the model."""

    CONFIG = SearchRecipeConfig
    cfg: SearchRecipeConfig

    @cached_property
    def dataset(self) -> SearchDataset:
        """The scenes, read on first use (inference from a run needs no dataset)."""
        data = read_dataset(self.cfg.data.format, self.cfg.data.root)
        if not isinstance(data, SearchDataset):
            raise ValueError(f"format '{self.cfg.data.format}' is not a person search dataset (cuhk-sysu, prw)")
        return data

    @cached_property
    def num_pids(self) -> int:
        """Labeled identities (OIM lookup table rows)."""
        return self.dataset.num_train_pids

    @cached_property
    def num_cq(self) -> int:
        """Circular queue length: the configured size, capped by the unlabeled boxes in training."""
        unlabeled = sum(int((s.pids == UNLABELED).sum()) for s in self.dataset.train)
        return max(1, min(self.cfg.model.num_cq, unlabeled))

    def restore_sizes(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Take the OIM table sizes from trained weights instead of the dataset."""
        for attr, key in (("num_pids", "roi_heads.oim.lut"), ("num_cq", "roi_heads.oim.cq")):
            if key not in state_dict:
                raise ValueError(f"weights lack '{key}': not a person search model")
            setattr(self, attr, int(state_dict[key].shape[0]))

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d = self.cfg.data
        scenes = SceneDataset([s for s in self.dataset.train if len(s.boxes)], flip=d.flip)
        sampler = DistributedSampler(scenes, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        return DataLoader(scenes, batch_size=d.batch_size, sampler=sampler, num_workers=d.workers,
                          collate_fn=collate_scenes, drop_last=True)

    @torch.no_grad()
    def gallery_outputs(self, model: nn.Module) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Detections (N, 5) and embeddings (N, D) of every test scene, by image name."""
        device = model_device(model)
        detections, feats = {}, {}
        for scene in iterate(self.dataset.gallery, "gallery scenes", unit="scene"):
            out = model([image_tensor(scene.path, device)])[0]
            boxes = torch.cat([out["boxes"], out["scores"][:, None]], 1)
            detections[scene.name] = boxes.float().cpu().numpy()
            feats[scene.name] = out["embeddings"].float().cpu().numpy()
        return detections, feats

    @torch.no_grad()
    def query_features(self, model: nn.Module, queries) -> np.ndarray:
        """Embeddings of the queries' ground-truth boxes (the query path of the RoI head)."""
        device = model_device(model)
        rows = [model.extract_query([image_tensor(q.image, device)],
                                    [torch.as_tensor(q.box, dtype=torch.float32, device=device)[None]])[0]
                for q in queries]
        return torch.cat(rows).float().cpu().numpy()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Search mAP/top-k per gallery size (CUHK-SYSU) or PRW protocol, plus detection AP/recall."""
        detections, feats = self.gallery_outputs(model)
        gt = {s.name: np.asarray(s.boxes, np.float32) for s in self.dataset.gallery}
        det = evaluate_detection(gt, detections)
        metrics = {"det_AP": det["AP"], "det_recall": det["recall"]}
        query_feats = self.query_features(model, self.dataset.queries)  # builders keep the readers' order
        thresh = self.cfg.eval.det_thresh
        if self.dataset.gallery_lists:
            for size in self.cfg.eval.gallery_sizes or tuple(sorted(self.dataset.gallery_lists)):
                _, galleries = cuhk_sysu_galleries(self.dataset, size)
                scores = evaluate_search(query_feats, galleries, detections, feats, thresh)
                metrics.update({f"{k}@{size}": v for k, v in scores.items()})
        else:
            _, galleries = prw_galleries(self.dataset, cross_camera=self.cfg.eval.prw_cross_camera)
            metrics.update(evaluate_search(query_feats, galleries, detections, feats, thresh))
        return metrics

    def inference(self, model: nn.Module) -> InferenceModels:
        """Whole images through the model end to end; crops through its query path."""
        model = model.eval()
        return InferenceModels(crop_embedder=CropsAsScenes(model), input_size=self.input_size, scene_model=model)

    @property
    def input_size(self) -> tuple[int, int]:
        """Crops are embedded at the scenes' resize (shorter side ``min_size``), as a 2:1 person box."""
        side = int(self.cfg.data.min_size)
        return side, side // 2

    @classmethod
    def smoke_overrides(cls, synth_root: Path) -> list[str]:
        """Tiny CUHK-SYSU scenes at their native size, few proposals, one gallery size."""
        return [f"data.root={Path(synth_root) / 'cuhk_sysu'}", "data.format=cuhk-sysu", "data.workers=0",
                "data.min_size=160", "data.max_size=240", "model.num_cq=64", "model.roi_output_size=6",
                "model.box_batch_size=16", "model.rpn_post_nms=[100,50]", "model.detections_per_img=20",
                "eval.gallery_sizes=[10]"]
