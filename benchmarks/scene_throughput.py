"""Whole-scene person search throughput on this CPU (scenes/s, ms/scene) per pipeline; one JSON line.

One call = one whole scene in, every person's box, score and embedding out (``searcher(rgb)``;
images are decoded beforehand, so decoding is not timed). Pipelines, side by side in one process:

  e2e_mobilenetv2_fp32   build_person_search_model("mobilenetv2", weights="imagenet") (ImageNet
                         trunk, untrained detection/embedding heads) in EndToEndSearcher(dtype=None)
  e2e_mobilenetv2_bf16   the same model object, EndToEndSearcher(dtype=torch.bfloat16) (CPU autocast)
  e2e_resnet18_fp32      build_person_search_model("resnet18"), random init, fp32
  two_step               pretrained_searcher(): shipped SSDLite ONNX detector + ImageNet MobileNetV2
                         crop embedder (256x128)
  two_step_tile          pretrained_searcher(tile=True): SSDLite on overlapping tiles + full frame

End-to-end models use --min-size/--max-size (default 360/480, the CPU recipe `nae`),
--roi-output-size and --detections-per-img (recipe defaults 14 / 300), det_thresh 0.5. Their heads
are untrained: every one of the 300 test proposals scores about 0.5 and clears the box head's 0.05
threshold, so ~110-200 per scene survive NMS and are embedded by a second pass through the RoI head.
``dets_raw`` (model output, before det_thresh) is what that cost follows; ``dets_kept`` (>= det_thresh) is what a caller gets,
and differs between fp32 and bf16 because rounding moves scores near 0.5 across the threshold. A
trained model keeps far fewer boxes, so these figures are an upper bound for the e2e head cost.

Scenes: by default the CUHK-SYSU test scenes (320x240) of the `tiny` synthetic benchmark, generated
into a temp dir; --images DIR takes any folder instead. Frames of --video (default: Debian
opencv-doc's vtest.avi, 768x576 real pedestrians, if present; --frames 0 skips it) are a second set.

Timing: --warmup untimed scenes per pipeline and set, then rounds that run every pipeline still
timing once on the same scene (round-robin, so load from other processes hits all pipelines alike;
a --pause before each call lets the previous engine's spinning threads go idle). A pipeline stops
after --scenes scenes, or once its timed calls in the set add up to --budget-s seconds (but not
before --min-scenes), so the cheap two-step pipelines get more scenes (``timed_scenes``) than the
end-to-end models. ``scenes_s`` = 1 / median seconds per scene (``ms_median``); ``speedup`` =
scenes_s / e2e_mobilenetv2_fp32 scenes_s on the same set.
``bf16_check``: output dtypes of the conv / linear / (frozen) BN layers during one bf16 scene
(Conv2d:bfloat16 = autocast ran; FrozenBatchNorm2d:float32 = the frozen BN of the ImageNet model
casts back to fp32 after every conv), and max |fp32 - bf16| and min cosine over the unit query
embeddings (``extract_query``) of up to 3 GT query boxes.
The machine may be shared (``loadavg_1m_start_end``): absolute times then vary between runs, and
--threads 1 can beat the default 2 (an OpenMP thread descheduled by another process stalls its
peers): on a 2-core box with a training run using ~1.7 cores, --threads 1 ran the e2e models ~1.5x
and the two-step pipelines 1.7-3x faster, with far smaller ms_max.

    .venv/bin/python benchmarks/scene_throughput.py                 # ~3 min on a busy 2-core box
    .venv/bin/python benchmarks/scene_throughput.py --images DIR --frames 0 --scenes 50 --budget-s 300
    .venv/bin/python benchmarks/scene_throughput.py --threads 1 --pipelines e2e_mobilenetv2_fp32,e2e_mobilenetv2_bf16 \
        --min-size 900 --max-size 1500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from personsearch.pipelines import EndToEndSearcher, load_rgb, pretrained_searcher  # noqa: E402

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
PIPELINES = ("e2e_mobilenetv2_fp32", "e2e_mobilenetv2_bf16", "e2e_resnet18_fp32", "two_step", "two_step_tile")
BASELINE = "e2e_mobilenetv2_fp32"


class SceneSet:
    """Decoded scenes (RGB uint8) and GT query boxes [(rgb, box)] for the bf16 check."""

    def __init__(self, name: str, source: str, images: list[np.ndarray], queries: list) -> None:
        self.name, self.source, self.images, self.queries = name, source, images, queries


def synthetic_scenes(workdir: Path, count: int) -> SceneSet:
    """Test scenes and queries of the `tiny` synthetic CUHK-SYSU benchmark (generated in ``workdir``)."""
    from personsearch.data.registry import read_dataset
    from personsearch.synthetic.config import make_config
    from personsearch.synthetic.generate import generate

    generate(workdir / "tiny", make_config("tiny"), workers=1, outputs=["cuhk_sysu"], progress=False)
    data = read_dataset("cuhk-sysu", workdir / "tiny" / "cuhk_sysu")
    images = [load_rgb(s.path) for s in data.gallery[:count]]
    queries = [(load_rgb(q.image), q.box) for q in data.queries[:3]]
    return SceneSet("synthetic", "tiny synthetic CUHK-SYSU test scenes", images, queries)


def folder_scenes(folder: Path, count: int) -> SceneSet:
    """The first ``count`` images under ``folder``; queries: a person-shaped box at each image's centre."""
    from personsearch.data.folder import list_images

    images = [load_rgb(p) for p in list_images(folder)[:count]]
    queries = [(im, _centre_box(im)) for im in images[:3]]
    return SceneSet("images", f"{folder} (query boxes: image centre, no GT)", images, queries)


def video_scenes(path: Path, count: int) -> SceneSet:
    """``count`` frames spread evenly over the video."""
    from personsearch.index.frames import video_frames, video_info

    total = video_info(path)[1]
    every = max(1, total // count) if total else 1
    images = [f.rgb for f in video_frames(path, every=every, start=every // 2)][:count]
    return SceneSet("video", f"{path} every {every}th frame", images, [(im, _centre_box(im)) for im in images[:1]])


def _centre_box(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    bw, bh = min(w, h) * 0.2, min(w, h) * 0.5
    return np.array([w / 2 - bw / 2, h / 2 - bh / 2, w / 2 + bw / 2, h / 2 + bh / 2], np.float32)


def build_pipelines(names: list[str], args) -> dict:
    """name -> searcher; the two e2e_mobilenetv2 pipelines share one model object."""
    from personsearch.losses import OIMLoss
    from personsearch.models.search import build_person_search_model

    searchers = {}
    models: dict[str, torch.nn.Module] = {}
    for name in names:
        if name.startswith("e2e_"):
            _, backbone, precision = name.split("_")
            if backbone not in models:
                torch.manual_seed(0)
                models[backbone] = build_person_search_model(
                    backbone, OIMLoss(256, args.num_pids, 100), weights="imagenet" if backbone == "mobilenetv2" else None,
                    min_size=args.min_size, max_size=args.max_size, roi_output_size=args.roi_output_size,
                    detections_per_img=args.detections_per_img).eval()
            model = models[backbone]
            searchers[name] = EndToEndSearcher(model, det_thresh=args.det_thresh,
                                               dtype=torch.bfloat16 if precision == "bf16" else None)
        elif name in ("two_step", "two_step_tile"):
            searchers[name] = pretrained_searcher(score_threshold=args.det_thresh, tile=name.endswith("tile"))
        else:
            raise ValueError(f"unknown pipeline {name!r}; choose from {', '.join(PIPELINES)}")
    return searchers


class Probe:
    """Forward hooks: raw detections out of the RoI heads, and the trunk's (padded) input size."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.raw: int | None = None
        self.input_hw: tuple[int, int] | None = None
        self.handles = [
            model.roi_heads.register_forward_hook(self._roi),
            model.trunk.register_forward_pre_hook(self._trunk),
        ]

    def _roi(self, module, inputs, output) -> None:
        self.raw = sum(len(d["boxes"]) for d in output[0])

    def _trunk(self, module, inputs) -> None:
        self.input_hw = tuple(inputs[0].shape[-2:])

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def run_set(scenes: SceneSet, searchers: dict, count: int, args) -> dict:
    """Warm up, then time round-robin rounds on up to ``count`` scenes; per pipeline figures."""
    probes = {n: Probe(s.model) for n, s in searchers.items() if isinstance(s, EndToEndSearcher)}
    times = {n: [] for n in searchers}
    kept = {n: [] for n in searchers}
    raw = {n: [] for n in probes}
    input_hw = {}
    try:
        for image in scenes.images[:args.warmup]:
            for s in searchers.values():
                s(image)
        timed = scenes.images[args.warmup:args.warmup + count]
        spent = {n: 0.0 for n in searchers}
        for image in timed:
            active = [n for n in searchers if len(times[n]) < args.min_scenes or spent[n] < args.budget_s]
            if not active:
                break
            for name in active:
                time.sleep(args.pause)  # let the previous engine's spinning worker threads go idle
                start = time.perf_counter()
                out = searchers[name](image)
                elapsed = time.perf_counter() - start
                times[name].append(elapsed)
                spent[name] += elapsed
                kept[name].append(len(out["boxes"]))
                if name in probes:
                    raw[name].append(probes[name].raw)
                    input_hw[name] = list(probes[name].input_hw)
    finally:
        for p in probes.values():
            p.close()
    n_timed = max(len(ts) for ts in times.values())
    sizes = sorted({(int(im.shape[1]), int(im.shape[0])) for im in timed[:n_timed]})
    result = {"source": scenes.source, "image_wh": [list(s) for s in sizes],
              "e2e_net_input_hw": next(iter(input_hw.values()), None),  # padded batch fed to the trunk
              "warmup_scenes": min(args.warmup, len(scenes.images)), "scenes_available": len(timed),
              "timed_s": round(sum(spent.values()), 1), "pipelines": {}}
    base = statistics.median(times[BASELINE]) if times.get(BASELINE) else None
    for name, ts in times.items():
        if not ts:
            continue
        med = statistics.median(ts)
        row = {"scenes_s": round(1 / med, 3), "ms_median": round(med * 1000, 1),
               "ms_min": round(min(ts) * 1000, 1), "ms_max": round(max(ts) * 1000, 1), "timed_scenes": len(ts)}
        if base:
            row["speedup"] = round(base / med, 2)
        if name in raw:
            row["dets_raw_mean"] = round(float(np.mean(raw[name])), 1)
        row["dets_kept_mean"] = round(float(np.mean(kept[name])), 1)
        result["pipelines"][name] = row
    return result


def bf16_check(fp32: EndToEndSearcher, bf16: EndToEndSearcher, queries: list) -> dict:
    """Did autocast run (output dtypes of the convolutions and of the layers after them during one
    bf16 scene), and how far the bf16 query embeddings are from fp32."""
    counts: dict[str, int] = {}

    def hook(module, inputs, output) -> None:
        key = f"{type(module).__name__}:{str(output.dtype).replace('torch.', '')}"
        counts[key] = counts.get(key, 0) + 1

    handles = [m.register_forward_hook(hook) for m in bf16.model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d))
               or type(m).__name__ == "FrozenBatchNorm2d"]
    try:
        bf16(queries[0][0])
    finally:
        for h in handles:
            h.remove()
    diffs, cosines = [], []
    for rgb, box in queries:
        a, b = fp32.extract_query(rgb, box[None]), bf16.extract_query(rgb, box[None])
        diffs.append(float(np.abs(a - b).max()))
        cosines.append(float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b))))
    return {"layer_output_dtypes": dict(sorted(counts.items())), "autocast_ran": counts.get("Conv2d:bfloat16", 0) > 0,
            "queries": len(queries),
            "query_emb_max_abs_diff": round(max(diffs), 5), "query_emb_cos_min": round(min(cosines), 5)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of scenes (default: the tiny synthetic CUHK-SYSU test scenes)")
    parser.add_argument("--video", type=Path, default=Path(VTEST), help="video whose frames are a second scene set")
    parser.add_argument("--frames", type=int, default=8, help="video frames to use (0: no video set)")
    parser.add_argument("--scenes", type=int, default=20, help="at most this many timed scenes per set and pipeline")
    parser.add_argument("--min-scenes", type=int, default=3, help="time at least this many scenes despite --budget-s")
    parser.add_argument("--budget-s", type=float, default=12.0,
                        help="a pipeline stops timing a set once its timed calls there add up to this many seconds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed scenes per set and pipeline")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help=f"comma list from {','.join(PIPELINES)}")
    parser.add_argument("--min-size", type=int, default=360)
    parser.add_argument("--max-size", type=int, default=480)
    parser.add_argument("--roi-output-size", type=int, default=14)
    parser.add_argument("--detections-per-img", type=int, default=300)
    parser.add_argument("--num-pids", type=int, default=5532, help="OIM lookup table size (no effect on inference)")
    parser.add_argument("--det-thresh", type=float, default=0.5)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds slept (untimed) before each call")
    args = parser.parse_args(argv)
    names = [n for n in args.pipelines.split(",") if n]
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        with ExitStack() as stack:
            scene_sets = []
            need = args.warmup + args.scenes
            if args.images is not None:
                scene_sets.append(folder_scenes(args.images, need))
            else:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scene_bench_")))
                scene_sets.append(synthetic_scenes(tmp, need))
            if args.frames > 0 and args.video.is_file():
                scene_sets.append(video_scenes(args.video, args.warmup + args.frames))
            elif args.frames > 0:
                print(f"[scene bench] {args.video} not found; no video set", file=sys.stderr)
            searchers = build_pipelines(names, args)
            check = None
            if "e2e_mobilenetv2_fp32" in searchers and "e2e_mobilenetv2_bf16" in searchers:
                check = bf16_check(searchers["e2e_mobilenetv2_fp32"], searchers["e2e_mobilenetv2_bf16"],
                                   scene_sets[0].queries)
            sets = {s.name: run_set(s, searchers, args.frames if s.name == "video" else args.scenes, args)
                    for s in scene_sets}
    finally:
        torch.set_num_threads(threads_before)
    result = {
        "benchmark": "scene_throughput", "cpus": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": args.threads, "onnxruntime_threads": "default (SSDLite detector)",
        "loadavg_1m_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "note": "shared machine: other processes (e.g. training runs) were using the same CPU cores; "
                "absolute times vary with their load",
        "min_size": args.min_size, "max_size": args.max_size, "roi_output_size": args.roi_output_size,
        "detections_per_img": args.detections_per_img, "det_thresh": args.det_thresh,
        "e2e_heads": "untrained (mobilenetv2: ImageNet trunk; resnet18: random init)",
        "speedup_baseline": BASELINE, "bf16_check": check, "sets": sets,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
