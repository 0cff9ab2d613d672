"""`personsearch datasets check`: load a dataset, then look at every image and box it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..utils.progress import iterate
from .errors import DatasetError
from .images import verify_image
from .records import DetectionDataset, ReidDataset, SceneAnnotation, SearchDataset
from .registry import AnyDataset, read_dataset


@dataclass
class CheckReport:
    """What `datasets check` found: a summary of the loaded dataset and the first problems."""

    summary: dict[str, int | str]
    problems: list[str] = field(default_factory=list)
    images_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _summary(data: AnyDataset) -> dict[str, int | str]:
    if isinstance(data, (ReidDataset, SearchDataset, DetectionDataset)):
        return data.summary()
    pids = {getattr(s, "pid", None) for s in data}
    return {"images": len(data), "ids": len(pids - {None})}


def _scenes(data: AnyDataset) -> list[SceneAnnotation]:
    if isinstance(data, SearchDataset):
        return data.train + data.gallery
    if isinstance(data, DetectionDataset):
        return data.images
    return []


def _image_paths(data: AnyDataset) -> list[Path]:
    if isinstance(data, ReidDataset):
        return [s.path for s in data.train + data.query + data.gallery]
    if isinstance(data, (SearchDataset, DetectionDataset)):
        return [s.path for s in _scenes(data)]
    return [getattr(s, "path", s) for s in data]


def _box_problems(scene: SceneAnnotation) -> list[str]:
    width, height = Image.open(scene.path).size
    boxes = np.asarray(scene.boxes, np.float64).reshape(-1, 4)
    problems = []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if not np.isfinite([x1, y1, x2, y2]).all() or x2 <= x1 or y2 <= y1:
            problems.append(f"{scene.path}: boxes[{i}]: empty or invalid box {[x1, y1, x2, y2]}")
        elif x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
            problems.append(f"{scene.path}: boxes[{i}]: {[x1, y1, x2, y2]} outside the {width}x{height} image")
    return problems


def check_dataset(fmt: str, root: str | Path, verify_images: bool = True, max_problems: int = 20,
                  progress: bool = True) -> CheckReport:
    """Load ``root`` as ``fmt``; decode every image and validate every box, keeping the first problems."""
    try:
        data = read_dataset(fmt, root)
    except DatasetError as err:
        return CheckReport(summary={"dataset": fmt}, problems=[str(err)])
    report = CheckReport(summary=_summary(data))
    if not verify_images:
        return report
    paths = _image_paths(data)
    boxes_of = {s.path: s for s in _scenes(data)}
    for path in iterate(paths, "checking images", progress, unit="img"):
        try:
            verify_image(path)
            if path in boxes_of:
                report.problems += _box_problems(boxes_of[path])
        except DatasetError as err:
            report.problems.append(str(err))
        report.images_checked += 1
        if len(report.problems) >= max_problems:
            report.problems = report.problems[:max_problems]
            break
    return report
