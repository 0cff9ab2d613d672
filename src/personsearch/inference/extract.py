"""Batched embedding extraction: fp32 or bf16 autocast, channels_last, flip averaging, checks.

    cfg = ExtractConfig(precision="bf16")             # CPU: AVX512-bf16 / AMX kernels via oneDNN
    feats = extract_features(model, loader, cfg)      # float32 (N, D), in input order
    feats = extract_from_paths(model, paths, transform, cfg)

Speed (2-core AVX512-bf16 EPYC, 256x128, batch 64; numbers from benchmarks/extract.py): for
ResNet-50 (last stride 1) bf16 autocast + channels_last is ~3x fp32 eager, and
``compile=True`` (torch.compile, inductor with weight freezing, under the same bf16 autocast)
is ~8x, after a one-off compile of ~15-50 s per model and input shape; worth it for a gallery,
not for a handful of images. channels_last also speeds up fp32 on this CPU (1.3-1.4x).
``precision="bf16"`` on a CPU without native bf16 still runs (oneDNN emulates it) but is then
usually slower than fp32. bf16 embeddings have per-image cosine >= 0.99 to fp32 ones; check
your retrieval metric once if you need exact parity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..utils.devices import model_device, resolve_device
from ..utils.progress import progress

__all__ = ["ExtractConfig", "prepare_model", "extract_features", "extract_from_paths"]

_PRECISIONS = ("fp32", "bf16")


@dataclass
class ExtractConfig:
    """How to run a model over images. Defaults: fp32, batch 64, on the model's own device, no flip/normalise.

    ``device="model"`` (default) runs wherever the model already is and leaves it untouched, so a
    training model is never moved (evaluation during training); any other value (``auto``, ``cpu``,
    ``cuda:1``) moves the model there first, in place, and with ``channels_last`` converts it.
    """

    batch_size: int = 64
    precision: str = "fp32"  # fp32 | bf16 (torch.autocast bf16; on CPU uses AMX/AVX512-bf16 where present)
    channels_last: bool = True
    device: str = "model"  # model | auto | cpu | cuda | cuda:N
    num_workers: int = 0
    progress: bool = True
    flip: bool = False  # average the embedding of the image and its horizontal flip
    normalize: bool = False  # L2-normalise the output (after flip averaging)
    compile: bool = False  # torch.compile the model (inductor; CPU: freezing); pads the last batch

    def __post_init__(self) -> None:
        if self.precision not in _PRECISIONS:
            raise ValueError(f"ExtractConfig.precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if int(self.batch_size) < 1:
            raise ValueError(f"ExtractConfig.batch_size must be >= 1, got {self.batch_size}")
        if int(self.num_workers) < 0:
            raise ValueError(f"ExtractConfig.num_workers must be >= 0, got {self.num_workers}")


def target_device(model: nn.Module, cfg: ExtractConfig) -> torch.device:
    """Where extraction runs: the model's own device for ``device="model"``, else ``cfg.device``."""
    return model_device(model) if cfg.device == "model" else resolve_device(cfg.device)


def prepare_model(model: nn.Module, cfg: ExtractConfig) -> nn.Module:
    """Put ``model`` in eval mode; unless ``cfg.device`` is ``"model"``, also move it to that device
    (channels_last if ``cfg.channels_last``).

    Works in place (like ``Module.to``) and is cheap to repeat: on an already prepared model it
    copies nothing. Parameters stay fp32; bf16 comes from autocast in extract_features. Returns
    ``model``, or with ``cfg.compile`` a ``torch.compile`` wrapper sharing its parameters
    (static shapes; on CPU with inductor weight freezing). Re-wrapping the same model is cheap
    (~1 s): torch's compile cache is reused; a new input shape compiles again.
    """
    device = target_device(model, cfg)
    model.eval()
    if cfg.device != "model":
        model.to(device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
    if not cfg.compile:
        return model
    options = {"freezing": True} if device.type == "cpu" else None
    return torch.compile(model, dynamic=False, options=options)


def _images_of(batch: Any, index: int) -> Tensor:
    """The image tensor of one batch: a Tensor, the first item of a tuple/list, or dict["images"]."""
    if isinstance(batch, Tensor):
        images = batch
    elif isinstance(batch, (tuple, list)) and batch:
        images = batch[0]
    elif isinstance(batch, dict):
        if "images" not in batch:
            raise ValueError(f"batch {index}: dict batch has no 'images' key (keys: {sorted(map(str, batch))})")
        images = batch["images"]
    else:
        raise TypeError(
            f"batch {index}: expected a Tensor, an (images, ...) tuple or a {{'images': ...}} dict, "
            f"got {type(batch).__name__}"
        )
    if not isinstance(images, Tensor):
        raise TypeError(f"batch {index}: images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"batch {index}: images must be (B, C, H, W), got shape {tuple(images.shape)}")
    return images


def _embeddings_of(output: Any, index: int) -> Tensor:
    """(B, D) float embeddings from a model output (Tensor, first of a tuple, or dict)."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    elif isinstance(output, dict):
        for key in ("embeddings", "embedding", "features", "feat"):
            if key in output:
                output = output[key]
                break
    if not isinstance(output, Tensor):
        raise TypeError(f"batch {index}: model returned {type(output).__name__}, expected a (B, D) tensor")
    if output.ndim == 4 and output.shape[2:] == (1, 1):  # un-flattened global pooling
        output = output.flatten(1)
    if output.ndim != 2:
        raise ValueError(f"batch {index}: model output must be (B, D) embeddings, got shape {tuple(output.shape)}")
    return output


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def extract_features(
    model: nn.Module,
    batches: Iterable[Tensor | tuple | dict],
    cfg: ExtractConfig | None = None,
) -> np.ndarray:
    """Embed every image in ``batches``; returns float32 (N, D) in input order.

    ``batches`` yields already-normalised image tensors (B, 3, H, W), or ``(images, *extras)``
    tuples (e.g. a DataLoader over (img, pid, camid)), or dicts with an ``"images"`` key. With
    ``cfg.flip`` each embedding is the mean of the image's and its horizontal flip's; with
    ``cfg.normalize`` rows are L2-normalised last. Raises ValueError if any output is NaN/inf.
    The model is prepared with :func:`prepare_model`; the train/eval mode of each of its
    submodules is restored on return (device and memory format are not).
    With ``cfg.compile`` a batch smaller than the first one is zero-padded to its size (eval-mode
    outputs are per image, so padding changes nothing) to avoid a recompile for the last batch.
    """
    cfg = cfg or ExtractConfig()
    device = target_device(model, cfg)
    modes = [(module, module.training) for module in model.modules()]
    net = prepare_model(model, cfg)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    non_blocking = device.type == "cuda"
    chunks: list[np.ndarray] = []
    seen = 0
    pad_to = 0

    def embed(images: Tensor, index: int) -> Tensor:
        n = images.shape[0]
        if cfg.compile and n < pad_to:
            images = torch.cat([images, images.new_zeros((pad_to - n, *images.shape[1:]))])
        out = _embeddings_of(net(images.contiguous(memory_format=memory_format)), index)
        return out[:n].float()

    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    bar = progress(total, "extract", cfg.progress, unit="batch")
    try:
        for index, batch in enumerate(batches):
            bar.update(1)
            images = _images_of(batch, index)
            if images.shape[0] == 0:
                continue
            images = images.to(device, dtype=torch.float32, non_blocking=non_blocking)
            pad_to = pad_to or images.shape[0]
            with _autocast(device, cfg.precision):
                feats = embed(images, index)
                if cfg.flip:
                    feats = (feats + embed(images.flip(3), index)) * 0.5
            if not bool(torch.isfinite(feats).all()):
                bad = (~torch.isfinite(feats)).any(1).nonzero().flatten().tolist()
                hint = " (precision='bf16': retry with precision='fp32')" if cfg.precision == "bf16" else ""
                raise ValueError(
                    f"non-finite (NaN/inf) embeddings in batch {index} for {len(bad)} of {feats.shape[0]} "
                    f"images (overall indices {[seen + i for i in bad[:10]]}{'...' if len(bad) > 10 else ''}); "
                    f"check the model weights and input normalisation{hint}"
                )
            if cfg.normalize:
                feats = torch.nn.functional.normalize(feats, p=2, dim=1, eps=1e-12)
            if chunks and feats.shape[1] != chunks[0].shape[1]:
                raise ValueError(f"batch {index}: embedding size {feats.shape[1]} != {chunks[0].shape[1]} of batch 0")
            chunks.append(feats.cpu().numpy().astype(np.float32, copy=False))
            seen += feats.shape[0]
    finally:
        for module, training in modes:
            module.training = training
        bar.close()
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks, axis=0), dtype=np.float32)


class _ImageFiles(torch.utils.data.Dataset):
    """Image files -> transform(PIL RGB image); an unreadable file raises an error naming it."""

    def __init__(self, paths: Sequence[str | Path], transform: Callable[[Any], Tensor]) -> None:
        self.paths = [Path(p) for p in paths]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        from personsearch.data.images import read_image  # DatasetError naming the file

        path = self.paths[i]
        image = read_image(path)
        try:
            out = self.transform(image)
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise ValueError(f"{path}: transform failed: {type(err).__name__}: {err}") from err
        if not isinstance(out, Tensor) or out.ndim != 3:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"{path}: transform must return a (C, H, W) tensor, got {got}")
        return out


def extract_from_paths(
    model: nn.Module,
    paths: Sequence[str | Path],
    transform: Callable[[Any], Tensor],
    cfg: ExtractConfig | None = None,
) -> np.ndarray:
    """Embed image files (read as PIL RGB, then ``transform`` -> normalised (3, H, W) tensor).

    Returns float32 (len(paths), D) in ``paths`` order. A missing/corrupt image raises
    :class:`personsearch.data.errors.DatasetError` (a ValueError) whose message names the file.
    """
    cfg = cfg or ExtractConfig()
    dataset = _ImageFiles(paths, transform)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=int(cfg.batch_size),
        shuffle=False,
        num_workers=int(cfg.num_workers),
        pin_memory=target_device(model, cfg).type == "cuda",
        persistent_workers=False,
    )
    try:
        return extract_features(model, loader, cfg)
    except RuntimeError as err:
        # A DataLoader worker re-raises our ValueError/DatasetError as a RuntimeError carrying the
        # worker's traceback; surface the original "<path>: problem" line as a ValueError again.
        lines = str(err).strip().splitlines()
        if lines and lines[0].startswith("Caught") and "DataLoader worker" in lines[0] and lines[-1].count(":") >= 1:
            raise ValueError(lines[-1].split(": ", 1)[-1]) from err
        raise
