"""Reader for CUHK-SYSU in its official layout (see /work/shared/docs/protocols.md).

Nesting as ``scipy.io.loadmat`` returns it (verified against SeqNet/OIM parsing code):
- ``Images.mat`` ``Img``: 1xM struct {imname, nAppear, box}; ``box``: 1xn struct {idlocate 1x4 [x,y,w,h],
  ishard}.
- ``pool.mat`` ``pool``: cell array of test image names.
- ``Train.mat`` ``Train``: cell array of 1x1 structs {idname, nAppear, scene}; ``scene``: 1xn struct
  {imname, idlocate, ishard}.
- ``TestG{N}.mat`` ``TestG{N}``: 1xQ struct {Query, Gallery}; ``Query``: 1x1 struct {imname, idlocate,
  ishard, idname}; ``Gallery``: 1xN struct {imname, idlocate (1x0 empty for negatives), ishard}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError, require_dir
from .matfiles import get_field, load_mat, mat_numbers, mat_str, mat_strings, records, struct_columns
from .records import UNLABELED, GalleryList, SceneAnnotation, SearchDataset, SearchQuery

PROTOCOL_DIR = Path("annotation") / "test" / "train_test"
_TESTG_NAME = re.compile(r"^TestG(\d+)\.mat$")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_IDNAME = re.compile(r"^\s*p?(\d+)\s*$", re.IGNORECASE)


@dataclass
class _Image:
    """Boxes of one image after dropping w/h <= 0, with identities filled in later."""

    xywh: np.ndarray  # (n, 4) float64
    hard: np.ndarray  # (n,) bool
    pids: np.ndarray  # (n,) int64
    dropped: list[tuple[np.ndarray, str]]  # boxes with w or h <= 0 and their Images.mat field
    source: Path  # Images.mat, for errors about its boxes


@dataclass
class _Query:
    name: str
    xywh: np.ndarray
    idname: str
    field: str  # where it is in its TestG file, for error messages


def _xywh(value: Any, path: Path, field: str, allow_empty: bool = False) -> np.ndarray | None:
    """A 1x4 idlocate as float64 [x, y, w, h]; None for an allowed empty one."""
    nums = mat_numbers(value, path, field)
    if nums.size == 0 and allow_empty:
        return None
    if nums.size != 4:
        raise DatasetError(path, f"expected 4 numbers [x, y, w, h], got {nums.size}", field)
    with np.errstate(over="ignore"):  # a corner past float64's range is inf, refused just below
        corners = nums[:2] + nums[2:]
    if not (np.isfinite(nums).all() and np.abs(np.concatenate([nums, corners])).max() <= _FLOAT32_MAX):
        raise DatasetError(path, f"box {nums.tolist()} is not finite (as 32-bit floats)", field)
    x1, y1, x2, y2 = np.float32([*nums[:2], *corners])
    if nums[2] > 0 and nums[3] > 0 and not (x2 > x1 and y2 > y1):
        raise DatasetError(path, f"box {nums.tolist()} has no area at 32-bit float precision", field)
    return nums


def _positive_box(value: Any, path: Path, field: str, allow_empty: bool = False) -> np.ndarray | None:
    """Like :func:`_xywh` but a box with w or h <= 0 is an error."""
    box = _xywh(value, path, field, allow_empty)
    if box is not None and (box[2] <= 0 or box[3] <= 0):
        raise DatasetError(path, f"box {box.tolist()} has w or h <= 0", field)
    return box


def _flag(record: np.void, path: Path, field: str) -> bool:
    """The optional ``ishard`` flag of a record (absent or empty = False)."""
    if "ishard" not in (record.dtype.names or ()):
        return False
    nums = mat_numbers(record["ishard"], path, field)
    return bool(nums.size and nums[0] != 0)


def _x1y1x2y2(xywh: np.ndarray) -> np.ndarray:
    out = np.asarray(xywh, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 2:] += out[:, :2]
    return out.astype(np.float32)


def _read_images(path: Path) -> dict[str, _Image]:
    """Images.mat: every image with its valid boxes, in file order."""
    images: dict[str, _Image] = {}
    for i, rec in enumerate(records(load_mat(path, ["Img"])["Img"], path, "Img")):
        where = f"Img[{i}]"
        name = mat_str(get_field(rec, "imname", path, where), path, f"{where}.imname")
        if name in images:
            raise DatasetError(path, f"image '{name}' listed twice", f"{where}.imname")
        boxes = records(get_field(rec, "box", path, where), path, f"{where}.box")
        xywh = np.array([_xywh(get_field(b, "idlocate", path, f"{where}.box[{j}]"), path,
                               f"{where}.box[{j}].idlocate") for j, b in enumerate(boxes)]).reshape(-1, 4)
        hard = np.array([_flag(b, path, f"{where}.box[{j}].ishard") for j, b in enumerate(boxes)], dtype=bool)
        keep = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
        dropped = [(xywh[j], f"{where}.box[{j}].idlocate") for j in np.flatnonzero(~keep)]
        images[name] = _Image(xywh[keep], hard[keep], np.full(int(keep.sum()), UNLABELED, dtype=np.int64),
                              dropped, path)
    return images


def _assign(image: _Image, box: np.ndarray, pid: int, path: Path, field: str, name: str) -> None:
    """Give ``pid`` to the box of ``image`` equal to ``box`` (first free match)."""
    matches = np.flatnonzero((image.xywh == box).all(axis=1))
    for dropped, where in image.dropped if matches.size == 0 else ():
        if np.array_equal(dropped[:2], box[:2]):  # the fault is in Images.mat, not in the file labelling it
            raise DatasetError(image.source, f"box {dropped.tolist()} of '{name}' has w or h <= 0, but {path.name} "
                                             f"{field} gives an identity to a box there: {box.tolist()}", where)
    if matches.size == 0:
        raise DatasetError(path, f"box {box.tolist()} is not a valid box of '{name}' in Images.mat", field)
    for m in matches:
        if image.pids[m] in (UNLABELED, pid):
            image.pids[m] = pid
            return
    raise DatasetError(path, f"box {box.tolist()} of '{name}' already has identity {image.pids[matches[0]]}",
                       field)


def _label_train(path: Path, images: dict[str, _Image], train_names: set[str]) -> int:
    """Train.mat: label train boxes with identity index 0..K-1; returns K."""
    identities = records(load_mat(path, ["Train"])["Train"], path, "Train")
    for k, rec in enumerate(identities):
        where = f"Train[{k}]"
        for j, scene in enumerate(records(get_field(rec, "scene", path, where), path, f"{where}.scene")):
            field = f"{where}.scene[{j}]"
            name = mat_str(get_field(scene, "imname", path, field), path, f"{field}.imname")
            if name not in train_names:
                raise DatasetError(path, f"image '{name}' is not a training image", f"{field}.imname")
            box = _positive_box(get_field(scene, "idlocate", path, field), path, f"{field}.idlocate")
            _assign(images[name], box, k, path, f"{field}.idlocate", name)
    return len(identities)


_Positives = list[tuple[str, np.ndarray, str]]  # (image, [x, y, w, h], field) of one query's positives


def _read_protocol(path: Path, size: int, test_names: set[str]) -> tuple[list[_Query], list[GalleryList],
                                                                           list[_Positives]]:
    """TestG{N}.mat: the queries, per query its gallery list (file order) and its positives."""
    key = f"TestG{size}"
    queries: list[_Query] = []
    galleries: list[GalleryList] = []
    positives: list[_Positives] = []
    for i, rec in enumerate(records(load_mat(path, [key])[key], path, key)):
        where = f"{key}[{i}]"
        q = records(get_field(rec, "Query", path, where), path, f"{where}.Query")
        if len(q) != 1:
            raise DatasetError(path, f"expected one query struct, got {len(q)}", f"{where}.Query")
        name = mat_str(get_field(q[0], "imname", path, f"{where}.Query"), path, f"{where}.Query.imname")
        if name not in test_names:
            raise DatasetError(path, f"query image '{name}' is not in pool.mat", f"{where}.Query.imname")
        box = _positive_box(get_field(q[0], "idlocate", path, f"{where}.Query"), path, f"{where}.Query.idlocate")
        idname = mat_str(get_field(q[0], "idname", path, f"{where}.Query"), path, f"{where}.Query.idname")
        queries.append(_Query(name, box, idname, f"{where}.Query.idlocate"))
        field = f"{where}.Gallery"
        names, boxes = struct_columns(get_field(rec, "Gallery", path, where), path, field, ("imname", "idlocate"))
        gallery: GalleryList = []
        positives.append([])
        for j, (raw_name, raw_box) in enumerate(zip(names, boxes)):
            g_name = mat_str(raw_name, path, f"{field}[{j}].imname")
            if g_name not in test_names:
                raise DatasetError(path, f"gallery image '{g_name}' is not in pool.mat", f"{field}[{j}].imname")
            g_box = _positive_box(raw_box, path, f"{field}[{j}].idlocate", allow_empty=True)
            gallery.append((g_name, None if g_box is None else _x1y1x2y2(g_box)[0]))
            if g_box is not None:
                positives[-1].append((g_name, g_box, f"{field}[{j}].idlocate"))
        galleries.append(gallery)
    return queries, galleries, positives


def _query_pids(queries: list[_Query]) -> list[int]:
    """Identity of each query: the number in idname ('p1234' -> 1234) if all parse and are unique,
    else the 1-based query index."""
    parsed = [_IDNAME.match(q.idname) for q in queries]
    if all(parsed) and len({int(m.group(1)) for m in parsed if m}) == len(queries):
        return [int(m.group(1)) for m in parsed if m]
    return list(range(1, len(queries) + 1))


def _discover_sizes(folder: Path) -> list[int]:
    sizes = sorted(int(m.group(1)) for p in folder.glob("TestG*.mat") if (m := _TESTG_NAME.match(p.name)))
    if not sizes:
        raise DatasetError(folder, "no TestG{N}.mat protocol file found", "TestG{N}.mat")
    return sizes


def _same_queries(a: list[_Query], b: list[_Query]) -> bool:
    return len(a) == len(b) and all(
        x.name == y.name and x.idname == y.idname and np.array_equal(x.xywh, y.xywh) for x, y in zip(a, b))


def read_cuhk_sysu(root: str | Path, gallery_sizes: Iterable[int] | None = None) -> SearchDataset:
    """Read CUHK-SYSU from ``root``. ``gallery_sizes`` limits which TestG{N}.mat files are read
    (default: every one present). Train pids are 0..K-1 (Train.mat order); test scenes and queries
    keep the idname number ('p1234' -> 1234)."""
    root = Path(root)
    require_dir(root, "CUHK-SYSU root")
    image_dir = require_dir(root / "Image" / "SSM", "image folder")
    ann = root / "annotation"
    images = _read_images(ann / "Images.mat")
    pool_path = ann / "pool.mat"
    pool = mat_strings(load_mat(pool_path, ["pool"])["pool"], pool_path, "pool")
    test_names: set[str] = set()
    for i, name in enumerate(pool):
        if name not in images or name in test_names:
            raise DatasetError(pool_path, f"test image '{name}' is not in Images.mat or listed twice", f"pool[{i}]")
        test_names.add(name)
    train_order = [name for name in images if name not in test_names]
    num_train_pids = _label_train(root / PROTOCOL_DIR / "Train.mat", images, set(train_order))

    folder = root / PROTOCOL_DIR
    sizes = _discover_sizes(folder) if gallery_sizes is None else sorted(set(gallery_sizes))
    if not sizes:
        raise ValueError("gallery_sizes must name at least one TestG{N}.mat")
    queries: list[_Query] | None = None
    gallery_lists: dict[int, list[GalleryList]] = {}
    positives: dict[int, list[_Positives]] = {}
    for size in sizes:
        path = folder / f"TestG{size}.mat"
        size_queries, gallery_lists[size], positives[size] = _read_protocol(path, size, test_names)
        if queries is None:
            queries = size_queries
        elif not _same_queries(queries, size_queries):
            raise DatasetError(path, f"queries differ from TestG{sizes[0]}.mat (order or content)",
                               f"TestG{size}.Query")
    queries = queries or []
    pids = _query_pids(queries)
    for q, pid in zip(queries, pids):
        _assign(images[q.name], q.xywh, pid, folder / f"TestG{sizes[0]}.mat", q.field, q.name)
    for size, per_query in positives.items():
        for boxes, pid in zip(per_query, pids):
            for name, xywh, field in boxes:
                _assign(images[name], xywh, pid, folder / f"TestG{size}.mat", field, name)

    def scene(name: str) -> SceneAnnotation:
        img = images[name]
        return SceneAnnotation(image_dir / name, _x1y1x2y2(img.xywh), img.pids.copy(), -1, img.hard.copy())

    return SearchDataset(
        name="CUHK-SYSU",
        root=root,
        train=[scene(n) for n in train_order],
        gallery=[scene(n) for n in pool],
        queries=[SearchQuery(image_dir / q.name, _x1y1x2y2(q.xywh)[0], pid, -1) for q, pid in zip(queries, pids)],
        gallery_lists=gallery_lists,
        num_train_pids=num_train_pids,
    )
