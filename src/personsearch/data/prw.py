"""Reader for PRW in its official layout (see /work/shared/docs/protocols.md).

As ``scipy.io.loadmat`` returns the files (verified against SeqNet datasets/prw.py):
- ``frame_train.mat`` ``img_index_train`` / ``frame_test.mat`` ``img_index_test``: Nx1 cell of frame
  names without ``.jpg``;
- ``annotations/<frame>.jpg.mat``: ``box_new`` (else ``anno_file``, else ``anno_previous``), an N x 5
  double matrix ``[id, x, y, w, h]``, id -2 = unknown person, coordinates may be negative;
- ``query_info.txt``: lines ``pid x y w h frame`` (CRLF), floats allowed.
``ID_train.mat`` / ``ID_test.mat`` are not needed: identities come from the annotations.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DatasetError, require_dir, require_file
from .matfiles import load_mat, load_mat_key, mat_strings
from .records import UNLABELED, SceneAnnotation, SearchDataset, SearchQuery

BOX_KEYS = ("box_new", "anno_file", "anno_previous")
UNKNOWN_ID = -2
MAX_ID = 2**31 - 1  # ids are stored as int64; larger floats would not convert exactly
_CAMERA = re.compile(r"c(\d)")


def camera_of(name: str, path: Path, field: str) -> int:
    """0-based camera id from a frame name (``c3s1_...`` -> 2)."""
    m = _CAMERA.search(name)
    if m is None:
        raise DatasetError(path, f"frame name '{name}' has no camera 'c<digit>'", field)
    return int(m.group(1)) - 1


def _frame_names(path: Path, key: str) -> list[str]:
    """Frame file names (with .jpg) listed in frame_train.mat / frame_test.mat."""
    names = [n + ".jpg" for n in mat_strings(load_mat(path, [key])[key], path, key)]
    if len(set(names)) != len(names):
        raise DatasetError(path, "a frame is listed twice", key)
    return names


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header (no decoding)."""
    require_file(path, "frame image")
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:
        raise DatasetError(path, f"unreadable image ({exc})") from exc


def _clip(x1y1x2y2: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Clip x1y1x2y2 boxes to the image [0, W] x [0, H]."""
    w, h = size
    out = np.asarray(x1y1x2y2, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 0::2] = np.clip(out[:, 0::2], 0, w)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, h)
    return out


def _read_frame(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One annotation file: clipped x1y1x2y2 float32 boxes and raw ids (degenerate boxes dropped)."""
    key, value = load_mat_key(path, BOX_KEYS)
    arr = np.asarray(value)
    if arr.size == 0:
        arr = np.zeros((0, 5))
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise DatasetError(path, f"expected an N x 5 matrix [id, x, y, w, h], got shape {arr.shape}", key)
    if arr.dtype.kind not in "biuf":
        raise DatasetError(path, f"expected numbers, got dtype {arr.dtype}", key)
    arr = arr.astype(np.float64)
    ids = arr[:, 0]
    if (not np.all(np.isfinite(arr)) or np.any(ids != np.round(ids)) or np.any((ids < 1) & (ids != UNKNOWN_ID))
            or np.any(ids > MAX_ID)):
        raise DatasetError(path, f"ids must be integers in 1..{MAX_ID} or -2 and coordinates finite", key)
    boxes = arr[:, 1:].copy()
    boxes[:, 2:] += boxes[:, :2]
    boxes = _clip(boxes, size).astype(np.float32)  # area checked at the precision returned
    keep = (arr[:, 3] > 0) & (arr[:, 4] > 0) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], ids[keep].astype(np.int64)


def _read_queries(path: Path, image_dir: Path, sizes: dict[str, tuple[int, int]]) -> list[SearchQuery]:
    """query_info.txt (CRLF or LF): one ``pid x y w h frame`` per line; blank lines ignored."""
    require_file(path, "query file")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc})") from exc
    queries = []
    for n, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens:
            continue
        field = f"line {n}"
        if len(tokens) != 6:
            raise DatasetError(path, f"expected 'pid x y w h frame', got {len(tokens)} fields: {line!r}", field)
        try:
            pid = int(tokens[0])
            x, y, w, h = (float(t) for t in tokens[1:5])
        except ValueError as exc:
            raise DatasetError(path, f"bad number ({exc}): {line!r}", field) from exc
        if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
            raise DatasetError(path, f"query box [x, y, w, h] = {[x, y, w, h]} must be finite with w, h > 0", field)
        name = tokens[5] if tokens[5].endswith(".jpg") else tokens[5] + ".jpg"
        if name not in sizes:
            raise DatasetError(path, f"frame '{name}' is not a test frame of frame_test.mat", field)
        box = _clip(np.array([x, y, x + w, y + h]), sizes[name])[0].astype(np.float32)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise DatasetError(path, f"query box {[x, y, w, h]} lies outside the frame", field)
        queries.append(SearchQuery(image_dir / name, box, pid, camera_of(name, path, field)))
    return queries


def read_prw(root: str | Path) -> SearchDataset:
    """Read PRW from ``root``. Train ids are relabelled 0..K-1 (ascending raw id); test frames and
    queries keep raw ids; id -2 becomes UNLABELED; boxes are clipped to the frame."""
    root = Path(root)
    require_dir(root, "PRW root")
    image_dir = require_dir(root / "frames", "frames folder")
    ann_dir = require_dir(root / "annotations", "annotations folder")
    splits = {split: _frame_names(root / f"frame_{split}.mat", f"img_index_{split}") for split in ("train", "test")}
    both = set(splits["train"]) & set(splits["test"])
    if both:
        raise DatasetError(root / "frame_test.mat", f"frame '{sorted(both)[0]}' is also a train frame",
                           "img_index_test")
    sizes: dict[str, tuple[int, int]] = {}
    scenes: dict[str, list[SceneAnnotation]] = {}
    for split, names in splits.items():
        scenes[split] = []
        for name in names:
            sizes[name] = _image_size(image_dir / name)
            boxes, ids = _read_frame(ann_dir / f"{name}.mat", sizes[name])
            ids[ids == UNKNOWN_ID] = UNLABELED
            camid = camera_of(name, root / f"frame_{split}.mat", f"img_index_{split}")
            scenes[split].append(SceneAnnotation(image_dir / name, boxes, ids, camid))
    train_ids = np.unique(np.concatenate([s.pids for s in scenes["train"]] + [np.zeros(0, np.int64)]))
    train_ids = train_ids[train_ids != UNLABELED]
    for s in scenes["train"]:
        labeled = s.pids != UNLABELED
        s.pids[labeled] = np.searchsorted(train_ids, s.pids[labeled])
    test_sizes = {name: sizes[name] for name in splits["test"]}
    return SearchDataset(
        name="PRW",
        root=root,
        train=scenes["train"],
        gallery=scenes["test"],
        queries=_read_queries(root / "query_info.txt", image_dir, test_sizes),
        gallery_lists={},
        num_train_pids=len(train_ids),
    )
