"""AlignedReID ablation on the synthetic `standard` benchmark, as the paper's Table: equal budget, fixed seeds.

(a) global-only baseline, (b) + aligned local branch, (c) + mutual learning (two networks).
Each is trained with the same recipe settings, epochs and seed; prints a Markdown table and one
JSON line per variant (rank-1 / mAP, with and without re-ranking, for global / local / global+local
test distances).

    .venv/bin/python benchmarks/alignedreid_ablation.py --root outputs/demo/synth-standard-0/market1501
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from personsearch.methods.runs import build_recipe, load_recipe_config, save_run_config
from personsearch.engine import train

VARIANTS = {
    "(a) global only": ["aligned.local=false", "aligned.models=1", "eval.distances=[global]"],
    "(b) + local branch": ["aligned.local=true", "aligned.models=1"],
    "(c) + mutual learning": ["aligned.local=true", "aligned.models=2"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="outputs/demo/synth-standard-0/market1501")
    parser.add_argument("--out", type=Path, default=Path("outputs/alignedreid_ablation"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--only", default="a,b,c", help="comma-separated variant letters (default a,b,c)")
    args = parser.parse_args()
    rows = []
    wanted = set(args.only.split(","))
    for name, extra in VARIANTS.items():
        if name[1] not in wanted:
            continue
        run = args.out / name.split(")")[0].strip("(")
        cfg = load_recipe_config("alignedreid", [
            f"data.root={args.root}", f"engine.epochs={args.epochs}", f"engine.seed={args.seed}",
            "engine.progress=false", "engine.tensorboard=false", *extra, *args.overrides])
        run.mkdir(parents=True, exist_ok=True)
        save_run_config(run, cfg)
        start = time.time()
        metrics = train(build_recipe(cfg, run), cfg.engine, run, resume=True).metrics
        row = {"variant": name, "minutes": round((time.time() - start) / 60, 1),
               **{k: round(100 * v, 1) for k, v in metrics.items() if k.startswith(("rank1", "mAP"))}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| variant | test distance | rank-1 | mAP | rank-1 (re-ranked) | mAP (re-ranked) | train min |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for suffix, label in (("", "global"), ("_local", "local"), ("_global_local", "global+local")):
            if f"rank1{suffix}" in row:
                print(f"| {row['variant']} | {label} | {row[f'rank1{suffix}']} | {row[f'mAP{suffix}']} | "
                      f"{row.get(f'rank1{suffix}_rerank', '-')} | {row.get(f'mAP{suffix}_rerank', '-')} | {row['minutes']} |")


if __name__ == "__main__":
    main()
