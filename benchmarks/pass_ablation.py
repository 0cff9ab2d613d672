"""PASS ablation at equal budget: random init vs DINO vs PASS pre-training, each fine-tuned supervised
(``pass_reid``) and unsupervised (``pass_usl``); one JSON line.

Pre-training runs on the synthetic benchmark's unlabeled crops (``--data``'s ``unlabeled/``), fine-tuning
on its ``market1501/`` (the USL runs never read the training identities). Every row uses the shipped
CPU recipes with the same seed and epochs; only the initialisation differs. Runs that already hold
``metrics_final.json`` are reused, so an interrupted ablation resumes.

    .venv/bin/python benchmarks/pass_ablation.py --data outputs/demo/synth-standard-0 --out runs/pass_ablation
    # parts ablation (PASS with 1 part): --rows pass1_reid
    # objective control (PASS's views and steps, each image's views matched to another image's teacher):
    #     --rows passshift_reid
    # the README's stem table: --rows random_reid,pass_reid,dino_reid --set engine.epochs=6 --pretrain-set engine.epochs=3
    # the README's hard table (data: personsearch synth outputs/synth-hard-0 --preset hard):
    #     --data outputs/synth-hard-0 --rows random_reid,pass_reid,dino_reid,random_usl,pass_usl,dino_usl
    #     --set engine.epochs=6 --pretrain-set engine.epochs=2; camera-centred clustering:
    #     --rows random_usl,pass_usl --set cluster.camera_norm=true (their own --out)
    # a second fine-tuning seed from the same pre-training runs:
    #     --out runs/pass_hard_seed1 --pretrained runs/pass_hard --rows pass_reid,dino_reid --set engine.seed=1
    # from 16x16 patches, without the shortcut-removing views: --set model.stem=patch
    #     --pretrain-set data.views.cast_jitter=0 --pretrain-set data.views.background_mix=0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from personsearch.methods.runs import train_or_reuse as train_run  # noqa: E402

PRETRAIN = {"dino": ("dino", []), "pass": ("pass", []), "pass1": ("pass", ["model.num_parts=1"]),
            "passshift": ("pass", ["loss.target_shift=1"])}  # the control: same steps, no cross-view signal
PARTS = {"random": 3, "dino": 0, "pass": 3, "pass1": 1, "passshift": 3}
ROWS = [f"{init}_{tune}" for init in ("random", "dino", "pass") for tune in ("reid", "usl")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a synthetic benchmark folder (unlabeled/, market1501/)")
    parser.add_argument("--out", type=Path, default=Path("runs/pass_ablation"))
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated INIT_TUNE, INIT in random, dino, "
                        "pass, pass1, passshift (PASS with loss.target_shift=1: the objective control) and TUNE "
                        "in reid, usl")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    parser.add_argument("--pretrained", type=Path, default=None,
                        help="a folder holding finished pre-training runs (dino/, pass/, pass1/: a previous --out) "
                             "to fine-tune from instead of pre-training into --out, e.g. for a second fine-tuning seed")
    parser.add_argument("--pretrain-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override for the pre-training runs only, e.g. engine.epochs=3")
    args = parser.parse_args(argv)
    market = [f"data.root={args.data / 'market1501'}", "engine.progress=false", *args.set]
    rows: dict[str, dict] = {}
    for name in args.rows.split(","):
        init, _, tune = name.partition("_")
        if init not in PARTS or tune not in ("reid", "usl"):
            parser.error(f"unknown row {name!r}")
        weights = []
        if init != "random":
            recipe, extra = PRETRAIN[init]
            pre = (args.pretrained or args.out) / init
            if args.pretrained and not (pre / "metrics_final.json").is_file():
                parser.error(f"--pretrained: {pre} holds no finished pre-training run (metrics_final.json)")
            rows[init] = train_run(recipe, [f"data.root={args.data / 'unlabeled'}",
                                            f"data.eval_root={args.data / 'market1501'}", "engine.progress=false",
                                            *extra, *args.set, *args.pretrain_set], pre)
            weights = [f"model.weights={pre}"]
        rows[name] = train_run(f"pass_{tune}", [*market, f"model.num_parts={PARTS[init]}", *weights], args.out / name)
    print(json.dumps({"data": str(args.data), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
