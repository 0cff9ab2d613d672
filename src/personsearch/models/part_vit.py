"""A ViT with [PART] tokens (PASS, ECCV 2022): one [CLS] and P learnable [PART] tokens.

Built on timm's ``VisionTransformer`` (composed, not copied): its patch embedding, blocks and norms
are used as they are; this module adds the part tokens, each with its own position vector (separate
from the patch position embedding, which is resampled to whatever patch grid a view has). A view
carries [CLS] and a chosen subset of the parts: a global view all P, a local view cut from area k
only PART_k. The output is the final-normed prefix tokens ``(B, 1 + len(parts), D)``: [CLS] first.
"""

from __future__ import annotations

from typing import Sequence

import timm
import torch
from timm.layers import resample_abs_pos_embed
from torch import Tensor, nn

PART_VIT_SIZES: dict[str, str] = {
    "vit_tiny": "vit_tiny_patch16_224",
    "vit_small": "vit_small_patch16_224",
    "vit_base": "vit_base_patch16_224",
}


class PartTokenViT(nn.Module):
    """``forward(x, parts)`` -> (B, 1 + len(parts), D) tokens ([CLS], then PART_k for k in ``parts``;
    all parts when ``parts`` is None). ``depth`` (optional) truncates the timm model's blocks."""

    def __init__(self, arch: str = "vit_small", img_size: tuple[int, int] = (256, 128), num_parts: int = 3,
                 drop_path_rate: float = 0.0, depth: int | None = None) -> None:
        super().__init__()
        if arch not in PART_VIT_SIZES:
            raise ValueError(f"unknown part-token ViT {arch!r}; choose from {', '.join(PART_VIT_SIZES)}")
        if num_parts < 0:
            raise ValueError(f"num_parts must be >= 0, got {num_parts}")
        extra = {} if depth is None else {"depth": int(depth)}
        self.vit = timm.create_model(PART_VIT_SIZES[arch], pretrained=False, img_size=tuple(img_size),
                                     num_classes=0, dynamic_img_size=True, drop_path_rate=drop_path_rate, **extra)
        if self.vit.num_prefix_tokens != 1 or getattr(self.vit, "no_embed_class", False):
            raise ValueError(f"{arch}: expected one [CLS] token whose position is part of pos_embed")
        self.num_parts = int(num_parts)
        self.dim = int(self.vit.embed_dim)
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
        pos = resample_abs_pos_embed(vit.pos_embed, (h, w), old_size=vit.patch_embed.grid_size,
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
