"""The person search recipe base: scenes, loader, model from settings, losses, exact-protocol
evaluation (optionally with CBGM), inference forms (frozen BatchNorm folded).

NAE and SeqNet are this recipe with their own default settings (``model.head``, sampling, loss
weights); DKD and hybrid pre-training extend it. The model follows
``personsearch.models.search.PersonSearchModel``'s interface: training ``model(images, targets) ->
losses``, eval ``model(images) -> [{"boxes", "scores", "embeddings"}]``,
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

from ...data.records import UNLABELED, SearchDataset
from ...data.registry import read_search_dataset
from ...data.samplers import PKSampler
from ...data.scene_crops import SceneRegionDataset, collate_regions, scene_crop_samples
from ...data.torch_datasets import SceneDataset, collate_scenes
from ...data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ...engine.distributed import prepare_batch, unwrap_model
from ...engine.recipe import InferenceModels, Recipe
from ...evaluation.cbgm import query_context
from ...losses import TripletLoss
from ...losses.oim import OIMLoss
from ...models.search import build_person_search_model, fold_frozen_batchnorm
from ...utils.devices import model_device
from ...utils.progress import iterate
from .baselines import imagenet_crop_metrics
from .config import SearchRecipeConfig
from .evaluate import detection_metrics, image_tensor, search_metrics


def train_subset(scenes: list, fraction: float, seed: int) -> list:
    """``round(fraction * len(scenes))`` scenes (at least one) drawn without replacement with ``seed``,
    in their original order; ``fraction`` 1 keeps them all. The same subset for every method."""
    if fraction >= 1.0:
        return list(scenes)
    count = max(1, round(fraction * len(scenes)))
    keep = np.sort(np.random.default_rng(seed).choice(len(scenes), size=count, replace=False))
    return [scenes[i] for i in keep]


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


class IdentityBatches:
    """PK batches of labeled people cut from the training scenes (``data.identity_batch``), drawn one
    per training step; the sequence restarts at every epoch from (seed, epoch), so a resumed run
    draws the same batches."""

    def __init__(self, scenes, cfg, sizes: tuple[int, int], workers: int, seed: int, rank: int,
                 world_size: int) -> None:
        samples = scene_crop_samples(scenes)
        self.min_size, self.max_size = sizes
        self.dataset = SceneRegionDataset(samples, cfg.context, cfg.isa, cfg.flip)
        self.sampler = PKSampler([s.pid for s in samples], cfg.p, cfg.k, seed=seed, rank=rank, world_size=world_size)
        self.batch, self.workers = cfg.p * cfg.k, workers
        self.epoch, self.cycle, self.iterator = 0, 0, None

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.cycle, self.iterator = epoch, 0, None

    def _loader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch, sampler=self.sampler, drop_last=True,
                          num_workers=self.workers, collate_fn=collate_regions)

    def _restart(self) -> None:
        self.sampler.set_epoch(self.epoch * 10_000 + self.cycle)
        self.cycle += 1
        self.iterator = iter(self._loader())

    def next_batch(self, device: torch.device) -> dict:
        """The next collated batch on ``device`` (a new pass starts when one is used up)."""
        if self.iterator is None:
            self._restart()
        try:
            batch = next(self.iterator)
        except StopIteration:
            self._restart()
            batch = next(self.iterator)
        return prepare_batch(batch, device)

    def next(self, device: torch.device) -> dict:
        """The next batch on ``device``: ``images``, ``boxes`` (lists), ``pids``, and ``scales``: the
        resize the model's transform gives each region's whole scene (torchvision's rule)."""
        batch = self.next_batch(device)
        batch["scales"] = [min(self.min_size / min(h, w), self.max_size / max(h, w)) for h, w in batch["scene_sizes"]]
        return batch


class PersonSearchRecipe(Recipe):
    """Scenes in CUHK-SYSU/PRW format; evaluation with the exact protocols. Subclasses build the model."""

    CONFIG = SearchRecipeConfig
    cfg: SearchRecipeConfig
    identity_batches: IdentityBatches | None = None

    @cached_property
    def dataset(self) -> SearchDataset:
        """The scenes, read on first use (inference from a run needs no dataset)."""
        return read_search_dataset(self.cfg.data.format, self.cfg.data.root)

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

    def build_model(self) -> nn.Module:
        m, d = self.cfg.model, self.cfg.data
        oim = OIMLoss(256, self.num_pids, self.num_cq)
        return build_person_search_model(
            m.backbone, oim, head=m.head, weights=m.weights, embedding_dim=256, min_size=d.min_size,
            max_size=d.max_size, roi_output_size=tuple(m.roi_output_size), box_batch_size_per_image=m.box_batch_size,
            fg_iou_thresh=m.fg_iou, bg_iou_thresh=m.bg_iou, rpn_pre_nms_top_n=tuple(m.rpn_pre_nms),
            rpn_post_nms_top_n=tuple(m.rpn_post_nms), box_score_thresh=m.score_thresh, box_nms_thresh=m.nms_thresh,
            detections_per_img=m.detections_per_img, embedding_grad_scale=m.embedding_grad_scale)

    def param_groups(self, model: nn.Module) -> list[dict]:
        """The embedding head at ``model.embedding_lr_mult`` x the base learning rate, the rest at 1x."""
        lr, mult = self.cfg.engine.lr, self.cfg.model.embedding_lr_mult
        head = {id(p) for p in model.roi_heads.embedding_head.parameters()}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head]
        embedding = [p for p in model.roi_heads.embedding_head.parameters() if p.requires_grad]
        return [{"params": rest, "lr": lr}, {"params": embedding, "lr": lr * mult}]

    def training_step(self, model: nn.Module, batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        images, targets = batch
        crops = self.identity_batches.next(self.device) if self.identity_batches else None
        losses = model(images, [{"boxes": t["boxes"], "pids": t["pids"]} for t in targets], crops=crops)
        weights = self.cfg.loss
        if crops is not None:
            losses.update(self.crop_losses(model, losses.pop("crop_identity"), crops))
        total = sum(getattr(weights, key.removeprefix("loss_")) * value for key, value in losses.items())
        return total, {k: float(v.detach()) for k, v in losses.items()}

    def crop_losses(self, model: nn.Module, feats: torch.Tensor, crops: dict) -> dict[str, torch.Tensor]:
        """Losses on the identity batch's unit features (N, D): OIM (which then updates its memory)
        and batch-hard triplet. Keys ``loss_<name>`` are weighted by ``loss.<name>``."""
        return {"loss_crop_oim": unwrap_model(model).roi_heads.oim(feats, crops["pids"]),
                "loss_crop_triplet": self.triplet(feats, crops["pids"])}

    @cached_property
    def train_scenes(self) -> list:
        """The training scenes used: all, or the ``data.train_fraction`` subset drawn with ``data.subset_seed``."""
        return train_subset(self.dataset.train, self.cfg.data.train_fraction, self.cfg.data.subset_seed)

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d = self.cfg.data
        scenes = SceneDataset([s for s in self.train_scenes if len(s.boxes)], flip=d.flip)
        sampler = DistributedSampler(scenes, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        if d.identity_batch.p > 0:
            self.identity_batches = IdentityBatches(self.train_scenes, d.identity_batch, (d.min_size, d.max_size),
                                                    d.workers, seed, rank, world_size)
            self.triplet = TripletLoss(self.cfg.loss.triplet_margin, metric="l2")
        return DataLoader(scenes, batch_size=d.batch_size, sampler=sampler, num_workers=d.workers,
                          collate_fn=collate_scenes, drop_last=True)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        if self.identity_batches:
            self.identity_batches.start_epoch(epoch)

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
    def query_contexts(self, model: nn.Module, queries) -> list[np.ndarray]:
        """CBGM context of every query: the other people detected in its image (gallery form)."""
        device, (_, k2) = model_device(model), self.cfg.eval.cbgm_k
        contexts = []
        for q in iterate(queries, "query images", unit="image"):
            out = model([image_tensor(q.image, device)])[0]
            contexts.append(query_context(out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy(),
                                          out["embeddings"].float().cpu().numpy(), q.box, self.cfg.eval.det_thresh, k2))
        return contexts

    @torch.no_grad()
    def query_features(self, model: nn.Module, queries) -> np.ndarray:
        """Embeddings of the queries' ground-truth boxes (the query path of the RoI head)."""
        device = model_device(model)
        rows = [model.extract_query([image_tensor(q.image, device)],
                                    [torch.as_tensor(q.box, dtype=torch.float32, device=device)[None]])[0]
                for q in queries]
        return torch.cat(rows).float().cpu().numpy()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Search mAP/top-k per gallery size (CUHK-SYSU) or PRW protocol, plus detection AP/recall;
        with ``eval.cbgm`` the same again with CBGM (keys ``..._cbgm``)."""
        cfg = self.cfg.eval
        net = fold_frozen_batchnorm(model) if self.cfg.model.fold_bn else model
        detections, feats = self.gallery_outputs(net)
        metrics = detection_metrics(self.dataset, detections)
        query_feats = self.query_features(net, self.dataset.queries)  # builders keep the readers' order
        contexts = self.query_contexts(net, self.dataset.queries) if cfg.cbgm else None
        metrics.update(search_metrics(self.dataset, cfg, query_feats, detections, feats, contexts))
        if cfg.imagenet_baseline:
            metrics.update(imagenet_crop_metrics(self.dataset, cfg, detections))
        return metrics

    def inference(self, model: nn.Module) -> InferenceModels:
        """Whole images through the model end to end; crops through its query path (frozen BatchNorm
        folded into the convolutions when ``model.fold_bn``: same outputs, faster)."""
        model = fold_frozen_batchnorm(model) if self.cfg.model.fold_bn else model.eval()
        return InferenceModels(crop_embedder=CropsAsScenes(model), input_size=self.input_size, scene_model=model)

    @property
    def input_size(self) -> tuple[int, int]:
        """Crops are embedded at the scenes' resize (shorter side ``min_size``), as a 2:1 person box."""
        side = int(self.cfg.data.min_size)
        return side, side // 2

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """Tiny CUHK-SYSU scenes at their native size, few proposals, one gallery size."""
        return [f"data.root={Path(synth_root) / 'cuhk_sysu'}", "data.format=cuhk-sysu", "data.workers=0",
                "data.min_size=160", "data.max_size=240", "model.num_cq=64", "model.roi_output_size=[6,6]",
                "model.box_batch_size=16", "model.rpn_post_nms=[100,50]", "model.detections_per_img=20",
                "eval.gallery_sizes=[10]", "eval.cbgm=true"]
