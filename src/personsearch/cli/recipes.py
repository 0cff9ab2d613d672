"""`personsearch recipes`: the recipes shipped with the package (names `personsearch train` takes)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _first_comment(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def run(args: argparse.Namespace) -> int:
    import yaml

    from ..methods import shipped_recipes

    rows = []
    for name, path in shipped_recipes().items():
        text = path.read_text()
        rows.append({"name": name, "method": (yaml.safe_load(text) or {}).get("method", "?"), "file": str(path),
                     "about": _first_comment(text)})
    if args.json:
        print(json.dumps({"recipes": rows}))
        return 0
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['method']:<12} {row['about']}")
    print("\ntrain one: personsearch train NAME [--out RUN] [--set KEY=VALUE ...]; "
          "copy its file to change it: personsearch recipes --json")
    return 0
