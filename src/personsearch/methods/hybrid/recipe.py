"""Hybrid pre-training (Tian et al., "Divide and Conquer: Hybrid Pre-training for Person Search",
AAAI 2024): one whole person search network (trunk, RPN, RoI heads, norm-aware embedding) trained
on sub-task data only, each sample training the losses its labels support.

- Detection scenes (boxes, no identities) go through the detector: RPN, box classification and
  regression, person score (``loss_objectness`` ... ``loss_nae``). Their people carry no identity,
  so OIM gives them no loss (exactly 0); as in OIM, its queue collects them as unlabeled negatives.
- ReID crops (identities) go through the identity path (``embed_regions``: the crop is a scene whose
  one box is the crop, or is pasted into a detection scene, ``data.crop_mode``): OIM and batch-hard
  triplet on the identity features (``loss_crop_oim``, ``loss_crop_triplet``); no detection loss.
- People cut from the detection scenes (and unlabeled crops) take the same identity path without
  an identity: they feed the OIM queue and the intra-task alignment (``loss_align``,
  ``losses/moments.py``): the per-source mean and standard deviation of identity features matched.

The run is a plain person search model: ``model.weights=RUN`` in nae/seqnet/dkd initialises the whole
model, in two_step (``model.weights``) its ReID backbone (``models/search/transfer.py``).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ...data.crop_regions import CropRegionDataset, collate_crop_regions
from ...data.torch_datasets import SceneDataset, collate_scenes
from ...engine.distributed import unwrap_model
from ...evaluation.reid import evaluate_reid
from ...losses import TripletLoss, moment_alignment
from ...models.search import fold_frozen_batchnorm
from ...utils.devices import model_device
from ..search_common.evaluate import detection_metrics
from ..search_common.recipe import PersonSearchRecipe
from .config import HybridConfig
from .data import HybridBatches, PretrainData, read_pretrain_data


class HybridRecipe(PersonSearchRecipe):
    """Person search model trained on detection scenes + ReID crops (module docstring)."""

    CONFIG = HybridConfig
    cfg: HybridConfig  # type: ignore[assignment]
    batches: HybridBatches | None = None

    @cached_property
    def dataset(self) -> PretrainData:  # type: ignore[override]
        """The sub-task datasets, read on first use."""
        return read_pretrain_data(self.cfg.data)

    @cached_property
    def num_pids(self) -> int:
        return self.dataset.num_pids

    @cached_property
    def num_cq(self) -> int:
        return self.cfg.model.num_cq

    @cached_property
    def triplet(self) -> TripletLoss:
        return TripletLoss(self.cfg.loss.triplet_margin, metric="l2")

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d = self.cfg.data
        scenes = SceneDataset([s for scenes in self.dataset.detection_train for s in scenes], flip=d.flip)
        sampler = DistributedSampler(scenes, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.batches = HybridBatches(self.dataset, d, seed, rank, world_size)
        return DataLoader(scenes, batch_size=d.batch_size, sampler=sampler, num_workers=d.workers,
                          collate_fn=collate_scenes, drop_last=True)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        if self.batches:
            self.batches.start_epoch(epoch)

    def training_step(self, model: nn.Module, batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        images, targets = batch
        regions = self.batches.next(self.device)
        losses = self.losses(model, images, targets, regions)
        weights = self.cfg.loss
        total = sum(getattr(weights, key.removeprefix("loss_")) * value for key, value in losses.items())
        return total, {k: float(v.detach()) for k, v in losses.items()}

    def losses(self, model: nn.Module, images: list, targets: list, regions: dict | None) -> dict[str, torch.Tensor]:
        """Unweighted losses of detection scenes (``targets``: boxes, identities ignored) and ``regions``
        (a ``collate_crop_regions`` batch; None = scenes only)."""
        unlabeled = [{"boxes": t["boxes"], "pids": torch.full_like(t["pids"], -1)} for t in targets]
        out = model(images, unlabeled, crops=regions)
        del out["loss_oim"]  # exactly 0: detection scenes have no identity (their people only join the queue)
        if regions is not None:
            out.update(self.crop_losses(model, out.pop("crop_identity"), regions))
        return out

    def crop_losses(self, model: nn.Module, feats: torch.Tensor, crops: dict) -> dict[str, torch.Tensor]:
        """OIM over every region (identities learn, unlabeled ones join the queue), batch-hard triplet
        over the labeled crops, and the alignment of the sources' feature moments."""
        pids, labeled = crops["pids"], crops["pids"] >= 0
        losses = {"loss_crop_oim": unwrap_model(model).roi_heads.oim(feats, pids),
                  "loss_crop_triplet": self.triplet(feats[labeled], pids[labeled])}
        if self.cfg.loss.align > 0:
            a = self.cfg.align
            losses["loss_align"] = moment_alignment(feats, crops["sources"], self.dataset.groups(a.scope), a.min_rows)
        return losses

    @torch.no_grad()
    def reid_metrics(self, model: nn.Module) -> dict[str, float]:
        """mAP / rank-1 of each ReID dataset's query vs gallery crops through the identity path
        (``reid_mAP``, ``reid_rank1``; ``..._<i>`` for the i-th dataset when there are several)."""
        out = {}
        for i, data in enumerate(self.dataset.reid):
            feats = [self._embed_crops(model, split) for split in (data.query, data.gallery)]
            dist = 1.0 - feats[0] @ feats[1].T
            scores = evaluate_reid(dist, np.array([s.pid for s in data.query]), np.array([s.pid for s in data.gallery]),
                                   np.array([s.camid for s in data.query]), np.array([s.camid for s in data.gallery]))
            tag = "" if len(self.dataset.reid) == 1 else f"_{i}"
            out.update({f"reid_mAP{tag}": scores.mAP, f"reid_rank1{tag}": float(scores.cmc[0])})
        return out

    def _embed_crops(self, model: nn.Module, samples) -> np.ndarray:
        d, device = self.cfg.data, model_device(model)
        crops = CropRegionDataset([s.path for s in samples], [0] * len(samples), 0, d.crop_height, flip=0.0)
        loader = DataLoader(crops, batch_size=self.cfg.eval.batch, collate_fn=collate_crop_regions)
        rows = [model.embed_regions([im.to(device) for im in b["images"]], [bx.to(device) for bx in b["boxes"]],
                                    b["scales"]) for b in loader]
        return torch.cat(rows).float().cpu().numpy()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Detection AP / recall on the held-out detection scenes and ReID metrics on the ReID test splits."""
        net = fold_frozen_batchnorm(model) if self.cfg.model.fold_bn else model
        detections, _ = self.gallery_outputs(net)
        return {**detection_metrics(self.dataset, detections), **self.reid_metrics(net)}

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """Tiny detection scenes + Market crops, small batches, few proposals."""
        root = Path(synth_root)
        return [f"data.detection_roots=[{root / 'detection/annotations/instances_person.json'}]",
                f"data.reid_roots=[{root / 'market1501'}]", "data.workers=0", "data.min_size=160",
                "data.max_size=240", "data.crop_height=64", "data.batch.p=4", "data.batch.k=2",
                "data.batch.scene_persons=4", "model.num_cq=64", "model.roi_output_size=[6,6]",
                "model.box_batch_size=16", "model.rpn_post_nms=[100,50]", "model.detections_per_img=20"]
