"""`personsearch adapt --index INDEX`: tune the pretrained embedder on the index's own footage, re-embed it."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

LOG = logging.getLogger("personsearch.cli")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, required=True, metavar="INDEX",
                        help="index built with --model pretrained from video (people followed over frames "
                             "are the training signal; no labels needed)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of 8 tracklets x 4 crops (default 60)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    parser.add_argument("--max-crops", type=int, default=2000, metavar="N",
                        help="train on at most N crops, sampled (default 2000; bounds time and memory)")
    parser.add_argument("--merge", type=float, default=0.0, metavar="DIST",
                        help="train on pseudo-identities: tracklets whose mean embeddings are within this cosine "
                             "distance are one person (never two seen at the same time); default 0: tracklets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the outcome as one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..index.adapt import adapt_index
    from ..pipelines import FinetuneConfig

    if args.steps < 1 or args.max_crops < 2 or not args.lr > 0 or not 0 <= args.merge < 2:
        raise ValueError("--steps must be >= 1, --max-crops >= 2, --lr > 0 and --merge in [0, 2)")
    report = adapt_index(args.index, FinetuneConfig(steps=args.steps, lr=args.lr, seed=args.seed),
                         max_crops=args.max_crops, merge=args.merge, progress=LOG.getEffectiveLevel() <= logging.INFO)
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print(f"adapted {args.index}: {report.tracklets} tracklets ({report.identities} pseudo-identities), "
              f"{report.crops} crops, {report.steps} steps "
              f"(triplet loss {report.first_loss:.3f} -> {report.last_loss:.3f}); {report.people} people "
              f"re-embedded in {report.seconds:.0f} s; model {report.model}")
    return 0
