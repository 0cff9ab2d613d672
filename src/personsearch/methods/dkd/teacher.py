"""A crop ReID teacher run on person boxes of scene regions (DKD's teacher, frozen)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from ...data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ...engine.teachers import freeze
from ..runs import load_run


class CropTeacher(nn.Module):
    """Cuts each box out of its image region (RoIAlign to the ReID model's ``input_size``), normalises
    it as the ReID model was trained, and returns ``(features (N, D), logits (N, K) or None)``."""

    def __init__(self, reid: nn.Module, input_size: tuple[int, int], classifier: nn.Module | None) -> None:
        super().__init__()
        self.reid, self.classifier, self.input_size = reid, classifier, tuple(input_size)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        freeze(self)

    def train(self, mode: bool = True) -> "CropTeacher":
        return super().train(False)  # always the inference form (BatchNorm statistics frozen)

    @torch.no_grad()
    def forward(self, images: list[Tensor], boxes: list[Tensor]) -> tuple[Tensor, Tensor | None]:
        crops = torch.cat([roi_align(image[None].float(), [box.float().reshape(1, 4)], self.input_size,
                                     spatial_scale=1.0, sampling_ratio=2, aligned=True)
                           for image, box in zip(images, boxes)])
        feats = self.reid((crops - self.mean) / self.std)
        logits = self.classifier(feats) if self.classifier is not None else None
        return feats, logits

    def cosine_logits(self, feats: Tensor, scale: float) -> Tensor:
        """``scale`` x cosine between each feature and each identity's classifier weight (N, K): the
        teacher's identity distribution in the form of an OIM student's (unit features, unit prototypes)."""
        if self.classifier is None:
            raise ValueError("the teacher has no identity classifier")
        weight = F.normalize(self.classifier.weight.float(), dim=1)
        return F.normalize(feats.float(), dim=1) @ weight.t() * float(scale)


def load_crop_teacher(run: str | Path | None) -> tuple[CropTeacher, dict]:
    """The teacher of a trained run with a crop embedder (``two_step``, ``baseline``, ...) and that run's
    config as a dict (to check it against the student's data)."""
    if run is None or not str(run):
        raise ValueError("teacher: no teacher run given (train one: personsearch train two_step --out RUN; "
                         "then --set teacher=RUN)")
    cfg, recipe, model = load_run(run, need_data=False)
    forms = recipe.inference(model)
    if forms.crop_embedder is None:
        raise ValueError(f"teacher {run}: a '{cfg.method}' run has no crop ReID model")
    embedder = forms.crop_embedder
    classifier = getattr(embedder, "classifier", None)
    return CropTeacher(embedder, forms.input_size, classifier), cfg
