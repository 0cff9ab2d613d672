"""Initialising models from a whole person search checkpoint (hybrid pre-training's plug-and-play output).

A person search state (keys ``trunk.*``, ``rpn.*``, ``roi_heads.*``) initialises

- a person search model of either head: everything that has the same meaning is copied. NAE's one
  head is SeqNet's second head (res5 + box regressor + norm-aware embedding), so SeqNet ->
  NAE takes ``roi_heads.reid_head`` as NAE's ``roi_heads.box_head`` (SeqNet's detection head 1
  and its predictor have no NAE counterpart), and NAE -> SeqNet copies NAE's res5 into both SeqNet
  heads (head 1's predictor keeps its fresh initialisation);
- a backbone (``build_backbone``, e.g. the ReID model of two-step search): the trunk plus the
  identity branch's res5 (SeqNet: ``reid_head``; NAE: ``box_head``), found through the very
  modules ``split_parts`` shares between a backbone and a person search model.

Never transferred: the OIM lookup table and queue (their sizes are the dataset's identities and
unlabeled boxes). What is skipped or left at its initialisation is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import Tensor, nn

LOG = logging.getLogger("personsearch.models")
OIM_PREFIX = "roi_heads.oim."
_HEAD = "roi_heads.box_head."
_REID = "roi_heads.reid_head."
_SEQNET_ONLY = ("roi_heads.box_predictor.",)


def is_search_state(state: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` is a person search model's (a trunk, an RPN and RoI heads)."""
    return any(k.startswith("trunk.") for k in state) and any(k.startswith("roi_heads.") for k in state)


def head_kind(state: Mapping[str, Tensor]) -> str:
    """``seqnet`` (two res5 heads) or ``nae`` (one) of a person search state."""
    return "seqnet" if any(k.startswith(_REID) for k in state) else "nae"


def _source_key(key: str, ours: str, theirs: str) -> str | None:
    """The checkpoint key that initialises our ``key`` (None: no counterpart)."""
    if ours == theirs:
        return key
    if ours == "nae" and key.startswith(_HEAD):  # NAE's head = SeqNet's head 2
        return _REID + key.removeprefix(_HEAD)
    if ours == "seqnet" and key.startswith(_REID):  # both SeqNet heads from NAE's res5
        return _HEAD + key.removeprefix(_REID)
    if ours == "seqnet" and key.startswith(_SEQNET_ONLY):
        return None
    return key


def search_init_state(model: nn.Module, state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """(what to load, checkpoint keys skipped, model keys left as initialised) for ``model``.

    ValueError when a transferable tensor has another shape (another backbone or embedding size).
    """
    own = model.state_dict()
    ours, theirs = head_kind(own), head_kind(state)
    load, used, kept = {}, set(), []
    for key, value in own.items():
        if key.startswith(OIM_PREFIX):
            continue
        source = _source_key(key, ours, theirs)
        if source is None or source not in state:
            kept.append(key)
            continue
        if tuple(state[source].shape) != tuple(value.shape):
            raise ValueError(f"checkpoint entry {source} {tuple(state[source].shape)} does not fit {key} "
                             f"{tuple(value.shape)}: a person search model with another backbone or embedding")
        load[key] = state[source]
        used.add(source)
    skipped = [k for k in state if k not in used]
    return load, skipped, kept


def load_search_init(model: nn.Module, state: Mapping[str, Tensor], source: str = "checkpoint") -> dict[str, list[str]]:
    """Initialise person search ``model`` from another person search ``state`` (rules: module
    docstring); logs one warning naming what was skipped and what kept its initialisation."""
    load, skipped, kept = search_init_state(model, state)
    model.load_state_dict(load, strict=False)
    LOG.warning("model.weights %s: initialised %d of %d tensors from a %s person search model (into %s); skipped "
                "%d: %s; kept their initialisation: %s", source, len(load), len(model.state_dict()),
                head_kind(state), head_kind(model.state_dict()), len(skipped), _summary(skipped), _summary(kept))
    return {"loaded": sorted(load), "skipped": skipped, "kept": kept}


def backbone_state_from_search(state: Mapping[str, Tensor], backbone: nn.Module) -> dict[str, Tensor]:
    """The ``backbone``'s state_dict taken from a person search ``state``: trunk + identity res5.

    BatchNorm counters absent from frozen-BatchNorm checkpoints start at 0. ValueError when the
    person search model has another backbone.
    """
    from .model import split_parts  # the split a person search model is built with

    trunk, _, blocks, _ = split_parts(backbone)
    name_of = {id(t): k for k, t in backbone.state_dict(keep_vars=True).items()}
    res5 = (_REID if head_kind(state) == "seqnet" else _HEAD) + "blocks."
    out, missing = {}, []
    for prefix, part in (("trunk.", trunk), (res5, blocks)):
        for key, tensor in part.state_dict(keep_vars=True).items():
            target, source = name_of[id(tensor)], prefix + key
            if source in state and tuple(state[source].shape) == tuple(tensor.shape):
                out[target] = state[source]
            elif key.endswith("num_batches_tracked"):
                out[target] = torch.zeros((), dtype=torch.long)
            else:
                missing.append(source)
    if missing:
        raise ValueError(f"person search checkpoint does not fit a {type(backbone).__name__}: {_summary(missing)}")
    skipped = [k for k in state if not k.startswith(("trunk.", res5))]
    LOG.warning("model.weights: backbone from a person search model's trunk + %s (%d tensors); skipped %d: %s",
                res5.removesuffix(".blocks."), len(out), len(skipped), _summary(skipped))
    return out


def _summary(keys: list[str]) -> str:
    """Keys grouped by their first two name parts, e.g. ``roi_heads.oim (3)``."""
    if not keys:
        return "none"
    groups: dict[str, int] = {}
    for key in keys:
        group = ".".join(key.split(".")[:2])
        groups[group] = groups.get(group, 0) + 1
    return ", ".join(f"{g} ({n})" for g, n in groups.items())
