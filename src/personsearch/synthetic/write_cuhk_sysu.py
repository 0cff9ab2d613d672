"""Write CUHK-SYSU annotation files for synthetic scenes, in the exact official .mat layout.

The files load (``scipy.io.loadmat``) with the same nesting, field order and dtypes as the official
ones, so the SeqNet/OIM/NAE parsing code and :func:`personsearch.data.cuhk_sysu.read_cuhk_sysu` read
them. Output is byte-deterministic for equal inputs and rng state; every file is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.matfiles import mat_cell, mat_scalar, mat_struct, save_mat
from ..data.records import UNLABELED, SceneAnnotation

log = logging.getLogger(__name__)

PROTOCOL_DIR = Path("annotation") / "test" / "train_test"
IMG_FIELDS = ("imname", "nAppear", "box")
BOX_FIELDS = ("idlocate", "ishard")
TRAIN_FIELDS = ("idname", "nAppear", "scene")
SCENE_FIELDS = ("imname", "idlocate", "ishard")
QUERY_FIELDS = ("imname", "idlocate", "ishard", "idname")
GALLERY_FIELDS = ("imname", "idlocate", "ishard")
EMPTY = np.zeros((1, 0), dtype=np.float64)  # MATLAB zeros(1, 0): a negative gallery entry

Occurrence = tuple[int, int]  # (scene index, box index)


@dataclass(frozen=True)
class _Query:
    pid: int
    query: Occurrence
    positives: list[Occurrence]
    negatives: list[int]  # scene indices without the identity, in (rng-shuffled) fill order


def check_scenes(scenes: Sequence[SceneAnnotation]) -> None:
    """Raise ValueError on duplicate scene names or inconsistent box/pid/ignore lengths."""
    seen: set[str] = set()
    for s in scenes:
        if s.name in seen:
            raise ValueError(f"scene name '{s.name}' used twice")
        seen.add(s.name)
        n = len(s.pids)
        if np.asarray(s.boxes).reshape(-1, 4).shape[0] != n or (s.ignore is not None and len(s.ignore) != n):
            raise ValueError(f"scene '{s.name}': boxes, pids and ignore must have the same length")


def identity_occurrences(scenes: Sequence[SceneAnnotation]) -> dict[int, list[Occurrence]]:
    """Per labelled pid (ascending), its first box in every scene showing it (scene order)."""
    occ: dict[int, list[Occurrence]] = {}
    for i, s in enumerate(scenes):
        seen: set[int] = set()
        for j, pid in enumerate(np.asarray(s.pids).tolist()):
            if pid != UNLABELED and pid not in seen:
                seen.add(pid)
                occ.setdefault(int(pid), []).append((i, j))
    return dict(sorted(occ.items()))


def xywh_uint16(box: np.ndarray) -> np.ndarray:
    """A float x1y1x2y2 box as the official 1x4 uint16 [x, y, w, h] (corners rounded, w, h >= 1)."""
    x1, y1, x2, y2 = np.rint(np.asarray(box, dtype=np.float64)).tolist()
    xywh = [x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)]
    return np.clip(np.array([xywh]), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def _hard(scene: SceneAnnotation, j: int) -> np.ndarray:
    return mat_scalar(float(scene.ignore is not None and bool(scene.ignore[j])))


def _located(scenes: Sequence[SceneAnnotation], occ: Occurrence) -> dict[str, object]:
    """{imname, idlocate, ishard} of one box."""
    s = scenes[occ[0]]
    return {"imname": s.name, "idlocate": xywh_uint16(s.boxes[occ[1]]), "ishard": _hard(s, occ[1])}


def _images(scenes: Sequence[SceneAnnotation]) -> np.ndarray:
    """Img: 1xM struct {imname, nAppear, box{idlocate, ishard}}."""
    items = []
    for s in scenes:
        boxes = [{"idlocate": xywh_uint16(b), "ishard": _hard(s, j)}
                 for j, b in enumerate(np.reshape(s.boxes, (-1, 4)))]
        items.append({"imname": s.name, "nAppear": mat_scalar(len(boxes)), "box": mat_struct(boxes, BOX_FIELDS)})
    return mat_struct(items, IMG_FIELDS)


def _train(scenes: Sequence[SceneAnnotation]) -> np.ndarray:
    """Train: Kx1 cell of 1x1 structs {idname, nAppear, scene{imname, idlocate, ishard}}."""
    cells = []
    for pid, occ in identity_occurrences(scenes).items():
        item = {"idname": f"p{pid}", "nAppear": mat_scalar(len(occ)),
                "scene": mat_struct([_located(scenes, o) for o in occ], SCENE_FIELDS)}
        cells.append(mat_struct([item], TRAIN_FIELDS))
    return mat_cell(cells, column=True)


def _choose_queries(test: Sequence[SceneAnnotation], rng: np.random.Generator) -> list[_Query]:
    """One query per test identity seen in >= 2 scenes; the rest of its scenes are positives."""
    queries = []
    for pid, occ in identity_occurrences(test).items():
        if len(occ) < 2:
            continue
        q = int(rng.integers(len(occ)))
        shown = {i for i, _ in occ}
        others = np.array([i for i in range(len(test)) if i not in shown], dtype=np.int64)
        negatives = others[rng.permutation(len(others))].tolist()
        queries.append(_Query(pid, occ[q], occ[:q] + occ[q + 1:], negatives))
    return queries


def _protocol(test: Sequence[SceneAnnotation], queries: list[_Query], size: int) -> np.ndarray:
    """TestG{size}: 1xQ struct {Query{imname, idlocate, ishard, idname}, Gallery{imname, idlocate, ishard}}."""
    items = []
    for q in queries:
        query = {**_located(test, q.query), "idname": f"p{q.pid}"}
        gallery = [_located(test, o) for o in q.positives]
        gallery += [{"imname": test[i].name, "idlocate": EMPTY, "ishard": EMPTY}
                    for i in q.negatives[:max(0, size - len(q.positives))]]
        items.append({"Query": mat_struct([query], QUERY_FIELDS), "Gallery": mat_struct(gallery, GALLERY_FIELDS)})
    return mat_struct(items, ("Query", "Gallery"))


def write_cuhk_sysu_annotations(root: Path, train: list[SceneAnnotation], test: list[SceneAnnotation],
                                gallery_sizes: Sequence[int], rng: np.random.Generator) -> None:
    """Write Images.mat, pool.mat, Train.mat and TestG{N}.mat (N in ``gallery_sizes``) under ``root``.

    Each TestG{N} gallery holds every other scene of the query identity (positives first) plus
    negatives up to N entries; with fewer test scenes than N it holds all of them (logged). The
    negatives of a query are one shuffled order, so smaller galleries are prefixes of larger ones.
    """
    root = Path(root)
    check_scenes([*train, *test])
    ann = root / "annotation"
    save_mat(ann / "Images.mat", {"Img": _images([*train, *test])})
    save_mat(ann / "pool.mat", {"pool": mat_cell([s.name for s in test], column=True)})
    save_mat(root / PROTOCOL_DIR / "Train.mat", {"Train": _train(train)})
    queries = _choose_queries(test, rng)
    for size in sorted(set(int(n) for n in gallery_sizes)):
        short = sum(1 for q in queries if len(q.positives) + len(q.negatives) < size)
        if short:
            log.info("TestG%d: %d of %d queries have fewer than %d gallery scenes; using all of them",
                     size, short, len(queries), size)
        save_mat(root / PROTOCOL_DIR / f"TestG{size}.mat", {f"TestG{size}": _protocol(test, queries, size)})

