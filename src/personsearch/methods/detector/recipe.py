"""Person detector recipe: Faster R-CNN trained on the training scenes' boxes, scored by detection AP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...engine.recipe import InferenceModels
from ...evaluation.detection import evaluate_detection
from ...models.search import build_person_detector, fold_frozen_batchnorm
from ...utils.devices import model_device
from ...utils.progress import iterate
from ..search_common.recipe import PersonSearchRecipe, image_tensor
from .config import DetectorRecipeConfig


def build_detector(model_cfg, data_cfg) -> nn.Module:
    """The detector described by a ``DetectorModelConfig`` at the scenes' size."""
    m = model_cfg
    return build_person_detector(m.backbone, weights=m.weights, min_size=data_cfg.min_size, max_size=data_cfg.max_size,
                                 roi_output_size=tuple(m.roi_output_size), rpn_pre_nms_top_n=tuple(m.rpn_pre_nms),
                                 rpn_post_nms_top_n=tuple(m.rpn_post_nms), box_batch_size_per_image=m.box_batch_size,
                                 box_score_thresh=m.score_thresh, box_nms_thresh=m.nms_thresh,
                                 detections_per_img=m.detections_per_img)


@torch.no_grad()
def detect_scenes(detector: nn.Module, scenes, desc: str = "detecting") -> dict[str, np.ndarray]:
    """(N, 5) ``[x1, y1, x2, y2, score]`` of every scene, by name, on the detector's own device."""
    device = model_device(detector)
    out = {}
    for scene in iterate(scenes, desc, unit="scene"):
        found = detector([image_tensor(scene.path, device)])[0]
        out[scene.name] = torch.cat([found["boxes"], found["scores"][:, None]], 1).float().cpu().numpy()
    return out


class DetectorRecipe(PersonSearchRecipe):
    """Scenes in, person boxes out; its run is the ``detector_run`` of a two-step recipe."""

    CONFIG = DetectorRecipeConfig

    def build_model(self) -> nn.Module:
        return build_detector(self.cfg.model, self.cfg.data)

    def param_groups(self, model: nn.Module) -> list[dict]:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def restore_sizes(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Nothing depends on the data."""

    def training_step(self, model: nn.Module, batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        images, targets = batch
        targets = [{"boxes": t["boxes"], "labels": torch.ones_like(t["pids"])} for t in targets]
        losses = model(images, targets)
        return sum(losses.values()), {k: float(v.detach()) for k, v in losses.items()}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        net = fold_frozen_batchnorm(model) if self.cfg.model.fold_bn else model
        detections = detect_scenes(net, self.dataset.gallery)
        gt = {s.name: np.asarray(s.boxes, np.float32) for s in self.dataset.gallery}
        det = evaluate_detection(gt, detections, det_thresh=self.cfg.eval.det_thresh)
        return {"det_AP": det["AP"], "det_recall": det["recall"]}

    def inference(self, model: nn.Module) -> InferenceModels:
        """A detector has no embedder: it is used behind a crop ReID model (the two_step recipe)."""
        net = fold_frozen_batchnorm(model) if self.cfg.model.fold_bn else model.eval()
        return InferenceModels(crop_embedder=None, input_size=self.input_size, detector=net)

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        return [f"data.root={Path(synth_root) / 'cuhk_sysu'}", "data.format=cuhk-sysu", "data.workers=0",
                "data.min_size=160", "data.max_size=240", "model.roi_output_size=[6,6]", "model.box_batch_size=16",
                "model.rpn_post_nms=[100,50]", "model.detections_per_img=20"]
