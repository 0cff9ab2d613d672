"""The layering the README states, checked on the source: every import (module level or inside a
function) of every module under src/personsearch, resolved to the subpackage it lands in.

    cli, serve -> index -> pipelines -> methods -> engine / models / losses / data / inference ...
    evaluation, losses, models, engine, data -> only the leaves (distance kernel, utils)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "personsearch"
LEAVES = {"utils", "distance"}
ALLOWED: dict[str, set[str]] = {  # subpackage -> our subpackages it may import
    "utils": set(),
    "distance": {"utils"},
    "data": {"utils"},
    "synthetic": {"data", "utils"},
    "evaluation": {"distance", "utils"},
    "losses": {"distance", "utils"},
    "models": {"utils"},
    "engine": {"utils"},
    "inference": {"data", "utils"},
    "detection": {"utils"},
    "methods": {"engine", "models", "losses", "data", "evaluation", "inference", "distance", "utils"},
    "pipelines": {"methods", "models", "detection", "data", "inference", "utils"},
    "index": {"pipelines", "data", "evaluation", "utils"},
    "serve": {"index", "pipelines", "data", "utils"},
    "cli": {"synthetic", "data", "methods", "engine", "evaluation", "inference", "pipelines", "index", "serve",
            "utils", "detection", "models", "distance"},
}
THIRD_PARTY_OF_EVALUATION = {"numpy", "torch", "scipy", "PIL"}  # PIL: images in the HTML report only


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path`` (relative imports resolved)."""
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                if not node.module and name != "personsearch":  # from . import x: each x may be a module
                    found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
                    continue
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "personsearch":
        return None
    return parts[1] if len(parts) > 1 else ""  # "" = the package root (__version__)


def test_every_subpackage_has_a_rule():
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert subpackages - {"assets"} == set(ALLOWED), "add the new subpackage to ALLOWED (and the README picture)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layering(path):
    own = path.relative_to(PACKAGE).parts
    if len(own) == 1:  # personsearch/__init__.py
        return
    layer = own[0]
    problems = []
    for line, module in _imports(path):
        target = _subpackage(module)
        if target is None or target in ("", layer):
            if target is None and layer == "evaluation":
                top = module.split(".")[0]
                if top not in THIRD_PARTY_OF_EVALUATION and top not in sys.stdlib_module_names:
                    problems.append(f"line {line}: evaluation imports {module}")
            continue
        if target not in ALLOWED[layer]:
            problems.append(f"line {line}: {layer} imports {module}")
    assert not problems, "\n".join(problems)


def test_collectives_live_in_one_place():
    """torch.distributed calls (all_reduce, all_gather, broadcast, barrier) only in utils/collectives.py
    and the engine's process-group setup."""
    allowed = {PACKAGE / "utils" / "collectives.py", PACKAGE / "engine" / "distributed.py"}
    offenders = []
    for path in _modules():
        text = path.read_text()
        if path not in allowed and any(f"dist.{op}" in text for op in ("all_reduce", "all_gather", "broadcast", "barrier")):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders
