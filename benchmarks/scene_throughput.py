"""Whole-scene person search time on this CPU, pipelines side by side; one JSON line.

One call = one decoded scene in, every person's box, score and embedding out (``searcher(rgb)``).
Pipelines are given as NAME=SPEC (repeatable ``--pipeline``), SPEC being:

  pretrained             the shipped two-step pipeline (SSDLite ONNX detector + ImageNet MobileNetV2 crops)
  RUN                    a training run folder, as ``load_searcher(RUN)`` builds it: end-to-end (NAE,
                         SeqNet: frozen BatchNorm folded into the convolutions), or two-step (detector + crops);
                         channels-last (NHWC) memory, fp32
  RUN@nchw               the same in NCHW memory (``load_searcher(RUN, nhwc=False)``)
  RUN@unfolded           NHWC without BatchNorm folding (``--set model.fold_bn=false``; end-to-end runs)
  RUN@bf16               NHWC under bf16 autocast
  RUN@proposals=N        NHWC, with N test-time RPN proposals instead of the recipe's (end-to-end runs)
  untrained:RECIPE       a shipped person search recipe (nae, seqnet) built untrained, ImageNet trunk

Default: ``two_step_pretrained=pretrained`` and ``nae_untrained=untrained:nae``. Scenes: the CUHK-SYSU test
scenes of --data (e.g. outputs/demo/synth-standard-0/cuhk_sysu: 480x360), else of a generated `tiny`
benchmark (320x240). Timing is round-robin over pipelines on the same scenes after --warmup untimed
ones, --pause s of idle before each call; ``ms_median`` per pipeline and ``speedup`` against the first.
``fidelity`` (variants of one run, against the run's default form): detection count agreement and
the smallest cosine between their query embeddings of the scenes' GT boxes.

    .venv/bin/python benchmarks/scene_throughput.py --data outputs/demo/synth-standard-0/cuhk_sysu \\
        --pipeline two_step_pretrained=pretrained --pipeline two_step=runs/two_step \\
        --pipeline nae=runs/nae --pipeline nae_bf16=runs/nae@bf16 --pipeline seqnet=runs/seqnet
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from personsearch.pipelines import EndToEndSearcher, load_rgb, load_searcher  # noqa: E402

DEFAULT_PIPELINES = ("two_step_pretrained=pretrained", "nae_untrained=untrained:nae")


def build_searcher(spec: str, det_thresh: float, data_root: Path | None):
    """The searcher a SPEC names (see the module docstring)."""
    from personsearch.pipelines.loading import channels_last

    if spec == "pretrained":
        return load_searcher("pretrained", score_threshold=det_thresh)
    if spec.startswith("untrained:"):
        from personsearch.methods.runs import build_recipe, load_recipe_config

        cfg = load_recipe_config(spec.split(":", 1)[1], [f"data.root={data_root}"] if data_root else [])
        recipe = build_recipe(cfg)
        recipe.num_pids, recipe.num_cq = 100, 100  # sizes only matter for training
        torch.manual_seed(0)
        forms = recipe.inference(recipe.build_model().eval())
        return EndToEndSearcher(channels_last(forms.scene_model), det_thresh=det_thresh)
    run, _, variant = spec.partition("@")
    if variant in ("", "bf16", "nchw"):
        dtype = torch.bfloat16 if variant == "bf16" else None
        return load_searcher(run, score_threshold=det_thresh, dtype=dtype, nhwc=variant != "nchw")
    from personsearch.methods.runs import load_run

    overrides = {"unfolded": ["model.fold_bn=false"]}.get(variant)
    if overrides is None and variant.startswith("proposals="):
        n = int(variant.split("=", 1)[1])
        cfg, _, _ = load_run(run, need_data=False)
        overrides = [f"model.rpn_post_nms=[{cfg.model.rpn_post_nms[0]},{n}]",
                     f"model.rpn_pre_nms=[{cfg.model.rpn_pre_nms[0]},{max(n * 4, n)}]"]
    if overrides is None:
        raise ValueError(f"unknown variant {variant!r} in {spec!r} (nchw, unfolded, bf16, proposals=N)")
    _, recipe, model = load_run(run, overrides, need_data=False)
    return EndToEndSearcher(channels_last(recipe.inference(model).scene_model), det_thresh=det_thresh)


def scenes_and_queries(data: Path | None, count: int, workdir: Path) -> tuple[str, list, list]:
    """(description, decoded test scenes, [(rgb, GT query box)]) of a CUHK-SYSU-format dataset."""
    from personsearch.data import read_cuhk_sysu

    if data is None:
        from personsearch.synthetic.config import make_config
        from personsearch.synthetic.generate import generate

        generate(workdir / "tiny", make_config("tiny"), workers=1, outputs=["cuhk_sysu"], progress=False)
        data = workdir / "tiny" / "cuhk_sysu"
    dataset = read_cuhk_sysu(data)
    images = [load_rgb(s.path) for s in dataset.gallery[:count]]
    queries = [(load_rgb(q.image), np.asarray(q.box, np.float32)) for q in dataset.queries[:5]]
    return str(data), images, queries


def time_pipelines(searchers: dict, images: list, warmup: int, pause: float) -> dict:
    """Round-robin timing: every pipeline on scene i before any on scene i + 1."""
    times = {name: [] for name in searchers}
    found = {name: [] for name in searchers}
    for image in images[:warmup]:
        for searcher in searchers.values():
            searcher(image)
    for image in images[warmup:]:
        for name, searcher in searchers.items():
            time.sleep(pause)
            start = time.perf_counter()
            out = searcher(image)
            times[name].append(time.perf_counter() - start)
            found[name].append(len(out["boxes"]))
    first = statistics.median(next(iter(times.values())))
    rows = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rows[name] = {"ms_median": round(med * 1000, 1), "ms_min": round(min(ts) * 1000, 1),
                      "ms_max": round(max(ts) * 1000, 1), "scenes": len(ts), "speedup": round(first / med, 2),
                      "people_mean": round(float(np.mean(found[name])), 2)}
    return rows


def fidelity(searchers: dict, specs: dict, images: list, queries: list) -> dict:
    """For each variant ``RUN@x``: agreement with the pipeline whose spec is the bare ``RUN``."""
    by_spec = {spec: name for name, spec in specs.items()}
    out = {}
    for name, spec in specs.items():
        run, _, variant = spec.partition("@")
        if not variant or run not in by_spec:
            continue
        ref, var = searchers[by_spec[run]], searchers[name]
        counts = [len(ref(im)["boxes"]) == len(var(im)["boxes"]) for im in images[:5]]
        cos = []
        for rgb, box in queries:
            a, b = ref.extract_query(rgb, box[None]), var.extract_query(rgb, box[None])
            cos.append(float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b))))
        out[name] = {"against": by_spec[run], "same_detection_count": round(float(np.mean(counts)), 2),
                     "query_cos_min": round(min(cos), 5)}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", action="append", default=None, metavar="NAME=SPEC")
    parser.add_argument("--data", type=Path, default=None, help="a CUHK-SYSU-format dataset (its test scenes)")
    parser.add_argument("--scenes", type=int, default=20, help="timed scenes")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--det-thresh", type=float, default=0.5)
    parser.add_argument("--pause", type=float, default=0.1, help="idle seconds before each timed call")
    args = parser.parse_args(argv)
    specs = dict(p.split("=", 1) for p in (args.pipeline or DEFAULT_PIPELINES))
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="scene_bench_") as tmp:
            source, images, queries = scenes_and_queries(args.data, args.warmup + args.scenes, Path(tmp))
            searchers = {name: build_searcher(spec, args.det_thresh, args.data) for name, spec in specs.items()}
            rows = time_pipelines(searchers, images, args.warmup, args.pause)
            agree = fidelity(searchers, specs, images, queries)
    finally:
        torch.set_num_threads(threads)
    result = {"benchmark": "scene_throughput", "cpus": os.cpu_count(), "torch": torch.__version__,
              "torch_threads": args.threads, "loadavg_1m_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
              "scenes": source, "image_wh": sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images}),
              "det_thresh": args.det_thresh, "pipelines": {n: {"spec": specs[n], **rows[n]} for n in rows},
              "fidelity": agree}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
