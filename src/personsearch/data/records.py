"""Plain typed records that every reader returns: one sample flows from disk through these.

Conventions (shared by all readers and by the synthetic benchmark):
- boxes are float32 ``[x1, y1, x2, y2]`` in pixels, continuous coordinates;
- camera ids are 0-based ints (Market ``c1`` -> 0);
- ReID training pids are relabelled contiguously ``0..num_train_pids-1``; query/gallery keep the
  dataset's own integer ids (0 = distractor in Market-style data);
- in scenes, ``UNLABELED`` (-1) marks a person without identity; training scene pids are
  relabelled contiguously ``0..num_train_pids-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.labels import UNLABELED  # noqa: F401  (re-exported: readers use it from here)


@dataclass(frozen=True)
class ReidSample:
    """One cropped person image."""

    path: Path
    pid: int
    camid: int


@dataclass
class ReidDataset:
    """A ReID benchmark: training crops plus the query/gallery test split."""

    name: str
    root: Path
    train: list[ReidSample]
    query: list[ReidSample]
    gallery: list[ReidSample]

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})

    def summary(self) -> dict[str, int | str]:
        """Counts per split, as torchreid prints them."""
        out: dict[str, int | str] = {"dataset": self.name}
        for split in ("train", "query", "gallery"):
            samples: list[ReidSample] = getattr(self, split)
            out[f"{split}_images"] = len(samples)
            out[f"{split}_ids"] = len({s.pid for s in samples})
            out[f"{split}_cams"] = len({s.camid for s in samples})
        return out


@dataclass
class SceneAnnotation:
    """One whole scene image with its person boxes."""

    path: Path
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    pids: np.ndarray  # (N,) int64, UNLABELED for persons without identity
    camid: int = -1  # -1 when the dataset has no camera ids
    ignore: np.ndarray | None = None  # (N,) bool, e.g. COCO iscrowd / hard boxes

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class SearchQuery:
    """A query person: its ground-truth box in one scene."""

    image: Path
    box: np.ndarray  # (4,) float32 x1, y1, x2, y2
    pid: int
    camid: int = -1


# Per query, the scenes to search: (image name, the query person's GT box there or None).
GalleryList = list[tuple[str, "np.ndarray | None"]]


@dataclass
class SearchDataset:
    """A person search benchmark (CUHK-SYSU, PRW)."""

    name: str
    root: Path
    train: list[SceneAnnotation]
    gallery: list[SceneAnnotation]  # every test scene
    queries: list[SearchQuery]
    # CUHK-SYSU: gallery size -> per query its gallery list (from TestG{N}.mat). Empty for PRW,
    # whose galleries are derived from the test scenes by the evaluation protocol.
    gallery_lists: dict[int, list[GalleryList]] = field(default_factory=dict)
    num_train_pids: int = 0

    def summary(self) -> dict[str, int | str]:
        """Counts of scenes, boxes, identities and queries."""
        train_boxes = sum(len(s.boxes) for s in self.train)
        labeled = sum(int((s.pids != UNLABELED).sum()) for s in self.train)
        return {
            "dataset": self.name,
            "train_scenes": len(self.train),
            "train_boxes": train_boxes,
            "train_labeled_boxes": labeled,
            "train_ids": self.num_train_pids,
            "gallery_scenes": len(self.gallery),
            "gallery_boxes": sum(len(s.boxes) for s in self.gallery),
            "queries": len(self.queries),
            "gallery_sizes": ",".join(str(k) for k in sorted(self.gallery_lists)) or "-",
        }


@dataclass
class DetectionDataset:
    """Scenes with person boxes and no identities (COCO-style detection data)."""

    name: str
    root: Path
    images: list[SceneAnnotation]

    def summary(self) -> dict[str, int | str]:
        """Counts of images and boxes."""
        return {
            "dataset": self.name,
            "images": len(self.images),
            "boxes": sum(len(s.boxes) for s in self.images),
            "images_without_persons": sum(1 for s in self.images if len(s.boxes) == 0),
        }
