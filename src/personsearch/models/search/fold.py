"""Inference speed-up: fold frozen BatchNorm into the convolution before it.

Detection backbones keep ImageNet BatchNorm statistics frozen (``FrozenBatchNorm2d``), which at
inference is one affine map per channel after a convolution: folding it into the convolution's
weight and bias removes a full pass over every feature map (and, under bf16 autocast, the casts
around each fp32 BatchNorm). ``torch.nn.utils.fusion.fuse_conv_bn_weights`` does the arithmetic.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torchvision.ops.misc import FrozenBatchNorm2d


def _fused(conv: nn.Conv2d, bn: FrozenBatchNorm2d) -> nn.Conv2d:
    fused = copy.deepcopy(conv)
    if fused.bias is None:
        fused.bias = nn.Parameter(conv.weight.new_zeros(conv.out_channels), requires_grad=False)
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                        bn.weight, bn.bias)
    fused.weight, fused.bias = weight, bias
    return fused


def _fold_children(module: nn.Module) -> int:
    """Fold, in ``module``'s subtree, every FrozenBatchNorm2d registered right after a Conv2d sibling
    (the layout of torchvision's ResNet and MobileNetV2 blocks); returns how many were folded."""
    folded = 0
    names = list(module._modules)
    for i, name in enumerate(names):
        child = module._modules[name]
        previous = module._modules[names[i - 1]] if i else None
        if isinstance(child, FrozenBatchNorm2d) and isinstance(previous, nn.Conv2d) \
                and previous.out_channels == child.weight.numel():
            module._modules[names[i - 1]] = _fused(previous, child)
            module._modules[name] = nn.Identity()
            folded += 1
        elif child is not None:
            folded += _fold_children(child)
    return folded


def fold_frozen_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (for inference) with frozen BatchNorm folded into convolutions.

    Only a ``FrozenBatchNorm2d`` that directly follows a ``Conv2d`` in its parent's registration
    order is folded, which in torchvision's ResNet/MobileNetV2 blocks is exactly the convolution
    feeding it. Trainable ``BatchNorm2d`` layers are left alone. The copy is in eval mode.
    """
    folded = copy.deepcopy(model).eval()
    _fold_children(folded)
    return folded
