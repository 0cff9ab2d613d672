"""`personsearch datasets check --format FMT ROOT`: summary, or the first problems found."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..data.registry import READERS

    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    check = sub.add_parser("check", help="load a dataset and validate its images and boxes")
    check.add_argument("root", type=Path, help="dataset root (for coco: the annotation JSON)")
    check.add_argument("--format", "-f", required=True, choices=sorted(READERS), help="dataset format")
    check.add_argument("--no-images", action="store_true", help="skip decoding every image")
    check.add_argument("--max-problems", type=int, default=20, help="stop after this many problems")


def run(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset

    report = check_dataset(args.format, args.root, verify_images=not args.no_images,
                           max_problems=args.max_problems)
    width = max(len(k) for k in report.summary)
    for key, value in report.summary.items():
        print(f"{key:<{width}}  {value}")
    if report.images_checked:
        print(f"{'images_checked':<{width}}  {report.images_checked}")
    if report.ok:
        print("OK")
        return 0
    print(f"PROBLEMS ({len(report.problems)} shown):")
    for problem in report.problems:
        print(f"  {problem}")
    return 1
