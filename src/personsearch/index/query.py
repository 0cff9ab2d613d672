"""The query side: which person of a query image to look for, and its embedding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class QueryPerson:
    """The person searched for: its box in the query image, embedding, and how it was chosen."""

    box: tuple[float, float, float, float]
    embedding: np.ndarray
    how: str
    det_score: float | None = None
    detected: int = 0


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` -> four floats; ValueError saying what is wrong."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--box must be four numbers x1,y1,x2,y2, got {text!r}") from None
    if len(values) != 4:
        raise ValueError(f"--box must be four numbers x1,y1,x2,y2, got {len(values)} in {text!r}")
    return values  # type: ignore[return-value]


def query_person(searcher, image: np.ndarray, box=None, name: str | None = None) -> QueryPerson:
    """Embed the person in ``box`` of ``image`` (RGB uint8); without a box, detect people and take
    the highest-scoring one (the larger on a tie), or the whole image if nobody is detected (a crop).
    Bad boxes raise ValueError naming the box and the image size; with ``name`` (the query file),
    any ValueError, the searcher's included, starts with it.
    """
    if name is None:
        return _query_person(searcher, image, box)
    try:
        return _query_person(searcher, image, box)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def _query_person(searcher, image: np.ndarray, box=None) -> QueryPerson:
    from ..pipelines.images import check_boxes

    height, width = image.shape[:2]
    if box is not None:
        checked = check_boxes(box, width, height, "query box")
        if len(checked) != 1:
            raise ValueError(f"give one query box [x1, y1, x2, y2], got {len(checked)}")
        emb = np.asarray(searcher.extract_query(image, checked), np.float32)[0]
        return QueryPerson(tuple(float(v) for v in checked[0]), emb, "the given box")
    out = searcher(image)
    boxes = np.asarray(out["boxes"], np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        whole = np.array([[0, 0, width, height]], np.float32)
        emb = np.asarray(searcher.extract_query(image, whole), np.float32)[0]
        return QueryPerson((0.0, 0.0, float(width), float(height)), emb,
                           "the whole image (no person detected: treated as a person crop)")
    scores = np.asarray(out["scores"], np.float32).reshape(-1)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    best = int(np.lexsort((-areas, -scores))[0])
    how = (f"the highest-scoring of {len(boxes)} detected people" if len(boxes) > 1 else "the one detected person")
    return QueryPerson(tuple(float(v) for v in boxes[best]), np.asarray(out["embeddings"], np.float32)[best], how,
                       float(scores[best]), len(boxes))
