"""Hybrid pre-training ablation: ImageNet vs hybrid initialisation (with / without intra-task
alignment) for person search methods, datasets and shares of the training scenes, at an equal
fine-tuning budget and fixed seeds. One JSON line per table row, then the markdown table.

    .venv/bin/python benchmarks/hybrid_ablation.py --synth outputs/demo/synth-standard-0 \
        --out runs/hybrid_ablation                      # standard: the README's table (hours)
    .venv/bin/python benchmarks/hybrid_ablation.py --synth OUT/tiny --out /tmp/abl --scale tiny

Runs go to ``--out/<name>`` through ``personsearch train``; a finished run (metrics_final.json) is
reused and an unfinished one resumed, so the script can be stopped and started again. Pre-training
runs: ``pretrain_align`` and ``pretrain_noalign`` (``loss.align=0``); fine-tuning runs:
``<dataset>_<method>_f<fraction>_<init>``. Equal budget: every initialisation of a (dataset, method,
fraction) trains the same iterations; a fraction f trains 1/f times the epochs of the full set.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

INITS = ("imagenet", "hybrid_noalign", "hybrid")
GALLERY = {"standard": 100, "tiny": 10}
SCALES = {  # overrides of every run, then of the pre-training / fine-tuning runs only
    "standard": {"all": [], "pretrain": [], "finetune": ["eval.cbgm=false"]},
    "tiny": {"all": ["data.workers=0", "data.min_size=160", "data.max_size=240", "model.roi_output_size=[6,6]",
                     "model.box_batch_size=16", "model.rpn_post_nms=[100,50]", "model.detections_per_img=20",
                     "engine.progress=false", "engine.tensorboard=false"],
             "pretrain": ["data.crop_height=64", "data.batch.p=4", "data.batch.k=2", "data.batch.scene_persons=4",
                          "model.num_cq=64"],
             "finetune": ["data.identity_batch.p=4", "model.num_cq=64", "eval.cbgm=false"]},
}
FORMATS = {"cuhk_sysu": "cuhk-sysu", "prw": "prw"}


def train(recipe: str, out: Path, overrides: list[str]) -> dict:
    """A finished run's metrics: reused when ``out`` holds them, else trained (resumed if started)."""
    done = out / "metrics_final.json"
    if not done.is_file():
        resume = ["--resume"] if (out / "checkpoints").is_dir() else []
        cmd = [sys.executable, "-m", "personsearch.cli", "train", recipe, "--out", str(out), *resume, "--json",
               *(a for o in overrides for a in ("--set", o))]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f"{out.name}.log", "w") as log:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads(done.read_text())


def pretrain(synth: Path, out: Path, scale: str, epochs: int, seed: int, inits: list[str],
             extra_synth: list[Path] | None = None) -> dict[str, Path]:
    """The pre-training runs (alignment on and off) that ``inits`` need, on the synthetic sub-task outputs
    of ``synth`` and of each ``extra_synth`` folder (one more dataset per sub-task each)."""
    sources = [synth, *(extra_synth or [])]
    detection = ",".join(str(s / "detection/annotations/instances_person.json") for s in sources)
    data = [f"data.detection_roots=[{detection}]", f"data.reid_roots=[{','.join(str(s / 'market1501') for s in sources)}]",
            f"engine.epochs={epochs}", f"engine.seed={seed}"]
    common = [*SCALES[scale]["all"], *SCALES[scale]["pretrain"], *data]
    runs = {"hybrid": out / "pretrain_align", "hybrid_noalign": out / "pretrain_noalign"}
    if "hybrid" in inits:
        train("hybrid_pretrain", runs["hybrid"], common)
    if "hybrid_noalign" in inits:
        train("hybrid_pretrain", runs["hybrid_noalign"], [*common, "loss.align=0"])
    return runs


def finetune(synth: Path, out: Path, scale: str, dataset: str, method: str, fraction: float, init: str,
             weights: dict[str, Path], epochs: int, seed: int) -> dict:
    """One fine-tuning run; returns its row entry (mAP, top-1, det AP as percentages)."""
    name = f"{dataset}_{method}_f{fraction:g}_{init}"
    gallery = [f"eval.gallery_sizes=[{GALLERY[scale]}]"] if dataset == "cuhk_sysu" else []
    sets = [*SCALES[scale]["all"], *SCALES[scale]["finetune"], *gallery, f"data.root={synth / dataset}",
            f"data.format={FORMATS[dataset]}", f"data.train_fraction={fraction}", f"engine.seed={seed}",
            f"engine.epochs={max(1, math.ceil(epochs / fraction))}",
            f"model.weights={'imagenet' if init == 'imagenet' else weights[init]}"]
    metrics = train(method, out / name, sets)
    key = f"@{GALLERY[scale]}" if dataset == "cuhk_sysu" else ""
    return {k: round(100 * float(metrics[m]), 1) for k, m in
            (("mAP", f"mAP{key}"), ("top1", f"top1{key}"), ("det_AP", "det_AP"))}


def relative(value: float, base: float) -> float | None:
    """Relative change of ``value`` over ``base`` in percent (None when base is 0)."""
    return round(100 * (value - base) / base, 1) if base else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", type=Path, required=True, help="a `personsearch synth` folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", choices=sorted(SCALES), default="standard")
    parser.add_argument("--methods", default="nae,seqnet")
    parser.add_argument("--datasets", default="cuhk_sysu,prw")
    parser.add_argument("--fractions", default="1.0,0.3,0.1")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=3, help="epochs on the full training set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inits", default=",".join(INITS), help="a subset of " + ",".join(INITS))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="KEY=VALUE for every run")
    parser.add_argument("--extra-synth", type=Path, action="append", default=[],
                        help="another `personsearch synth` folder whose detection/ and market1501/ join the "
                             "pre-training as a second dataset per sub-task (the intra-task setting; e.g. with "
                             "--pretrain-set align.scope=task)")
    parser.add_argument("--pretrain-set", dest="pre_extra", action="append", default=[],
                        help="KEY=VALUE for the pre-training runs (e.g. data.crop_mode=paste)")
    args = parser.parse_args(argv)
    SCALES[args.scale]["all"] = [*SCALES[args.scale]["all"], *args.extra]
    SCALES[args.scale]["pretrain"] = [*SCALES[args.scale]["pretrain"], *args.pre_extra]
    inits = [i for i in INITS if i in args.inits.split(",")]
    if not inits or set(args.inits.split(",")) - set(INITS):
        parser.error(f"--inits: a comma-separated subset of {','.join(INITS)}, got {args.inits!r}")
    weights = pretrain(args.synth, args.out, args.scale, args.pretrain_epochs, args.seed, inits, args.extra_synth)
    rows = []
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            for fraction in (float(f) for f in args.fractions.split(",")):
                row = {"dataset": dataset, "method": method, "fraction": fraction}
                for init in inits:
                    row[init] = finetune(args.synth, args.out, args.scale, dataset, method, fraction, init, weights,
                                         args.finetune_epochs, args.seed)
                for init in inits:
                    if init != "imagenet" and "imagenet" in row:
                        row[f"{init}_rel_mAP"] = relative(row[init]["mAP"], row["imagenet"]["mAP"])
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| dataset | method | scenes | ImageNet mAP / top-1 | hybrid, no align | hybrid + align |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = [("-" if i not in r else f"{r[i]['mAP']} / {r[i]['top1']}")
                 + (f" ({r[f'{i}_rel_mAP']:+}%)" if r.get(f"{i}_rel_mAP") is not None else "") for i in INITS]
        print(f"| {r['dataset']} | {r['method']} | {r['fraction']:.0%} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
