"""The model an index is built with: a spec string stored in the index, and the searcher it loads.

Specs: ``pretrained`` (a shipped detector + zero-shot ImageNet MobileNetV2 features; ``pretrained@OPTIONS``
picks the detector and the embedding, see ``pipelines.pretrained_options``), a training run folder or
checkpoint (stored as an absolute path), or ``py:MODULE:FACTORY``, a zero-argument callable
returning any object with the searcher interface (``searcher(rgb)`` -> boxes, scores, embeddings;
``searcher.extract_query(rgb, boxes)``): a hook for custom detectors and embedders.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

PRETRAINED = "pretrained"  # personsearch.pipelines.PRETRAINED, without importing torch here
#: what "pretrained" meant for indexes built before the zero-shot embedding changed (1280-d embeddings)
LEGACY_PRETRAINED = ("pretrained@plain+detector=ssdlite", 1280)


def _is_pretrained(text: str) -> bool:
    return text == PRETRAINED or text.startswith(PRETRAINED + "@")


def model_spec(model: str | Path) -> str:
    """The spec to store: an existing path becomes absolute, anything else is kept as given."""
    text = str(model)
    if _is_pretrained(text) or text.startswith("py:"):
        return text
    path = Path(text)
    return str(path.absolute()) if path.exists() else text


def resolved_spec(spec: str, dim: int | None, folder: str | Path | None = None) -> str:
    """``spec`` as it must be read for an index of ``dim``-d embeddings in ``folder``: plain
    ``pretrained`` in an index of an older release (1280-d) is ``LEGACY_PRETRAINED``'s spec, and a
    relative ``weights=PATH`` option (``personsearch adapt`` stores one) is read inside ``folder``, so
    an index can be moved or copied whole."""
    if spec == PRETRAINED and dim == LEGACY_PRETRAINED[1]:
        return LEGACY_PRETRAINED[0]
    if folder is None or not spec.startswith(PRETRAINED + "@"):
        return spec
    base, _, options = spec.partition("@")
    parts = [f"weights={Path(folder).absolute() / o[len('weights='):]}"
             if o.startswith("weights=") and not Path(o[len("weights="):]).is_absolute() else o
             for o in options.split("+")]
    return f"{base}@{'+'.join(parts)}"


def load_model(spec: str, score_threshold: float = 0.5, dim: int | None = None, folder: str | Path | None = None):
    """The searcher for ``spec`` (see the module note); errors name the spec. ``dim`` and ``folder``:
    the index's embedding size and folder (``resolved_spec``): an index built by an older release
    with plain ``pretrained`` (1280-d embeddings) keeps the searcher it was built with, and adapted
    weights are found inside the index."""
    if spec.startswith("py:"):
        module, _, name = spec[3:].partition(":")
        if not module or not name:
            raise ValueError(f"model {spec!r}: write py:MODULE:FACTORY")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"model {spec!r}: cannot import {module}.{name} ({err})") from err
        return factory()
    from ..pipelines import load_searcher

    spec = resolved_spec(spec, dim, folder)
    if not _is_pretrained(spec) and not Path(spec).exists():
        raise FileNotFoundError(f"model {spec}: no such run folder or checkpoint (or use 'pretrained')")
    return load_searcher(spec, score_threshold=score_threshold)


def embedding_dim(searcher) -> int:
    """Size of the searcher's embeddings (its ``dim``, or measured on a blank 256x128 crop)."""
    dim = getattr(searcher, "dim", None)
    if dim:
        return int(dim)
    blank = np.zeros((256, 128, 3), np.uint8)
    return int(np.asarray(searcher.extract_query(blank, [[0, 0, 128, 256]])).shape[1])
