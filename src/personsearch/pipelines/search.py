"""``search(query_image, query_box, gallery)``: one person against a gallery of whole images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Union

import numpy as np

from ..utils.progress import iterate
from .images import ImageLike, check_boxes, load_rgb
from .loading import Searcher

GalleryOutputs = dict[str, dict[str, np.ndarray]]  # image name -> {"boxes", "scores", "embeddings"}
Gallery = Union[Iterable[Union[str, Path]], Mapping[str, ImageLike], GalleryOutputs]


@dataclass(frozen=True)
class SearchHit:
    """One detected person in a gallery image, ranked by ``similarity`` to the query."""

    image: str
    box: tuple[float, float, float, float]
    similarity: float
    det_score: float


def embed_gallery(searcher: Searcher, gallery: Iterable[str | Path] | Mapping[str, ImageLike],
                  progress: bool = False) -> GalleryOutputs:
    """Run ``searcher`` over every gallery image (paths, or a mapping name -> image)."""
    items = list(gallery.items()) if isinstance(gallery, Mapping) else [(str(p), p) for p in gallery]
    if not items:
        raise ValueError("the gallery is empty: give at least one image")
    return {name: searcher(image) for name, image in iterate(items, "gallery", progress, unit="img")}


def _is_embedded(gallery) -> bool:
    return isinstance(gallery, Mapping) and all(isinstance(v, Mapping) and "embeddings" in v for v in gallery.values())


def rank_gallery(query: np.ndarray, outputs: GalleryOutputs, top_k: int | None = None) -> list[SearchHit]:
    """Every gallery detection sorted by dot-product similarity to ``query`` (D,), best first."""
    if not outputs:
        raise ValueError("the gallery is empty: give at least one image")
    query = np.asarray(query, np.float32).reshape(-1)
    if not np.isfinite(query).all():
        raise ValueError("the query embedding is not finite (NaN or inf)")
    hits: list[SearchHit] = []
    for name, out in outputs.items():
        emb = np.asarray(out["embeddings"], np.float32)
        if len(emb) == 0:
            continue
        if emb.ndim != 2 or emb.shape[1] != len(query):
            raise ValueError(f"gallery image {name}: embeddings of shape {emb.shape} do not match "
                             f"the query's dimension {len(query)}")
        sims = emb @ query
        for box, sim, score in zip(np.asarray(out["boxes"]), sims, np.asarray(out["scores"])):
            hits.append(SearchHit(name, tuple(float(v) for v in box), float(sim), float(score)))
    hits.sort(key=lambda h: -h.similarity)
    return hits if top_k is None else hits[:top_k]


def search(searcher: Searcher, query_image: ImageLike, query_box, gallery: Gallery, top_k: int | None = 10,
           progress: bool = False) -> list[SearchHit]:
    """Find the person in ``query_box`` [x1, y1, x2, y2] of ``query_image`` in ``gallery``.

    ``gallery``: image paths, a mapping name -> image, or the output of :func:`embed_gallery`
    (embed once, query many times). Returns detections ranked by similarity, best first.
    """
    rgb = load_rgb(query_image, "query_image")
    box = check_boxes(query_box, rgb.shape[1], rgb.shape[0], "query_box")
    if len(box) != 1:
        raise ValueError(f"query_box must be one box [x1, y1, x2, y2], got {len(box)}")
    query = searcher.extract_query(rgb, box)[0]
    outputs = gallery if _is_embedded(gallery) else embed_gallery(searcher, gallery, progress)
    return rank_gallery(query, outputs, top_k)
