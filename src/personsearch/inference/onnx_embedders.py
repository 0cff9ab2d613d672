"""Crop embedders on onnxruntime: same embeddings as PyTorch, faster on CPU cores.

``OnnxCropEmbedder(model)`` runs any crop embedder; for the zero-shot one (1.4x faster on 2 cores):

``OnnxZeroShot(embedder)`` wraps a ``models.zero_shot.ZeroShotEmbedder``: its tapped MobileNetV2
blocks are exported to ONNX (in memory, ~1 s; once per set of weights in a process) and run by
onnxruntime on the crops and, with ``flip``, their mirror images in one batch; the pooling and
weighting stay the embedder's own (``combine``), in PyTorch. Measured on 2 cores on vtest frames
(5.4 people a frame, each with its mirror image): 56 ms per frame against 77 ms for PyTorch
(channels-last, eager); the tapped maps differ by at most 5e-6.

The wrapped PyTorch embedder stays the one to tune (``personsearch adapt``): after changing its
weights, ``refresh()`` exports them again.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from .onnx_export import EmbeddingOnly

_EXPORTS: dict[str, bytes] = {}  # weights digest -> ONNX model bytes (one export per weights per process)
_EXPORTS_LOCK = threading.Lock()


class _Taps(nn.Module):
    def __init__(self, embedder: nn.Module) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.embedder.tap_maps(x))


def _digest(module: nn.Module, extra: str) -> str:
    sha = hashlib.sha1(f"{type(module).__name__}:{extra}".encode())
    for name, tensor in module.state_dict().items():
        sha.update(name.encode())
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


def onnx_bytes(module: nn.Module, outputs: int, height: int, width: int) -> bytes:
    """``module`` (crops (N, 3, height, width) -> ``outputs`` tensors) exported to ONNX in memory
    with a free batch size; once per weights and size in a process."""
    import copy

    key = _digest(module, f"{outputs}:{height}x{width}")
    with _EXPORTS_LOCK:
        if key not in _EXPORTS:
            model = copy.deepcopy(module).float().cpu().to(memory_format=torch.contiguous_format).eval()
            names = [f"out{i}" for i in range(outputs)]
            buffer = io.BytesIO()
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
                torch.onnx.export(model, (torch.zeros(2, 3, height, width),), buffer, dynamo=False,
                                  input_names=["crops"], output_names=names,
                                  dynamic_axes={"crops": {0: "n"}, **{n: {0: "n"} for n in names}}, opset_version=17)
            _EXPORTS[key] = buffer.getvalue()
        return _EXPORTS[key]


def cpu_session(model: bytes, threads: int | None = None):
    """An onnxruntime CPU session on ``model`` with ``threads`` intra-op threads (default: torch's
    thread count), not spinning between runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


class OnnxCropEmbedder(nn.Module):
    """A crop embedder ((N, 3, H, W) -> (N, D)) run by onnxruntime: exported in memory at
    construction; the same embeddings (fp32) as PyTorch, faster on CPU (benchmarks/extract.py on 2
    cores: ResNet-50 26 vs 17 img/s, MobileNetV2 287 vs 70, against PyTorch fp32 channels-last)."""

    def __init__(self, model: nn.Module, crop_size: tuple[int, int], threads: int | None = None) -> None:
        super().__init__()
        self.torch_model = model.eval()
        self.session = cpu_session(onnx_bytes(EmbeddingOnly(model), 1, *crop_size), threads)
        # 3 crops, not the 2 the export traced: a batch size frozen into the graph shows up here
        check = torch.randn(3, 3, *crop_size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = EmbeddingOnly(model)(check).float()
        try:
            got = self(check)
        except Exception as err:  # noqa: BLE001 - onnxruntime's own exception types
            raise ValueError(f"the exported graph fails on a batch of 3 ({err})") from None
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-3, rtol=1e-3):
            raise ValueError("the exported graph does not compute what the model does (a forward that leaves "
                             "PyTorch, e.g. through numpy, or a batch size, is traced as constants)")

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return torch.from_numpy(np.asarray(self.session.run(None, {"crops": x.float().contiguous().numpy()})[0]))


class OnnxZeroShot(nn.Module):
    """A ``ZeroShotEmbedder`` whose convolutions run on onnxruntime (see the module docstring).

    ``threads``: onnxruntime intra-op threads (default: torch's thread count when the session is made).
    In: (B, 3, H, W) normalised crops. Out: (B, D) L2-normalised, as the wrapped embedder gives.
    """

    def __init__(self, embedder: nn.Module, crop_size: tuple[int, int] = (256, 128), threads: int | None = None) -> None:
        super().__init__()
        self.torch_embedder = embedder.eval()
        self.crop_size = crop_size
        self.threads = threads
        self.refresh()

    @property
    def flip(self) -> bool:
        return self.torch_embedder.flip

    def refresh(self) -> None:
        """Export the wrapped embedder's current weights (after tuning them)."""
        self.session = cpu_session(onnx_bytes(_Taps(self.torch_embedder), len(self.torch_embedder.taps),
                                              *self.crop_size), self.threads)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        x = x.float().contiguous()
        batch = torch.cat([x, x.flip(-1)]) if self.flip else x
        maps = [torch.from_numpy(np.asarray(m)) for m in self.session.run(None, {"crops": batch.numpy()})]
        n = len(x)
        mirrored = [m[n:] for m in maps] if self.flip else None
        return self.torch_embedder.combine([m[:n] for m in maps], mirrored, x)


def onnx_or_torch(embedder: nn.Module, crop_size: tuple[int, int], fallback=lambda module: module) -> nn.Module:
    """``embedder`` on onnxruntime (``OnnxCropEmbedder``), or ``fallback(embedder)`` in PyTorch, with a
    warning saying why, when it cannot be exported or the export does not compute what it does."""
    try:
        return OnnxCropEmbedder(embedder, crop_size)
    except Exception as err:  # noqa: BLE001 - any exporter or onnxruntime failure: PyTorch still works
        warnings.warn(f"the crop embedder runs in PyTorch: its ONNX export failed ({type(err).__name__}: {err})")
        return fallback(embedder)


__all__ = ["OnnxCropEmbedder", "OnnxZeroShot", "cpu_session", "onnx_bytes", "onnx_or_torch"]
