"""Reader of COCO-format detection JSON, keeping the ``person`` boxes.

Choices (documented here, tested in tests/test_coco_folder_readers.py):

- the person category is every entry of ``categories`` named ``person`` (case-insensitive);
  if ``categories`` is missing or empty, id 1 (COCO's person id) is used; categories given but
  without a person is a DatasetError;
- ``bbox`` ``[x, y, w, h]`` -> float32 ``[x, y, x + w, y + h]``; boxes with ``w <= 0`` or
  ``h <= 0`` are dropped (as torchvision's COCO detection reference does);
- ``iscrowd`` (default 0) -> the scene's ``ignore`` flag; crowd boxes are kept, flagged;
- every image is kept, images without persons with ``(0, 4)`` boxes; images are ordered by
  ``id`` (torchvision's ``CocoDetection`` order), boxes in annotation order;
- pids are all ``UNLABELED``; camid -1;
- image path = ``image_root / file_name``. Default ``image_root``: ``<json dir>/../images`` if
  that folder exists (``dataset/annotations/x.json`` + ``dataset/images/``), else the JSON's own
  folder. Image files are not checked one by one (see ``images.verify_image``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from personsearch.data.errors import DatasetError, require_dir, require_file
from personsearch.data.records import UNLABELED, DetectionDataset, SceneAnnotation

COCO_PERSON_ID = 1


def default_image_root(annotation_json: Path) -> Path:
    """``<json dir>/../images`` if it is a folder, else the JSON's folder."""
    sibling = annotation_json.parent.parent / "images"
    return sibling if sibling.is_dir() else annotation_json.parent


def _field(obj: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DatasetError(path, f"missing key {key!r}", field=f"{where}.{key}" if where else key)
    return obj[key]


def _id(obj: Any, key: str, path: Path, where: str) -> int | str:
    """An id field: an integer or a string (some exporters), never a float, bool, list or object."""
    value = _field(obj, key, path, where)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DatasetError(path, f"an id must be an integer or a string, got {json.dumps(value)[:60]} "
                                 f"({type(value).__name__})", field=f"{where}.{key}")
    return value


def _text(obj: Any, key: str, path: Path, where: str) -> str:
    value = _field(obj, key, path, where)
    if not isinstance(value, str):
        raise DatasetError(path, f"must be a string, got {json.dumps(value)[:60]}", field=f"{where}.{key}")
    return value


def _person_ids(data: dict[str, Any], path: Path) -> set[int | str]:
    cats = data.get("categories")
    if not cats:
        return {COCO_PERSON_ID}
    if not isinstance(cats, list):
        raise DatasetError(path, "must be a list", field="categories")
    ids = {
        _id(c, "id", path, f"categories[{i}]")
        for i, c in enumerate(cats)
        if _text(c, "name", path, f"categories[{i}]").strip().lower() == "person"
    }
    if not ids:
        raise DatasetError(path, "no category named 'person'", field="categories")
    return ids


def _box(ann: dict[str, Any], path: Path, where: str) -> list[float] | None:
    bbox = _field(ann, "bbox", path, where)
    if not (isinstance(bbox, list) and len(bbox) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
        raise DatasetError(path, f"expected [x, y, w, h] numbers, got {json.dumps(bbox)[:80]}",
                           field=f"{where}.bbox")
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise DatasetError(path, f"non-finite value in {bbox!r}", field=f"{where}.bbox")
    if w <= 0 or h <= 0:
        return None
    return [x, y, x + w, y + h]


def read_coco_persons(
    annotation_json: str | Path, image_root: str | Path | None = None
) -> DetectionDataset:
    """Read the person boxes of a COCO detection JSON (see module docstring for the rules)."""
    path = Path(annotation_json)
    require_file(path, "annotation file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(path, f"invalid JSON: {err}") from err
    except RecursionError:
        raise DatasetError(path, "invalid JSON: nested too deeply to be a COCO annotation file") from None
    if not isinstance(data, dict):
        raise DatasetError(path, "top level must be an object with images/annotations")
    images = _field(data, "images", path, "")
    anns = _field(data, "annotations", path, "")
    for key, value in (("images", images), ("annotations", anns)):
        if not isinstance(value, list):
            raise DatasetError(path, "must be a list", field=key)
    person_ids = _person_ids(data, path)
    root = Path(image_root) if image_root is not None else default_image_root(path)
    require_dir(root, "image root folder")

    file_names: dict[int, str] = {}
    for i, img in enumerate(images):
        img_id = _id(img, "id", path, f"images[{i}]")
        if img_id in file_names:
            raise DatasetError(path, f"duplicate image id {img_id!r}", field=f"images[{i}].id")
        file_names[img_id] = _text(img, "file_name", path, f"images[{i}]")

    boxes: dict[int, list[list[float]]] = {k: [] for k in file_names}
    crowd: dict[int, list[bool]] = {k: [] for k in file_names}
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]"
        if _id(ann, "category_id", path, where) not in person_ids:
            continue
        img_id = _id(ann, "image_id", path, where)
        if img_id not in file_names:
            raise DatasetError(path, f"unknown image id {img_id!r}", field=f"{where}.image_id")
        box = _box(ann, path, where)
        if box is None:
            continue
        boxes[img_id].append(box)
        crowd[img_id].append(_crowd(ann, path, where))

    scenes = []
    for img_id in sorted(file_names, key=_sort_key):
        n = len(boxes[img_id])
        scenes.append(
            SceneAnnotation(
                path=root / file_names[img_id],
                boxes=np.asarray(boxes[img_id], dtype=np.float32).reshape(n, 4),
                pids=np.full(n, UNLABELED, dtype=np.int64),
                camid=-1,
                ignore=np.asarray(crowd[img_id], dtype=bool).reshape(n),
            )
        )
    return DetectionDataset(name=path.stem, root=root, images=scenes)


def _crowd(ann: dict[str, Any], path: Path, where: str) -> bool:
    value = ann.get("iscrowd", 0)
    if value not in (0, 1) or isinstance(value, float):
        raise DatasetError(path, f"must be 0 or 1, got {json.dumps(value)[:40]}", field=f"{where}.iscrowd")
    return bool(value)


def _sort_key(img_id: Any) -> tuple[int, Any]:
    """Ids sort numerically; non-integer ids (allowed by some exporters) after, as strings."""
    return (0, img_id) if isinstance(img_id, int) else (1, str(img_id))
