"""Person crops cut from annotated scenes: the ReID training data of two-step search and of DKD's teacher.

``scene_crop_samples`` lists the labeled boxes of scenes as ``SceneCrop`` records (scene path, box,
pid, a pseudo-camera: the scene index, since CUHK-SYSU has no cameras). ``SceneCropDataset`` cuts
them out on the fly, optionally with DKD's image-level spatial-invariant augmentation (ISA): the box
is enlarged, then a random sub-box of it is cropped, so a model trained on it tolerates imprecise
detector boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .images import read_image
from .records import SceneAnnotation


@dataclass(frozen=True)
class SceneCrop:
    """One labeled person box of a scene."""

    path: Path
    box: tuple[float, float, float, float]
    pid: int
    camid: int


def scene_crop_samples(scenes: Sequence[SceneAnnotation], labeled_only: bool = True) -> list[SceneCrop]:
    """Every (labeled) person box of ``scenes``; ``camid`` is the scene's index."""
    samples = []
    for index, scene in enumerate(scenes):
        for box, pid in zip(np.asarray(scene.boxes, np.float64).reshape(-1, 4), np.asarray(scene.pids).reshape(-1)):
            if pid >= 0 or not labeled_only:
                samples.append(SceneCrop(Path(scene.path), tuple(float(v) for v in box), int(pid), index))
    return samples


@dataclass(frozen=True)
class IsaConfig:
    """DKD's image-level spatial-invariant augmentation: enlarge each box by ``enlarge`` (1.2 = 20%
    more width and height, about its centre), then crop a random sub-box covering ``min_side``..1 of
    each side of the enlarged box. ``enlarge: 1.0`` turns it off."""

    enlarge: float = 1.0
    min_side: float = 0.8

    def __post_init__(self) -> None:
        if self.enlarge < 1.0 or not 0.0 < self.min_side <= 1.0:
            raise ValueError(f"isa.enlarge must be >= 1 and isa.min_side in (0, 1], got {self.enlarge}, {self.min_side}")


def jitter_box(box: Sequence[float], isa: IsaConfig, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """ISA on one box: enlarged about its centre, then a random sub-box; clipped to the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = (x2 - x1) * isa.enlarge, (y2 - y1) * isa.enlarge
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    sw, sh = w * rng.uniform(isa.min_side, 1.0), h * rng.uniform(isa.min_side, 1.0)
    left = cx - w / 2 + rng.uniform(0, w - sw)
    top = cy - h / 2 + rng.uniform(0, h - sh)
    out = np.array([left, top, left + sw, top + sh])
    out[[0, 2]] = out[[0, 2]].clip(0, width)
    out[[1, 3]] = out[[1, 3]].clip(0, height)
    if out[2] - out[0] < 2 or out[3] - out[1] < 2:
        return np.asarray(box, np.float64)
    return out


class SceneCropDataset(Dataset):
    """``{"images", "pids", "camids", "index"}`` per labeled box, cropped from its scene (ISA optional).

    ISA draws from torch's RNG (seeded per epoch and worker by the engine), so runs are reproducible.
    """

    def __init__(self, samples: Sequence[SceneCrop], transform: Callable, isa: IsaConfig | None = None) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.isa = isa if isa is not None and isa.enlarge > 1.0 else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        sample = self.samples[index]
        scene = read_image(sample.path)
        box = np.asarray(sample.box, np.float64)
        if self.isa is not None:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
            box = jitter_box(box, self.isa, rng, scene.width, scene.height)
        crop = scene.crop(tuple(float(v) for v in box))
        return {"images": self.transform(crop), "pids": sample.pid, "camids": sample.camid, "index": index}


class SceneRegionDataset(Dataset):
    """A labeled person with some surroundings, at the scene's own scale, for end-to-end identity
    batches: ``(region (3, h, w) in [0, 1], box, ground-truth box (both in region pixels), pid,
    scene (height, width))``.

    The region is the ground-truth box enlarged by ``context`` (1.3 = 30% more width and height,
    clipped to the scene), grown to hold ``box``: the ground-truth box jittered by ``isa`` when it is
    on (as a proposal would be; DKD's feature-level augmentation), else the box itself. The region
    is mirrored with probability ``flip``. Randomness comes from torch's (engine-seeded) RNG.
    """

    def __init__(self, samples: Sequence[SceneCrop], context: float = 1.3, isa: IsaConfig | None = None,
                 flip: float = 0.5) -> None:
        if context < 1.0:
            raise ValueError(f"identity_batch.context must be >= 1, got {context}")
        self.samples, self.context, self.flip = list(samples), float(context), float(flip)
        self.isa = isa if isa is not None and isa.enlarge > 1.0 else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, tuple[int, int]]:
        sample = self.samples[index]
        scene = read_image(sample.path)
        truth = np.asarray(sample.box, np.float64)
        box = truth
        if self.isa is not None:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
            box = jitter_box(truth, self.isa, rng, scene.width, scene.height)
        w, h = (truth[2] - truth[0]) * self.context, (truth[3] - truth[1]) * self.context
        cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
        left = int(max(0, np.floor(min(cx - w / 2, box[0]))))
        top = int(max(0, np.floor(min(cy - h / 2, box[1]))))
        right = int(min(scene.width, np.ceil(max(cx + w / 2, box[2]))))
        bottom = int(min(scene.height, np.ceil(max(cy + h / 2, box[3]))))
        region = torch.from_numpy(np.asarray(scene.crop((left, top, right, bottom)), np.uint8).copy())
        region = region.permute(2, 0, 1).float().div_(255)
        shift = np.array([left, top, left, top], np.float64)
        inner = torch.tensor(np.stack([box - shift, truth - shift]), dtype=torch.float32)  # (2, 4)
        if self.flip and torch.rand(()) < self.flip:
            region = region.flip(-1)
            inner = torch.stack([region.shape[-1] - inner[:, 2], inner[:, 1], region.shape[-1] - inner[:, 0],
                                 inner[:, 3]], 1)
        inner = inner.clamp_min(0)
        return region, inner[0], inner[1], sample.pid, (scene.height, scene.width)


def collate_regions(batch: list) -> dict[str, list]:
    """Lists of regions, (jittered) boxes, ground-truth boxes and scene sizes (regions differ in
    size) and a pid tensor."""
    regions, boxes, truths, pids, sizes = zip(*batch)
    return {"images": list(regions), "boxes": list(boxes), "gt_boxes": list(truths),
            "pids": torch.as_tensor(pids, dtype=torch.long), "scene_sizes": list(sizes)}
