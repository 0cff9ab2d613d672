"""`personsearch extract RUN --images DIR --out FEATS.npz`: embeddings of every image in a folder.

Any run works: a ReID run embeds the crops with its network; an end-to-end person search run
embeds each crop as an image whose one person box is the whole crop (its query path).

Backend: ``auto`` (default) runs fp32 on CPU through onnxruntime, the fastest path whose features
match PyTorch's (benchmarks/extract.py: ResNet-50 26 vs 17 img/s, MobileNetV2 287 vs 70 on 2 cores;
bf16 is faster still but drifts, so it is opt-in); PyTorch otherwise (GPU, bf16, or a model the
exporter cannot follow, with a warning). ``--backend torch`` or ``onnx`` forces one.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from ..methods.runs import load_run
from .options import add_override_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder (with config.yaml) or a checkpoint file inside one")
    parser.add_argument("--images", type=Path, required=True, help="folder of person crops (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz with 'features' and 'paths'")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    parser.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto",
                        help="auto: onnxruntime for fp32 on CPU (same features, faster), else PyTorch")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of a sentence")
    add_override_argument(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data.folder import list_images
    from ..data.transforms import build_test_transform
    from ..inference.extract import ExtractConfig, extract_from_paths
    from ..utils.devices import resolve_device
    from ..utils.files import atomic_write_bytes

    backend = _backend(args.backend, args.precision, resolve_device(args.device))  # before any loading
    _, recipe, model = load_run(args.run, args.overrides, need_data=False)
    forms = recipe.inference(model)
    paths = list_images(args.images)
    if not paths:
        raise ValueError(f"{args.images}: no images found")
    ext = ExtractConfig(batch_size=args.batch_size, precision=args.precision, progress=True, device=args.device)
    embedder = forms.crop_embedder
    if backend == "onnx":
        from ..inference.onnx_embedders import OnnxCropEmbedder, onnx_or_torch

        embedder = onnx_or_torch(embedder.cpu(), forms.input_size)
        backend = "onnx" if isinstance(embedder, OnnxCropEmbedder) else "torch"
    feats = extract_from_paths(embedder, paths, build_test_transform(*forms.input_size), ext)
    buffer = io.BytesIO()
    np.savez(buffer, features=feats, paths=np.asarray([str(p) for p in paths]))
    atomic_write_bytes(args.out, buffer.getvalue())
    if args.json:
        print(json.dumps({"out": str(args.out), "images": len(paths), "dim": int(feats.shape[1]),
                          "input_size": list(forms.input_size), "backend": backend}))
    else:
        print(f"wrote {len(paths)} x {feats.shape[1]} features to {args.out}")
    return 0


def _backend(choice: str, precision: str, device) -> str:
    """Which runtime embeds: ``onnx`` (fp32 on CPU only) or ``torch``; ValueError for an impossible ask."""
    if choice == "onnx" and (precision != "fp32" or device.type != "cpu"):
        raise ValueError(f"--backend onnx runs fp32 on CPU only (got --precision {precision}, device {device})")
    if choice == "auto":
        return "onnx" if precision == "fp32" and device.type == "cpu" else "torch"
    return choice
