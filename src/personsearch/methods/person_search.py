"""End-to-end person search (NAE / OIM): train on scenes, evaluate with the exact protocols."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ..data.images import read_image
from ..data.records import UNLABELED, SearchDataset
from ..data.registry import read_dataset
from ..data.torch_datasets import SceneDataset, collate_scenes
from ..evaluation.detection import evaluate_detection
from ..evaluation.search import evaluate_search
from ..evaluation.search_galleries import cuhk_sysu_galleries, prw_galleries
from ..models.search import build_person_search_model
from .search_config import SearchRecipeConfig


def _to_tensor(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(read_image(path), np.uint8).copy()).permute(2, 0, 1).float().div_(255)


class PersonSearchRecipe:
    """Faster R-CNN + NAE head + OIM loss on CUHK-SYSU/PRW-format scenes."""

    CONFIG = SearchRecipeConfig

    def __init__(self, cfg: SearchRecipeConfig, report_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.report_dir = report_dir

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

    def build_model(self) -> torch.nn.Module:
        m, d = self.cfg.model, self.cfg.data
        return build_person_search_model(m.backbone, self.num_pids, weights=m.weights,
                                         min_size=d.min_size, max_size=d.max_size, num_cq=self.num_cq,
                                         roi_output_size=m.roi_output_size, box_batch_size_per_image=m.box_batch_size,
                                         rpn_post_nms_top_n=tuple(m.rpn_post_nms),
                                         detections_per_img=m.detections_per_img,
                                         embedding_grad_scale=m.embedding_grad_scale)

    def param_groups(self, model: torch.nn.Module) -> list[dict]:
        """The embedding head at ``model.embedding_lr_mult`` x the base learning rate, the rest at 1x."""
        lr, mult = self.cfg.engine.lr, self.cfg.model.embedding_lr_mult
        head = {id(p) for p in model.roi_heads.embedding_head.parameters()}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head]
        groups = [{"params": rest, "lr": lr}]
        embedding = [p for p in model.roi_heads.embedding_head.parameters() if p.requires_grad]
        return groups + [{"params": embedding, "lr": lr * mult}]

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d = self.cfg.data
        scenes = SceneDataset([s for s in self.dataset.train if len(s.boxes)], flip=d.flip)
        sampler = DistributedSampler(scenes, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        return DataLoader(scenes, batch_size=d.batch_size, sampler=sampler, num_workers=d.workers,
                          collate_fn=collate_scenes, drop_last=True)

    def training_step(self, model: torch.nn.Module, batch, epoch: int):
        images, targets = batch
        losses = model(images, [{"boxes": t["boxes"], "pids": t["pids"]} for t in targets])
        weights = self.cfg.loss
        total = sum(getattr(weights, key.removeprefix("loss_")) * value for key, value in losses.items())
        return total, {k: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def gallery_outputs(self, model: torch.nn.Module) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Detections (N, 5) and embeddings (N, D) of every test scene, by image name."""
        detections, feats = {}, {}
        for scene in self.dataset.gallery:
            out = model([_to_tensor(scene.path)])[0]
            boxes = torch.cat([out["boxes"], out["scores"][:, None]], 1)
            detections[scene.name] = boxes.float().numpy()
            feats[scene.name] = out["embeddings"].float().numpy()
        return detections, feats

    @torch.no_grad()
    def query_features(self, model: torch.nn.Module, queries) -> np.ndarray:
        """Embeddings of the queries' ground-truth boxes (the query path of the RoI head)."""
        rows = [model.extract_query([_to_tensor(q.image)], [torch.as_tensor(q.box, dtype=torch.float32)[None]])[0]
                for q in queries]
        return torch.cat(rows).float().numpy()

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Search mAP/top-k per gallery size (CUHK-SYSU) or PRW protocol, plus detection AP/recall."""
        model.eval()
        detections, feats = self.gallery_outputs(model)
        gt = {s.name: np.asarray(s.boxes, np.float32) for s in self.dataset.gallery}
        det = evaluate_detection(gt, detections)
        metrics = {"det_AP": det["AP"], "det_recall": det["recall"]}
        query_feats = self.query_features(model, self.dataset.queries)  # builders keep the readers' order
        if self.dataset.gallery_lists:
            sizes = self.cfg.eval.gallery_sizes or tuple(sorted(self.dataset.gallery_lists))
            for size in sizes:
                queries, galleries = cuhk_sysu_galleries(self.dataset, size)
                scores = evaluate_search(query_feats, galleries, detections, feats, self.cfg.eval.det_thresh)
                metrics.update({f"{k}@{size}": v for k, v in scores.items()})
        else:
            queries, galleries = prw_galleries(self.dataset, cross_camera=self.cfg.eval.prw_cross_camera)
            metrics.update(evaluate_search(query_feats, galleries, detections, feats, self.cfg.eval.det_thresh))
        return metrics
