"""Write detection-only scenes as a COCO-format JSON (category "person", no identities)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.records import SceneAnnotation
from ..utils.files import atomic_write_text


def write_coco_annotations(json_path: Path, scenes: list[SceneAnnotation], image_root: Path,
                           sizes: list[tuple[int, int]]) -> None:
    """One COCO ``instances`` JSON: images (file names relative to ``image_root``), person boxes [x, y, w, h]."""
    images, annotations = [], []
    for image_id, (scene, (width, height)) in enumerate(zip(scenes, sizes), start=1):
        images.append({"id": image_id, "file_name": scene.path.relative_to(image_root).as_posix(),
                       "width": int(width), "height": int(height)})
        for box in np.asarray(scene.boxes, np.float64).reshape(-1, 4):
            x1, y1, x2, y2 = (round(float(v), 2) for v in box)
            w, h = round(x2 - x1, 2), round(y2 - y1, 2)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [x1, y1, w, h], "area": round(w * h, 2), "iscrowd": 0})
    doc = {"info": {"description": "personsearch synthetic detection-only scenes"},
           "images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    atomic_write_text(json_path, json.dumps(doc, indent=None, separators=(",", ":")))
