"""`personsearch eval RUN`: evaluate a trained run (or checkpoint) and print its metrics table."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from ..methods import recipe_class
from ..methods.runs import CONFIG_NAME, load_run, run_folder
from ..utils.config import load_yaml
from .options import add_override_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder (with config.yaml) or a checkpoint file inside one")
    parser.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranking")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.html",
                        help="write an HTML page of ranked lists (ReID runs) to this path")
    parser.add_argument("--report-queries", type=int, default=20, metavar="N",
                        help="queries shown in the --report page (default 20)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object instead of a table")
    add_override_argument(parser)


def format_table(metrics: dict[str, float]) -> str:
    """Metrics as aligned text, fractions shown as percentages.

    Keys ``name@N`` (person search: one gallery size N per row) become a grid with a row per N and a
    column per name; the other keys are listed one per line above it.
    """
    plain = {k: v for k, v in metrics.items() if "@" not in k}
    grid: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if "@" in key:
            name, size = key.split("@", 1)
            grid.setdefault(size, {})[name] = value
    lines = []
    if plain:
        width = max(len(k) for k in plain)
        lines += [f"{k:<{width}}  {100 * v:6.2f}" for k, v in plain.items()]
    if grid:
        names = list(dict.fromkeys(n for row in grid.values() for n in row))
        lines.append("gallery  " + "  ".join(f"{n:>7}" for n in names))
        for size, row in grid.items():
            cells = "  ".join(f"{100 * row[n]:7.2f}" if n in row else f"{'-':>7}" for n in names)
            lines.append(f"{size:>7}  {cells}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..utils.files import atomic_write_text

    run_dir = run_folder(args.run)
    method = str(load_yaml(run_dir / CONFIG_NAME).get("method", "baseline"))
    knobs = {field.name for field in fields(recipe_class(method).CONFIG().eval)}
    overrides = list(args.overrides)
    if args.report is not None and args.report_queries < 1:
        raise ValueError(f"--report-queries must be >= 1, got {args.report_queries}")
    for flag, key, value in (("--rerank", "rerank", args.rerank and "true"),
                             ("--report", "report_file", args.report and str(args.report.absolute())),
                             ("--report", "report_queries", args.report and args.report_queries)):
        if value and key not in knobs:
            raise ValueError(f"{flag} does not apply to '{method}' runs (their eval settings: {', '.join(sorted(knobs))})")
        if value:
            overrides.append(f"eval.{key}={value}")
    cfg, recipe, model = load_run(args.run, overrides)
    metrics = recipe.evaluate(model)
    target = run_dir / "eval.json"
    atomic_write_text(target, json.dumps(metrics, indent=2))
    if args.json:
        print(json.dumps({"run": str(run_dir), "metrics": metrics}))
        return 0
    print(format_table(metrics))
    print(f"wrote {target}" + (f" and {args.report}" if args.report else ""))
    return 0
