"""Searchers ready to use: the pretrained two-step pipeline, or one built from a trained run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .end_to_end import EndToEndSearcher
from .images import ImageLike
from .two_step import ModelDetector, TwoStepSearcher

PRETRAINED = "pretrained"


class Searcher(Protocol):
    """What every pipeline offers: whole images in, people (boxes, scores, embeddings) out."""

    def __call__(self, image: ImageLike) -> dict[str, np.ndarray]: ...

    def extract_query(self, image: ImageLike, boxes) -> np.ndarray: ...


DETECTORS = ("nanodet", "ssdlite")
DEFAULT_DETECTOR = "nanodet"


def shipped_detector(name: str, score_threshold: float = 0.5, tile: bool = False):
    """A shipped offline person detector's ``detect``: ``nanodet`` (NanoDet-g 416, COCO) or ``ssdlite``
    (``tile``: also overlapping tiles at native resolution, for small far people; 3-4x slower)."""
    from ..detection import NanodetPersonDetector, SsdlitePersonDetector

    if name == "ssdlite":
        return SsdlitePersonDetector(score_threshold=score_threshold, tile=tile).detect
    if name == "nanodet":
        if tile:
            raise ValueError("tile applies to the ssdlite detector only (NanoDet's input size is fixed)")
        return NanodetPersonDetector(score_threshold=score_threshold).detect
    raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")


@dataclass(frozen=True)
class ZeroShot:
    """How the pretrained pipeline turns ImageNet MobileNetV2 features into person embeddings
    (``models.zero_shot.ZeroShotEmbedder``): ``ZeroShot.plain()`` is the global average alone."""

    taps: tuple[int, ...] = (13, 17)
    parts: int = 6
    colour_bins: int = 0
    weights: tuple[float, ...] | None = None
    flip: bool = True

    @classmethod
    def plain(cls) -> "ZeroShot":
        """Global average of the last block, no flip: the embedding of the first releases."""
        return cls(taps=(-1,), parts=0, flip=False)


def is_pretrained(model: str | Path) -> bool:
    """Whether ``model`` names the pretrained pipeline: ``pretrained`` or ``pretrained@OPTIONS``."""
    return str(model) == PRETRAINED or str(model).startswith(PRETRAINED + "@")


def pretrained_options(spec: str) -> dict:
    """``pretrained_searcher`` keyword arguments from ``pretrained@opt+opt...``.

    Options: ``detector=nanodet|ssdlite``, ``tile``; the embedding (``ZeroShot``): ``plain`` (global
    average of the last block, no flip: the first releases' embedding), ``parts=N``, ``flip=0|1``,
    ``taps=13/17`` (block indices), ``colour=BINS``, ``w=1/0.5`` (weight per tap, then colour);
    ``weights=PATH``: the embedder's tuned weights (``personsearch adapt`` writes them; PATH without ``+``);
    ``torch``: run the embedder in PyTorch instead of onnxruntime (same embeddings, slower on CPU).
    ValueError naming unknown or malformed options.
    """
    from dataclasses import replace

    if not is_pretrained(spec):
        raise ValueError(f"{spec!r} is not a pretrained pipeline spec (pretrained or pretrained@OPTIONS)")
    opts = str(spec)[len(PRETRAINED) + 1:]
    options = dict(o.partition("=")[::2] for o in filter(None, opts.split("+")))
    fields = {"parts": ("parts", int), "flip": ("flip", lambda v: bool(int(v))),
              "taps": ("taps", lambda v: tuple(int(t) for t in v.split("/"))),
              "colour": ("colour_bins", int), "w": ("weights", lambda v: tuple(float(t) for t in v.split("/")))}
    unknown = sorted(set(options) - {"tile", "plain", "detector", "weights", "torch", *fields})
    if unknown:
        raise ValueError(f"model {spec!r}: unknown options {unknown} (known: detector, tile, plain, weights, torch, "
                         f"{', '.join(fields)})")
    try:
        changes = {fields[k][0]: fields[k][1](v) for k, v in options.items() if k in fields}
    except ValueError as err:
        raise ValueError(f"model {spec!r}: malformed option value ({err})") from None
    zero_shot = replace(ZeroShot.plain() if "plain" in options else ZeroShot(), **changes)
    return {"zero_shot": zero_shot, "tile": "tile" in options, "detector": options.get("detector", DEFAULT_DETECTOR),
            "weights": options.get("weights"), "backend": "torch" if "torch" in options else "onnx"}


def save_embedder(embedder: torch.nn.Module, path: str | Path) -> None:
    """Write a (tuned) zero-shot embedder's weights atomically, for ``pretrained@...+weights=PATH``."""
    import io

    from ..utils.files import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in embedder.state_dict().items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def pretrained_searcher(score_threshold: float = 0.5, tile: bool = False, zero_shot: ZeroShot = ZeroShot(),
                        detector: str = DEFAULT_DETECTOR, weights: str | Path | None = None,
                        backend: str = "onnx") -> TwoStepSearcher:
    """Zero-training two-step search: a shipped person detector (``shipped_detector``) + ImageNet
    MobileNetV2 features made person-aware by ``zero_shot`` (parts, flip, mid-level tap; ``ZeroShot``).
    ``backend``: ``onnx`` runs the embedder's convolutions on onnxruntime (``inference.onnx_embedders``;
    the tunable PyTorch embedder is its ``torch_embedder``), ``torch`` in PyTorch."""
    from ..models.backbones import build_backbone
    from ..models.zero_shot import ZeroShotEmbedder

    features = build_backbone("mobilenetv2", weights="imagenet").features
    embedder = ZeroShotEmbedder(features, taps=zero_shot.taps, parts=zero_shot.parts,
                                colour_bins=zero_shot.colour_bins, weights=zero_shot.weights, flip=zero_shot.flip,
                                mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if weights is not None:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"embedder weights {weights}: no such file (written by `personsearch adapt`)")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        try:
            embedder.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"embedder weights {weights} do not fit this embedding ({err})") from None
    if backend not in ("onnx", "torch"):
        raise ValueError(f"backend must be onnx or torch, got {backend!r}")
    if backend == "onnx":
        from ..inference.onnx_embedders import OnnxZeroShot

        embedder = OnnxZeroShot(channels_last(embedder), crop_size=(256, 128))  # NHWC: for tuning (adapt)
    else:
        embedder = channels_last(embedder)
    return TwoStepSearcher(shipped_detector(detector, score_threshold, tile), embedder, crop_size=(256, 128))


def channels_last(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with its 4-D weights in channels-last (NHWC) memory: oneDNN/cuDNN convolutions then
    keep activations NHWC end to end (measured on 2 CPU cores: 1.4-1.7x faster per scene)."""
    return module.to(memory_format=torch.channels_last)


def load_searcher(model: str | Path = PRETRAINED, *, score_threshold: float = 0.5, tile: bool = False,
                  dtype: torch.dtype | None = None, nhwc: bool = True, zero_shot: ZeroShot | None = None,
                  detector: str = DEFAULT_DETECTOR, onnx: bool = True) -> Searcher:
    """A searcher from ``"pretrained"`` (or ``pretrained@OPTIONS``, see ``pretrained_options``) or a
    training run (folder or checkpoint file).

    The run's recipe says what it becomes (``Recipe.inference``): a person search run (e.g. NAE)
    is used end to end; a ReID run becomes the embedder of a two-step pipeline behind the shipped
    SSDLite detector. ``score_threshold`` drops weaker detections; ``tile`` makes the SSDLite
    detector look for small, far people (slower). ``dtype`` (e.g. ``torch.bfloat16``) runs the
    trained networks under autocast; ``nhwc`` puts them in channels-last memory (the default).
    ``onnx`` (default): a ReID run's crop embedder on CPU without ``dtype`` runs on onnxruntime
    (``inference.onnx_embedders``: the same fp32 embeddings, faster; PyTorch if it cannot be exported).
    ``zero_shot`` sets the pretrained pipeline's embedding (default ``ZeroShot()``).
    """
    if is_pretrained(model):
        if str(model) == PRETRAINED:
            return pretrained_searcher(score_threshold, tile, zero_shot or ZeroShot(), detector)
        return pretrained_searcher(score_threshold, **pretrained_options(str(model)))
    from ..methods.runs import load_run

    _, recipe, net = load_run(model, need_data=False)
    forms = recipe.inference(net)
    prepare = channels_last if nhwc else (lambda module: module)
    if forms.scene_model is not None:
        return EndToEndSearcher(prepare(forms.scene_model), det_thresh=score_threshold, dtype=dtype)
    if forms.crop_embedder is None:
        raise ValueError(f"{model}: a detector run finds people but cannot tell them apart; train a two_step "
                         "recipe with it as detector_run and search with that run")
    find = shipped_detector(detector, score_threshold, tile) if forms.detector is None else \
        ModelDetector(prepare(forms.detector), score_threshold)
    embedder = forms.crop_embedder
    on_cpu = all(p.device.type == "cpu" for p in embedder.parameters())
    if onnx and dtype is None and on_cpu:
        from ..inference.onnx_embedders import onnx_or_torch

        embedder = onnx_or_torch(embedder, forms.input_size, prepare)
    else:
        embedder = prepare(embedder)
    return TwoStepSearcher(find, embedder, crop_size=forms.input_size, dtype=dtype)
