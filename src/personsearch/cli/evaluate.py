"""`personsearch eval RUN`: evaluate a trained run (or checkpoint) and print its metrics table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..methods.runs import load_run
from .options import add_override_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder (with config.yaml) or a checkpoint file inside one")
    parser.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranking")
    parser.add_argument("--report", type=int, default=None, metavar="N", help="write an HTML ranked list of N queries")
    parser.add_argument("--json", type=Path, default=None, help="write the metrics here (default: RUN/eval.json)")
    add_override_argument(parser)


def format_table(metrics: dict[str, float]) -> str:
    """Metrics as an aligned two-column table, fractions shown as percentages."""
    width = max(len(k) for k in metrics)
    return "\n".join(f"{k:<{width}}  {100 * v:6.2f}" for k, v in metrics.items())


def run(args: argparse.Namespace) -> int:
    from ..utils.files import atomic_write_text

    overrides = list(args.overrides)
    if args.rerank:
        overrides.append("eval.rerank=true")
    if args.report:
        overrides.append(f"eval.report_queries={args.report}")
    cfg, recipe, model = load_run(args.run, overrides)
    metrics = recipe.evaluate(model)
    print(format_table(metrics))
    run_dir = args.run if args.run.is_dir() else args.run.parent
    target = args.json or run_dir / "eval.json"
    atomic_write_text(target, json.dumps(metrics, indent=2))
    print(f"wrote {target}")
    return 0
