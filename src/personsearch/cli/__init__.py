"""`personsearch <verb>`: one small module per verb; heavy imports happen only when a verb runs."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

# verb -> module in this package exposing add_arguments(parser) and run(args) -> int
VERBS = {
    "synth": ("synth", "generate the synthetic benchmark in the official dataset formats"),
    "datasets": ("datasets", "inspect datasets on disk (check a folder in a given format)"),
    "train": ("train", "train a recipe (YAML) with the shared engine"),
    "eval": ("evaluate", "evaluate a trained run: metrics table + JSON"),
    "extract": ("extract", "embed every image of a folder with a trained run"),
    "demo": ("demo", "the main job on the embedded synthetic benchmark"),
    "index": ("index", "build, extend or inspect a searchable index of the people in images and videos"),
    "query": ("query", "find a person (query image + box) in an index: ranked hits, JSON, HTML report"),
    "serve": ("serve", "REST API and web page over a gallery index"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with a sub-parser per verb."""
    parser = argparse.ArgumentParser(prog="personsearch", description="Person re-identification and person search.")
    parser.add_argument("--version", action="version", version=f"personsearch {__version__}")
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
    try:
        return int(args._module.run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"personsearch {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
