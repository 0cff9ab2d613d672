"""Two-step person search as a recipe: the crop ReID model trains here, the detector comes from a run.

Training: BoT (cross-entropy + batch-hard triplet, PK batches) on the labeled ground-truth boxes of
the training scenes, cut out on the fly (optionally with ISA). The detector of ``detector_run`` is
part of the model (frozen, never optimised) so the run is self-contained: evaluation detects the
test scenes with it, embeds the detected crops and the queries' boxes, and scores the exact
CUHK-SYSU / PRW protocols; ``load_searcher`` turns the run into detector + crop embedder.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from ...data.records import SearchDataset
from ...data.registry import read_search_dataset
from ...data.samplers import PKSampler
from ...data.scene_crops import SceneCropDataset, scene_crop_samples
from ...data.transforms import build_train_transform
from ...engine.checkpoint import read_weights
from ...engine.recipe import InferenceModels, Recipe
from ...engine.teachers import freeze
from ...models import build_reid_model
from ...models.search import fold_frozen_batchnorm
from ...utils.config import load_yaml
from ..detector.recipe import build_detector, detect_scenes
from ..reid_common.losses import BotLoss
from ..search_common.evaluate import crop_model_outputs, detection_metrics, search_metrics
from .config import TwoStepRecipeConfig


class TwoStepModel(nn.Module):
    """A crop ReID model (``reid``, trained) beside a person detector (``detector``, frozen, eval mode).
    ``forward`` is the ReID model's."""

    def __init__(self, reid: nn.Module, detector: nn.Module) -> None:
        super().__init__()
        self.reid = reid
        self.detector = freeze(detector)

    def forward(self, crops: torch.Tensor):
        return self.reid(crops)

    def train(self, mode: bool = True) -> "TwoStepModel":
        super().train(mode)
        self.detector.eval()
        return self


class TwoStepRecipe(Recipe):
    """Detector run + crop ReID trained on the same scenes' ground-truth crops."""

    CONFIG = TwoStepRecipeConfig
    cfg: TwoStepRecipeConfig

    @cached_property
    def dataset(self) -> SearchDataset:
        return read_search_dataset(self.cfg.data.format, self.cfg.data.root)

    @cached_property
    def num_classes(self) -> int:
        return self.dataset.num_train_pids

    def restore_sizes(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.num_classes = int(state_dict["reid.classifier.weight"].shape[0]) \
            if "reid.classifier.weight" in state_dict else 0

    def build_model(self) -> nn.Module:
        m, d = self.cfg.model, self.cfg.data
        reid = build_reid_model(m.backbone, self.num_classes, weights=m.weights, last_stride=m.last_stride,
                                pooling=m.pooling, neck=m.neck, embed_dim=m.embed_dim, img_size=(d.height, d.width))
        return TwoStepModel(reid, build_detector(self.cfg.detector, self.cfg.data))

    def param_groups(self, model: nn.Module) -> list[dict]:
        return [{"params": [p for p in model.reid.parameters() if p.requires_grad]}]

    def on_train_start(self, model: nn.Module) -> None:
        """Load the detector run's weights into the (frozen) detector; its model settings must match."""
        run = Path(self.cfg.detector_run)
        if not self.cfg.detector_run or not (run / "config.yaml").is_file():
            raise FileNotFoundError(f"detector_run = {self.cfg.detector_run!r}: not a trained detector run "
                                    "(train one: personsearch train detector --out RUN)")
        theirs = load_yaml(run / "config.yaml")
        if theirs.get("method") != "detector":
            raise ValueError(f"detector_run {run} is a '{theirs.get('method')}' run, not a detector run")
        ours = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self.cfg.detector).items()}
        different = {k: (ours[k], theirs["model"].get(k)) for k in ours if ours[k] != theirs["model"].get(k)}
        if different:
            raise ValueError(f"detector settings differ from {run}/config.yaml (ours, theirs): {different}; "
                             "copy its model section into `detector:`")
        model.detector.load_state_dict(read_weights(run))
        freeze(model.detector)

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d = self.cfg.data
        samples = scene_crop_samples(self.dataset.train)
        crops = SceneCropDataset(samples, build_train_transform(d.height, d.width, d.augment), d.isa)
        sampler = PKSampler([s.pid for s in samples], d.p, d.k, seed=seed, rank=rank, world_size=world_size)
        return DataLoader(crops, batch_size=d.p * d.k, sampler=sampler, num_workers=d.workers, drop_last=True)

    def training_step(self, model: nn.Module, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        if not hasattr(self, "loss"):
            self.loss = BotLoss(self.cfg.loss)
        return self.loss(model(batch["images"]), batch["pids"])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Detect the test scenes, embed the kept detections' crops and the queries, score the protocol."""
        detector = fold_frozen_batchnorm(model.detector) if self.cfg.detector.fold_bn else model.detector
        detections = detect_scenes(detector, self.dataset.gallery)
        metrics = detection_metrics(self.dataset, detections)
        kept, feats, queries = crop_model_outputs(model.reid, self.dataset, detections, self.input_size,
                                                  self.cfg.eval.det_thresh)
        metrics.update(search_metrics(self.dataset, self.cfg.eval, queries, kept, feats))
        return metrics

    def inference(self, model: nn.Module) -> InferenceModels:
        model.eval()
        detector = fold_frozen_batchnorm(model.detector) if self.cfg.detector.fold_bn else model.detector
        return InferenceModels(crop_embedder=model.reid, input_size=self.input_size, detector=detector)

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """A one-step detector run first (same tiny settings), then small crops and PK batches."""
        from ..detector.recipe import DetectorRecipe
        from ..smoke import smoke_recipe

        detector_run = Path(work_dir) / "detector-for-two-step"
        if not (detector_run / "model_final.pt").is_file():
            smoke_recipe("detector", synth_root, detector_run, device="cpu")
        shared = [o.replace("model.", "detector.", 1) for o in DetectorRecipe.smoke_overrides(synth_root, work_dir)
                  if o.startswith("model.")]
        return [f"data.root={Path(synth_root) / 'cuhk_sysu'}", "data.format=cuhk-sysu", "data.workers=0",
                "data.min_size=160", "data.max_size=240", "data.height=64", "data.width=32", "data.p=4", "data.k=2",
                f"detector_run={detector_run}", *shared, "eval.gallery_sizes=[10]"]
