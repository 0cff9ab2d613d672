"""`personsearch demo`: the main job on the embedded synthetic benchmark.

Today: generate the benchmark (cached by config), load every output with the dataset readers,
check every image and box, print a summary and write a contact sheet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

CHECKS = (  # (output folder, reader format, path handed to the reader)
    ("market1501", "market1501", "market1501"),
    ("cuhk_sysu", "cuhk-sysu", "cuhk_sysu"),
    ("prw", "prw", "prw"),
    ("detection", "coco", "detection/annotations/instances_person.json"),
    ("unlabeled", "unlabeled", "unlabeled"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="working folder")
    parser.add_argument("--preset", default="standard", help="synthetic benchmark preset (tiny for a quick look)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)


def _cached(folder: Path, cfg_dict: dict) -> bool:
    from ..synthetic.generate import MARKER

    marker = folder / MARKER
    return marker.is_file() and (yaml.safe_load(marker.read_text()) or {}).get("config") == cfg_dict


def run(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset
    from ..synthetic.config import config_to_dict, make_config
    from ..synthetic.generate import generate
    from ..synthetic.preview import write_preview

    cfg = make_config(args.preset, seed=args.seed)
    folder = args.out / f"synth-{args.preset}-{args.seed}"
    print(f"== 1/3 synthetic benchmark ({args.preset}, seed {args.seed}) -> {folder}")
    if _cached(folder, config_to_dict(cfg)):
        print("   already generated with these settings; reusing it")
    else:
        print("   " + json.dumps(generate(folder, cfg, workers=args.workers)))
    print("== 2/3 reading every output back with the dataset readers and checking every image")
    failed = 0
    for name, fmt, rel in CHECKS:
        report = check_dataset(fmt, folder / rel, progress=False)
        status = "OK" if report.ok else f"{len(report.problems)} PROBLEMS"
        print(f"   {name:<11} {status:<10} " + ", ".join(f"{k}={v}" for k, v in report.summary.items() if k != "dataset"))
        for problem in report.problems[:5]:
            print(f"      {problem}")
        failed += not report.ok
    print(f"== 3/3 contact sheet: {write_preview(folder)}")
    return 1 if failed else 0
