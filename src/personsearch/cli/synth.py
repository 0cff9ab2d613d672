"""`personsearch synth`: write the synthetic benchmark, or a contact sheet of one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..utils.config import deep_update, load_yaml, parse_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (created; must be empty or a previous synth output)")
    parser.add_argument("--preset", default="tiny", help="tiny (tests, seconds), standard (experiments, ~1 min) "
                        "or hard (standard's scenes; more, less distinct people: for pre-training methods)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 0)")
    parser.add_argument("--config", type=Path, default=None, help="YAML of settings over the preset (see synthetic/config.py)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set market.train_ids=50 --set difficulty.lighting=0.4")
    parser.add_argument("--only", action="append", default=None, metavar="OUTPUT",
                        help="write only these outputs (market1501, cuhk_sysu, prw, detection, unlabeled)")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default: all cores)")
    parser.add_argument("--preview", action="store_true",
                        help="also (or, if OUT already holds a benchmark, only) write OUT/preview.png, a contact sheet")


def run(args: argparse.Namespace) -> int:
    from ..synthetic.config import make_config
    from ..synthetic.generate import MARKER, OUTPUTS, generate
    from ..synthetic.preview import write_preview

    if args.preview and (args.out / MARKER).exists() and not (args.config or args.overrides or args.only):
        print(f"wrote {write_preview(args.out)}")
        return 0
    overrides = deep_update(load_yaml(args.config) if args.config else {}, parse_overrides(args.overrides))
    cfg = make_config(args.preset, overrides, seed=args.seed)
    summary = generate(args.out, cfg, workers=args.workers, outputs=args.only or OUTPUTS)
    print(json.dumps(summary))
    if args.preview:
        print(f"wrote {write_preview(args.out)}")
    return 0
