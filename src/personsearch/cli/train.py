"""`personsearch train CONFIG.yaml`: train any recipe with the shared engine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..methods.runs import build_recipe, load_recipe_config, save_run_config
from .options import add_override_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="a shipped recipe's name (`personsearch recipes` lists them: baseline, "
                                       "alignedreid, nae, ...) or a recipe YAML file")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
    parser.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    add_override_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..engine import is_main_process, train
    from ..utils.files import atomic_write_text

    cfg = load_recipe_config(args.recipe, args.overrides)
    out = args.out or Path("runs") / Path(args.recipe).stem
    if args.resume:  # before config.yaml is rewritten: it must keep describing the weights in the folder
        from ..engine.checkpoint import check_resumable

        check_resumable(out / "checkpoints", cfg.engine.epochs)
    out.mkdir(parents=True, exist_ok=True)
    save_run_config(out, cfg)
    result = train(build_recipe(cfg, out), cfg.engine, out, resume=args.resume)
    if is_main_process():  # under torchrun every rank returns here; one writes and prints
        atomic_write_text(out / "metrics_final.json", json.dumps(result.metrics, indent=2))
        if args.json:
            print(json.dumps({"run": str(out), "metrics": result.metrics}))
        else:
            from .evaluate import format_table

            print(format_table(result.metrics))
            print(f"run: {out}")
    return 0
