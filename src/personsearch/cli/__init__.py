"""`personsearch <verb>`: one small module per verb; heavy imports happen only when a verb runs.

Conventions every verb keeps: ``--index INDEX`` names an index folder; ``--json`` prints the
result as one JSON object on stdout instead of a table; ``--report OUT.html`` writes an HTML page
to that path; ``--set KEY=VALUE`` overrides a recipe setting. Messages and progress go to stderr
through the ``logging`` module (``-v`` more, ``-q`` warnings only and no progress).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

# verb -> module in this package exposing add_arguments(parser) and run(args) -> int
VERBS = {
    "synth": ("synth", "generate the synthetic benchmark in the official dataset formats"),
    "datasets": ("datasets", "inspect datasets on disk (check a folder in a given format)"),
    "recipes": ("recipes", "list the shipped recipes (names for `train`)"),
    "train": ("train", "train a recipe (a shipped recipe's name or a YAML file) with the shared engine"),
    "eval": ("evaluate", "evaluate a trained run: metrics table + JSON"),
    "extract": ("extract", "embed every image of a folder with a trained run"),
    "demo": ("demo", "the main job on the embedded synthetic benchmark"),
    "index": ("index", "build, extend or inspect a searchable index of the people in images and videos"),
    "adapt": ("adapt", "tune the pretrained embedder on an index's own video (no labels), then re-embed the index"),
    "query": ("query", "find a person (query image + box) in an index: ranked hits, JSON, HTML report"),
    "serve": ("serve", "REST API and web page over a gallery index"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with a sub-parser per verb."""
    parser = argparse.ArgumentParser(prog="personsearch", description="Person re-identification and person search.")
    parser.add_argument("--version", action="version", version=f"personsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages (debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, (module, help_text) in VERBS.items():
        mod = importlib.import_module(f".{module}", __name__)
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        mod.add_arguments(verb_parser)
        verb_parser.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `personsearch` console command."""
    args = build_parser().parse_args(argv)
    from .logs import setup_logging

    setup_logging(args.verbose, args.quiet)
    try:
        return int(args._module.run(args) or 0)
    except (ValueError, OSError) as err:  # bad input, missing files, a full disk: named, no traceback
        print(f"personsearch {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
