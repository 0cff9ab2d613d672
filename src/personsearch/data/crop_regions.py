"""Person crops and scene persons as image regions for the identity branch of a person search model.

Hybrid pre-training feeds ReID crops (Market-style, identity-labeled or unlabeled) through the
same region path as people cut from scenes (``PersonSearchModel.embed_regions``). Every item is
``(region (3, h, w) float in [0, 1], box (4,) in region pixels, pid, source, scale)``: ``scale`` is
the resize the model gives the region, ``source`` the index of the dataset it came from.

- ``CropRegionDataset``, ``mode="crop"``: the crop is a scene whose only box is the whole crop,
  resized so the person is ``height`` pixels tall (the size of people in the target scenes).
- ``mode="paste"``: the resized crop is pasted at a random place of a patch (``context`` x its size)
  cut from a random background scene (detection scenes), so the trunk sees it among scene pixels.
- ``ScenePersonRegions``: annotated people of scenes (no identity), at the scale the model's
  transform gives their scene (``min_size`` / ``max_size``, torchvision's rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .images import read_image
from .scene_crops import SceneRegionDataset

CROP_MODES = ("crop", "paste")


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, np.uint8).copy()).permute(2, 0, 1).float().div_(255)


def _flip(region: torch.Tensor, box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    width = region.shape[-1]
    return region.flip(-1), torch.stack([width - box[2], box[1], width - box[0], box[3]])


class CropRegionDataset(Dataset):
    """Crops (``paths`` with ``pids``, -1 = unlabeled) of one ``source`` as regions (module docstring).

    Randomness (paste place and background, flip) comes from torch's engine-seeded RNG.
    """

    def __init__(self, paths: Sequence[Path], pids: Sequence[int], source: int, height: int, mode: str = "crop",
                 backgrounds: Sequence[Path] = (), context: float = 1.5, flip: float = 0.5) -> None:
        if mode not in CROP_MODES:
            raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, got {mode!r}")
        if mode == "paste" and not backgrounds:
            raise ValueError("paste mode needs background scenes")
        if len(paths) != len(pids) or height < 8 or context < 1.0:
            raise ValueError(f"{len(paths)} paths vs {len(pids)} pids, height {height} (>= 8), context {context} (>= 1)")
        self.paths, self.pids, self.source = [Path(p) for p in paths], [int(p) for p in pids], int(source)
        self.height, self.mode, self.backgrounds = int(height), mode, [Path(p) for p in backgrounds]
        self.context, self.flip = float(context), float(flip)

    def __len__(self) -> int:
        return len(self.paths)

    def _paste(self, crop: Image.Image) -> tuple[Image.Image, tuple[float, float, float, float]]:
        scene = read_image(self.backgrounds[int(torch.randint(len(self.backgrounds), ()))])
        pw, ph = round(crop.width * self.context), round(crop.height * self.context)
        if scene.width < pw or scene.height < ph:  # small scene: enlarge it to hold the patch
            factor = max(pw / scene.width, ph / scene.height)
            scene = scene.resize((int(np.ceil(scene.width * factor)), int(np.ceil(scene.height * factor))))
        left, top = (int(torch.randint(s - p + 1, ())) for s, p in ((scene.width, pw), (scene.height, ph)))
        patch = scene.crop((left, top, left + pw, top + ph))
        x, y = int(torch.randint(pw - crop.width + 1, ())), int(torch.randint(ph - crop.height + 1, ()))
        patch.paste(crop, (x, y))
        return patch, (x, y, x + crop.width, y + crop.height)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, int, float]:
        crop = read_image(self.paths[index])
        crop = crop.resize((max(1, round(crop.width * self.height / crop.height)), self.height), Image.BILINEAR)
        if self.mode == "paste":
            region_image, box = self._paste(crop)
        else:
            region_image, box = crop, (0.0, 0.0, float(crop.width), float(crop.height))
        region, box_t = _tensor(region_image), torch.tensor(box, dtype=torch.float32)
        if self.flip and torch.rand(()) < self.flip:
            region, box_t = _flip(region, box_t)
        return region, box_t, self.pids[index], self.source, 1.0


class ScenePersonRegions(Dataset):
    """People of annotated scenes (``SceneRegionDataset`` items) with pid -1, ``source`` and the scale
    the model's transform (``min_size``, ``max_size``) gives their scene."""

    def __init__(self, regions: SceneRegionDataset, source: int, min_size: int, max_size: int) -> None:
        self.regions, self.source, self.sizes = regions, int(source), (int(min_size), int(max_size))

    def __len__(self) -> int:
        return len(self.regions)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, int, float]:
        region, box, _, _, (h, w) = self.regions[index]
        scale = min(self.sizes[0] / min(h, w), self.sizes[1] / max(h, w))
        return region, box, -1, self.source, float(scale)


def collate_crop_regions(batch: list) -> dict[str, list | torch.Tensor]:
    """Lists of regions, boxes and scales (regions differ in size); pid and source tensors."""
    regions, boxes, pids, sources, scales = zip(*batch)
    return {"images": list(regions), "boxes": list(boxes), "scales": list(scales),
            "pids": torch.as_tensor(pids, dtype=torch.long), "sources": torch.as_tensor(sources, dtype=torch.long)}
