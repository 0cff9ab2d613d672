"""PASS (ECCV 2022): part-aware self-supervised pre-training of a ViT; DINO with ``model.num_parts: 0``.

The model holds the student (part-token ViT + one DINO head per token type: [CLS], PART_1..P), its
EMA teacher (updated after every step with the engine's cosine momentum schedule; global views only,
eval mode) and the teacher's logit centres, so a checkpoint resumes bit for bit and a finished run
holds the teacher backbone that fine-tuning starts from (``model.weights: RUN`` of ``pass_reid``).
Evaluation ranks a labeled Market-format set with the teacher's features (no training on it).
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler

from ...data.folder import list_images
from ...data.multicrop import MultiCrop, MultiCropDataset
from ...engine.distributed import unwrap_model
from ...engine.recipe import InferenceModels, Recipe, StepInfo
from ...engine.teachers import EmaTeacher
from ...losses.dino import DinoHead, TokenCenters, ViewLayout, pass_pairs, self_distillation_loss
from ...models.part_vit import PartTokenViT, build_part_vit
from ..reid_common.config import ReidDataConfig
from ..reid_common.evaluate import evaluate_reid_model
from ..reid_common.recipe import load_reid_dataset
from .config import DinoConfig, PassConfig


class PassNet(nn.Module):
    """Part-token ViT + a DINO head per token type; ``forward(views, layout)`` -> {(token, view): logits}."""

    def __init__(self, backbone: PartTokenViT, heads: list[DinoHead]) -> None:
        super().__init__()
        self.backbone, self.heads = backbone, nn.ModuleList(heads)

    def forward(self, views: list[Tensor], layout: ViewLayout, freeze_last: bool = False) -> dict[tuple[int, int], Tensor]:
        groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
        for v, view in enumerate(views):  # views of one size carrying the same parts run together
            groups.setdefault((tuple(view.shape[-2:]), tuple(layout.parts_of(v))), []).append(v)
        out: dict[tuple[int, int], Tensor] = {}
        for (_, parts), members in groups.items():
            tokens = self.backbone(torch.cat([views[v] for v in members]), parts)
            for slot, token in enumerate([0, *(k + 1 for k in parts)]):
                logits = self.heads[token](tokens[:, slot], freeze_last)
                for v, chunk in zip(members, logits.chunk(len(members))):
                    out[(token, v)] = chunk
        return out


class PassModel(nn.Module):
    """Student, EMA teacher and centres; ``forward`` -> (student logits, teacher logits of the globals)."""

    def __init__(self, student: PassNet, out_dim: int, center_momentum: float) -> None:
        super().__init__()
        self.student = student
        self.teacher = EmaTeacher(student)
        self.centers = TokenCenters(len(student.heads), out_dim, center_momentum)

    def train(self, mode: bool = True) -> "PassModel":
        super().train(mode)
        self.teacher.eval()  # no drop-path in the teacher, ever
        return self

    def forward(self, views: list[Tensor], layout: ViewLayout, freeze_last: bool = False):
        student = self.student(views, layout, freeze_last)
        with torch.no_grad():
            teacher = self.teacher.net(views[:layout.globals], ViewLayout(layout.globals, (), layout.num_parts))
        return student, teacher


class TeacherEmbedder(nn.Module):
    """The teacher backbone as a crop embedder: (B, 3, H, W) -> concat([CLS], mean [PART]s)."""

    def __init__(self, backbone: PartTokenViT) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone.embed(x)


def _collate(items: list[dict]) -> dict:
    views = [torch.stack([item["views"][v] for item in items]) for v in range(len(items[0]["views"]))]
    return {"views": views, "index": torch.tensor([item["index"] for item in items])}


class PassRecipe(Recipe):
    """Self-distillation on unlabeled crops (see the module docstring)."""

    CONFIG = PassConfig
    cfg: PassConfig

    @cached_property
    def multicrop(self) -> MultiCrop:
        return MultiCrop(self.cfg.data.views, self.cfg.model.num_parts)

    @property
    def layout(self) -> ViewLayout:
        """Which views the loss pairs (globals, then locals by part area)."""
        crop = self.multicrop
        return ViewLayout(crop.cfg.global_views, crop.local_areas, crop.num_parts)

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.cfg.data.views.height), int(self.cfg.data.views.width)

    def build_backbone(self, drop_path: float) -> PartTokenViT:
        return build_part_vit(self.cfg.model, self.input_size, drop_path)

    def build_model(self) -> nn.Module:
        m = self.cfg.model
        backbone = self.build_backbone(m.drop_path)
        heads = [DinoHead(backbone.dim, m.out_dim, m.hidden_dim, m.bottleneck_dim) for _ in range(m.num_parts + 1)]
        return PassModel(PassNet(backbone, heads), m.out_dim, self.cfg.loss.center_momentum)

    def param_groups(self, model: nn.Module) -> list[dict]:
        """AdamW groups as DINO: no weight decay on biases, norms, tokens and position vectors."""
        decay, plain = [], []
        for _, param in unwrap_model(model).student.named_parameters():
            if param.requires_grad:
                (plain if param.ndim <= 1 or param.shape[0] == 1 else decay).append(param)
        return [{"params": decay}, {"params": plain, "weight_decay": 0.0}]

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> DataLoader:
        d = self.cfg.data
        dataset = MultiCropDataset(list_images(d.root), self.multicrop)
        if len(dataset) < d.batch_size * world_size:
            raise ValueError(f"data.root {d.root}: {len(dataset)} images, fewer than one batch "
                             f"({d.batch_size} x {world_size} processes)")
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed)  # set_epoch: resumable
        return DataLoader(dataset, batch_size=d.batch_size, sampler=sampler, num_workers=d.workers, drop_last=True,
                          collate_fn=_collate, persistent_workers=False)

    def training_step(self, model: nn.Module, batch: dict, epoch: int) -> tuple[Tensor, dict[str, float]]:
        layout, loss_cfg = self.layout, self.cfg.loss
        student, teacher = model(batch["views"], layout, epoch < loss_cfg.freeze_last_layer_epochs)
        centers = unwrap_model(model).centers
        loss = self_distillation_loss(student, teacher, centers.center, pass_pairs(layout),
                                      loss_cfg.student_temp, loss_cfg.teacher_temp, loss_cfg.target_shift)
        per_token: dict[int, list[Tensor]] = {}
        for (token, _), logits in teacher.items():
            per_token.setdefault(token, []).append(logits)
        centers.update({token: torch.cat(chunks) for token, chunks in per_token.items()})
        probs = torch.softmax(teacher[(0, 0)].float() / loss_cfg.teacher_temp, dim=-1)
        entropy = float(-(probs * probs.clamp_min(1e-12).log()).sum(-1).mean() / math.log(probs.shape[-1]))
        return loss, {"loss_ssl": float(loss.detach()), "teacher_entropy": entropy}

    def after_step(self, model: nn.Module, info: StepInfo) -> None:
        net = unwrap_model(model)
        net.teacher.update(net.student, info.ema_momentum)

    @cached_property
    def eval_dataset(self):
        return load_reid_dataset(self.cfg.data.eval_format, self.cfg.data.eval_root)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if self.cfg.data.eval_root is None:
            return {}
        height, width = self.input_size
        data = ReidDataConfig(format=self.cfg.data.eval_format, root=self.cfg.data.eval_root, height=height,
                              width=width, test_batch=self.cfg.data.test_batch)
        embedder = TeacherEmbedder(unwrap_model(model).teacher.net.backbone).eval()
        return evaluate_reid_model(embedder, self.eval_dataset, data, self.cfg.eval, self.report_dir)

    def inference(self, model: nn.Module) -> InferenceModels:
        """The teacher backbone (the pre-trained model PASS releases) as a crop embedder."""
        return InferenceModels(crop_embedder=TeacherEmbedder(model.teacher.net.backbone).eval(),
                               input_size=self.input_size)

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """Tiny unlabeled crops and Market set, a 2-block ViT-Tiny at 64x32, small heads, batch 8."""
        return [f"data.root={Path(synth_root) / 'unlabeled'}", f"data.eval_root={Path(synth_root) / 'market1501'}",
                "data.views.height=64", "data.views.width=32", "data.batch_size=8", "data.workers=0",
                "data.test_batch=64", "model.arch=vit_tiny", "model.depth=2", "model.out_dim=256",
                "model.hidden_dim=128", "model.bottleneck_dim=64", "engine.warmup_epochs=0"]


class DinoRecipe(PassRecipe):
    """DINO: :class:`PassRecipe` with ``model.num_parts: 0`` by default."""

    CONFIG = DinoConfig
