"""Zero-shot person embeddings from an ImageNet CNN, with no training: part stripes, flip, colour.

ImageNet features are made to name objects, not to tell people apart. Three things help without any
training (measured on the real-footage benchmark, see the README):

- **part stripes** (AlignedReID's local branch, PCB's parts): besides the global average, the feature
  map is averaged over ``parts`` horizontal stripes (head/torso/legs), so *where* a colour or texture
  sits on the body counts;
- **a mid-level tap**: a block before the last one keeps more colour and texture than the final,
  class-level features;
- **colour histograms** per stripe (joint RGB, ``colour_bins`` per channel, Hellinger-normalised): a
  garment's colour is the strongest identity cue on surveillance footage;
- **flip averaging**: each crop and its mirror image are embedded and averaged.

Each piece (per tap: global + stripes; colour) is L2-normalised and weighted, so no piece dominates by
scale; the output is the concatenation, L2-normalised: cosine similarity is a weighted mean of the
pieces' cosines.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn



def stripe_pool(feature_map: Tensor, parts: int) -> list[Tensor]:
    """Global average plus ``parts`` horizontal stripe averages of (B, C, h, w): list of (B, C)."""
    pieces = [feature_map.mean(dim=(-2, -1))]
    if parts > 0:
        pieces += list(F.adaptive_avg_pool2d(feature_map, (parts, 1)).flatten(2).unbind(-1))
    return pieces


def colour_histograms(rgb: Tensor, parts: int, bins: int) -> Tensor:
    """Joint RGB histograms (``bins``^3 each) of the whole crop and of ``parts`` horizontal stripes of
    (B, 3, H, W) crops in [0, 1]; square-rooted (Hellinger), each L2-normalised: (B, (parts+1)*bins^3)."""
    batch, _, height, width = rgb.shape
    q = (rgb.float().clamp(0, 1) * bins).long().clamp_(max=bins - 1)
    code = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]  # (B, H, W)
    stripes = max(parts, 1)
    row_stripe = torch.arange(height, device=rgb.device) * stripes // height  # (H,)
    slot = (torch.arange(batch, device=rgb.device)[:, None, None] * stripes + row_stripe[None, :, None]) * bins ** 3
    counts = torch.bincount((slot + code).flatten(), minlength=batch * stripes * bins ** 3)
    counts = counts.view(batch, stripes, bins ** 3).float()
    pieces = [counts.sum(1)] + (list(counts.unbind(1)) if parts > 0 else [])
    return torch.cat([F.normalize(p.sqrt(), dim=1) for p in pieces], 1)


class ZeroShotEmbedder(nn.Module):
    """ImageNet CNN features made person-aware without training (see the module docstring).

    features: a ``nn.Sequential`` of blocks (e.g. ``torchvision.models.mobilenet_v2().features``).
    taps: indices of the blocks whose outputs are pooled (negative counts from the end).
    parts: horizontal stripes pooled besides the global average (0: global only).
    colour_bins: bins per RGB channel of the colour histograms (0: none).
    weights: weight of each tap's pieces, then of the colour pieces (default: all 1).
    flip: average each crop's features with those of its mirror image.
    mean, std: the input normalisation (per channel), undone for the colour histograms.
    In: (B, 3, H, W) crops normalised by ``mean``/``std``. Out: (B, D) L2-normalised.
    """

    def __init__(self, features: nn.Sequential, taps: Sequence[int] = (-1,), parts: int = 3,
                 colour_bins: int = 0, weights: Sequence[float] | None = None, flip: bool = True,
                 mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225)) -> None:
        super().__init__()
        if parts < 0 or colour_bins < 0:
            raise ValueError(f"parts and colour_bins must be >= 0, got {parts} and {colour_bins}")
        n = len(features)
        self.taps = sorted({t % n for t in taps})
        if not self.taps:
            raise ValueError("taps must name at least one block")
        groups = len(self.taps) + (1 if colour_bins else 0)
        weights = list(weights) if weights is not None else [1.0] * groups
        if len(weights) != groups:
            raise ValueError(f"weights has {len(weights)} values for {groups} groups (taps + colour)")
        self.features = features[: self.taps[-1] + 1]
        self.parts, self.colour_bins, self.flip = parts, colour_bins, flip
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32), persistent=False)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def tap_maps(self, x: Tensor) -> list[Tensor]:
        """The feature maps of the tapped blocks for crops ``x`` (what the ONNX backend computes)."""
        maps = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self.taps:
                maps.append(x)
        return maps

    def combine(self, maps: list[Tensor], mirrored: list[Tensor] | None, x: Tensor) -> Tensor:
        """The embedding from the tapped maps of the crops ``x`` (and of their mirror images, with ``flip``)."""
        groups = [stripe_pool(m.float(), self.parts) for m in maps]
        if mirrored is not None:
            flipped = [stripe_pool(m.float(), self.parts) for m in mirrored]
            groups = [[(a + b) / 2 for a, b in zip(g, f)] for g, f in zip(groups, flipped)]
        pieces = []
        for weight, group in zip(self.weights, groups):
            scale = weight / len(group) ** 0.5
            pieces += [F.normalize(p, dim=1) * scale for p in group]
        if self.colour_bins:
            hist = colour_histograms(x.float() * self.std + self.mean, self.parts, self.colour_bins)  # mirror-invariant
            pieces.append(hist * self.weights[-1] / (self.parts + 1) ** 0.5)
        return F.normalize(torch.cat(pieces, 1), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.combine(self.tap_maps(x), self.tap_maps(x.flip(-1)) if self.flip else None, x)


__all__ = ["ZeroShotEmbedder", "colour_histograms", "stripe_pool"]
