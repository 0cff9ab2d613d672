"""ONNX export of an embedding model and an onnxruntime (CPU) embedder.

    path = export_onnx(model, "reid.onnx")              # input "images" (N,3,256,128) -> "embeddings"
    emb = OnnxEmbedder(path)                            # CPUExecutionProvider, graph opt level ALL
    feats = emb(images)                                 # float32 (N, D)

Exporter: torch 2.14 still ships the TorchScript exporter (``dynamo=False``, deprecated). Here it
exports torchvision ResNet/MobileNetV2 and timm ViT correctly (max |diff| to PyTorch ~1e-6
relative) in ~1-8 s, whereas the dynamo exporter is slower and needs per-model dynamic-shape
plumbing, so :func:`export_onnx` uses the TorchScript exporter and falls back to
``dynamo=True`` only if the TorchScript one fails or is gone. The exporter used is recorded in
the file's metadata (``metadata_props["personsearch.exporter"]``).

No int8 path is offered: onnxruntime static int8 (QDQ, per-channel, MinMax/Percentile/Entropy
calibration) is 2-3x faster than fp32 here but gave per-image cosine ~0.7 to fp32 on ImageNet
MobileNetV2 (benchmarks/extract.py measures it as ``onnx_int8``); dynamic int8 leaves
convolutions in fp32 (or uses the slow ConvInteger path), so it does not help CNN embedders.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["export_onnx", "OnnxEmbedder", "default_threads"]

INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"


class EmbeddingOnly(nn.Module):
    """Export wrapper: the first tensor of the model's output, with a 1x1 spatial map flattened."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        out = self.model(images)
        if isinstance(out, (tuple, list)):
            out = out[0]
        elif isinstance(out, dict):
            out = out["embeddings"] if "embeddings" in out else next(iter(out.values()))
        if out.dim() == 4:
            out = out.flatten(1)
        return out


def default_threads() -> int:
    """CPU cores this process may use (sched affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _tmp_beside(path: Path, suffix: str = ".onnx") -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _export_torchscript(model: nn.Module, dummy: Tensor, tmp: Path, opset: int, dynamic_batch: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None,
        )


def _export_dynamo(model: nn.Module, dummy: Tensor, tmp: Path, opset: int, dynamic_batch: bool) -> None:
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    torch.onnx.export(
        model,
        (dummy,),
        str(tmp),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamic_shapes=dynamic_shapes,
        external_data=False,
        verbose=False,
    )


def export_onnx(
    model: nn.Module,
    path: str | Path,
    height: int = 256,
    width: int = 128,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> Path:
    """Export ``model`` (eval mode, fp32, on CPU) to ONNX at ``path``; returns the path.

    Graph: input ``"images"`` float32 (N, 3, height, width) -> output ``"embeddings"`` float32
    (N, D); N is symbolic (``"batch"``) with ``dynamic_batch``, else fixed at 1. The file is
    written to a temporary name beside ``path``, checked with ``onnx.checker`` and then moved
    over ``path`` (os.replace), so a failed export never leaves a partial file. The model is
    exported on a CPU copy of itself; its device and train/eval mode are left unchanged.
    """
    import copy

    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Deep copy: exporting must not move the caller's model or switch its mode.
    wrapped = EmbeddingOnly(copy.deepcopy(model).float().cpu()).eval()
    dummy = torch.randn(2 if dynamic_batch else 1, 3, int(height), int(width))
    tmp = _tmp_beside(path)
    exporter = "torchscript"
    try:
        try:
            _export_torchscript(wrapped, dummy, tmp, opset, dynamic_batch)
        except Exception as ts_err:  # noqa: BLE001 - removed/failed legacy exporter: try dynamo
            exporter = "dynamo"
            try:
                _export_dynamo(wrapped, dummy, tmp, opset, dynamic_batch)
            except Exception as dy_err:
                raise RuntimeError(
                    f"ONNX export of {type(model).__name__} failed with both exporters: "
                    f"TorchScript: {type(ts_err).__name__}: {ts_err}; dynamo: {type(dy_err).__name__}: {dy_err}"
                ) from dy_err
        proto = onnx.load(str(tmp))
        inputs = [i.name for i in proto.graph.input]
        outputs = [o.name for o in proto.graph.output]
        if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
            raise RuntimeError(f"exported graph has inputs {inputs} / outputs {outputs}, expected ['images'] / ['embeddings']")
        meta = {p.key: p for p in proto.metadata_props}
        for key, value in (("personsearch.exporter", exporter), ("personsearch.input_hw", f"{height}x{width}")):
            entry = meta.get(key) or proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _session_options(threads: int | None, optimize: bool):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    so.intra_op_num_threads = int(threads) if threads else default_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return so


class OnnxEmbedder:
    """onnxruntime CPU session over an exported embedding model: ``emb(images) -> (N, D) float32``.

    ``threads`` defaults to the cores this process may use; ``optimize`` selects graph
    optimisation level ALL (False: none, for debugging). ``images`` is a float32 (N, 3, H, W)
    array or tensor, already normalised. A model exported with a fixed batch size is fed in
    chunks of that size (the last one zero-padded), so any N works.
    """

    def __init__(self, path: str | Path, threads: int | None = None, optimize: bool = True) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: ONNX model not found")
        self.threads = int(threads) if threads else default_threads()
        self.session = ort.InferenceSession(
            str(self.path), sess_options=_session_options(self.threads, optimize), providers=["CPUExecutionProvider"]
        )
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_shape = tuple(inp.shape)  # e.g. ('batch', 3, 256, 128)
        batch_dim = self.input_shape[0] if self.input_shape else None
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

    def __call__(self, images: np.ndarray | Tensor) -> np.ndarray:
        if isinstance(images, Tensor):
            images = images.detach().to("cpu", torch.float32).numpy()
        x = np.ascontiguousarray(images, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"{self.path.name}: images must be (N, C, H, W), got shape {x.shape}")
        for axis, want in enumerate(self.input_shape[1:4], start=1):
            if isinstance(want, int) and x.shape[axis] != want:
                raise ValueError(
                    f"{self.path.name}: images have shape {x.shape}, model expects (N, {', '.join(map(str, self.input_shape[1:]))})"
                )
        if x.shape[0] == 0:
            d = self.session.get_outputs()[0].shape[-1]
            return np.zeros((0, d if isinstance(d, int) else 0), dtype=np.float32)
        if self.fixed_batch is None:
            out = self.session.run([self.output_name], {self.input_name: x})[0]
        else:
            k, parts = self.fixed_batch, []
            for start in range(0, x.shape[0], k):
                chunk = x[start : start + k]
                n = chunk.shape[0]
                if n < k:
                    chunk = np.concatenate([chunk, np.zeros((k - n, *chunk.shape[1:]), np.float32)])
                parts.append(self.session.run([self.output_name], {self.input_name: chunk})[0][:n])
            out = np.concatenate(parts)
        out = np.asarray(out, dtype=np.float32).reshape(out.shape[0], -1)
        if not np.isfinite(out).all():
            raise ValueError(f"{self.path.name}: non-finite (NaN/inf) embeddings in onnxruntime output")
        return out
