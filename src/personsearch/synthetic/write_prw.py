"""Write PRW annotation files for synthetic frames, in the exact official layout.

``annotations/<frame>.jpg.mat`` (box_new), ``frame_train.mat`` / ``frame_test.mat``, ``ID_train.mat``
(key ``ID_train``) / ``ID_test.mat`` (key ``ID_test2``, as in the official file) and ``query_info.txt``
(CRLF). Byte-deterministic for equal inputs and rng state; every file is written atomically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.matfiles import mat_cell, mat_row, save_mat, write_bytes_atomic
from ..data.records import UNLABELED, SceneAnnotation
from .write_cuhk_sysu import check_scenes, identity_occurrences

UNKNOWN_ID = -2
MAX_QUERY_CAMERAS = 2
_FRAME_NAME = re.compile(r"c(\d)s\d+_\d+\.jpg$")


def _camera(name: str) -> int:
    m = _FRAME_NAME.search(name)
    if m is None:
        raise ValueError(f"PRW frame name '{name}' must look like c1s1_000151.jpg")
    return int(m.group(1)) - 1


def _box_new(scene: SceneAnnotation) -> np.ndarray:
    """N x 5 double [id, x, y, w, h]; id -2 for persons without identity; 2 decimals."""
    boxes = np.asarray(scene.boxes, dtype=np.float64).reshape(-1, 4)
    ids = np.where(np.asarray(scene.pids) == UNLABELED, UNKNOWN_ID, np.asarray(scene.pids)).astype(np.float64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    return np.concatenate([ids[:, None], np.round(xywh, 2)], axis=1)


def _ids(scenes: Sequence[SceneAnnotation]) -> np.ndarray:
    """1xK double row of the labelled ids of ``scenes``, ascending."""
    return mat_row(sorted(identity_occurrences(scenes)))


def _query_lines(test: Sequence[SceneAnnotation], rng: np.random.Generator) -> list[str]:
    """One query per (test identity, camera), at most MAX_QUERY_CAMERAS cameras (chosen with rng),
    for identities seen in >= 2 frames; the query box is a random occurrence in that camera."""
    lines = []
    for pid, occ in identity_occurrences(test).items():
        if len(occ) < 2:
            continue
        by_cam: dict[int, list[tuple[int, int]]] = {}
        for o in occ:
            by_cam.setdefault(_camera(test[o[0]].name), []).append(o)
        cams = sorted(by_cam)
        if len(cams) > MAX_QUERY_CAMERAS:
            cams = sorted(cams[i] for i in rng.choice(len(cams), MAX_QUERY_CAMERAS, replace=False))
        for cam in cams:
            i, j = by_cam[cam][int(rng.integers(len(by_cam[cam])))]
            x1, y1, x2, y2 = np.asarray(test[i].boxes[j], dtype=np.float64).tolist()
            lines.append(f"{pid} {x1:.2f} {y1:.2f} {x2 - x1:.2f} {y2 - y1:.2f} {Path(test[i].name).stem}\r\n")
    return lines


def write_prw_annotations(root: Path, train: list[SceneAnnotation], test: list[SceneAnnotation],
                          rng: np.random.Generator) -> None:
    """Write every PRW annotation file under ``root`` (frames are already in ``root/frames``)."""
    root = Path(root)
    check_scenes([*train, *test])
    for scene in [*train, *test]:
        _camera(scene.name)
        save_mat(root / "annotations" / f"{scene.name}.mat", {"box_new": _box_new(scene)})
    for split, scenes in (("train", train), ("test", test)):
        names = mat_cell([Path(s.name).stem for s in scenes], column=True)
        save_mat(root / f"frame_{split}.mat", {f"img_index_{split}": names})
    save_mat(root / "ID_train.mat", {"ID_train": _ids(train)})
    save_mat(root / "ID_test.mat", {"ID_test2": _ids(test)})
    write_bytes_atomic(root / "query_info.txt", "".join(_query_lines(test, rng)).encode("ascii"))
