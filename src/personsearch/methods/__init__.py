"""Recipes: one folder per method (config, recipe, YAML recipes), composed from shared parts.

    methods/<name>/   recipe.py (a ``personsearch.engine.Recipe`` subclass), config.py when the
                      method adds settings, and its YAML recipes (shipped as package data)

``METHODS`` maps a method name (the ``method:`` key of a YAML recipe) to its class, imported
lazily; ``recipe_file`` finds a shipped recipe by name (``personsearch train nae``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

METHODS: dict[str, str] = {
    # method name -> "module:Class"; imported lazily so `personsearch --help` stays fast
    "baseline": "personsearch.methods.baseline.recipe:BaselineRecipe",
    "alignedreid": "personsearch.methods.alignedreid.recipe:AlignedReidRecipe",
    "nae": "personsearch.methods.nae.recipe:NaeRecipe",
    "seqnet": "personsearch.methods.seqnet.recipe:SeqNetRecipe",
    "detector": "personsearch.methods.detector.recipe:DetectorRecipe",
    "two_step": "personsearch.methods.two_step.recipe:TwoStepRecipe",
    "dkd": "personsearch.methods.dkd.recipe:DkdRecipe",
    "hybrid_pretrain": "personsearch.methods.hybrid.recipe:HybridRecipe",
    "pass": "personsearch.methods.pass_pretrain.recipe:PassRecipe",
    "dino": "personsearch.methods.pass_pretrain.recipe:DinoRecipe",  # PASS without part tokens
    "pass_reid": "personsearch.methods.pass_finetune.recipe:PassReidRecipe",
    "pass_usl": "personsearch.methods.pass_finetune.usl_recipe:PassUslRecipe",
}

METHODS_DIR = Path(__file__).resolve().parent


def recipe_class(method: str) -> Any:
    """The recipe class registered under ``method``."""
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}' (known: {', '.join(METHODS)})")
    module, cls = METHODS[method].split(":")
    return getattr(importlib.import_module(module), cls)


def shipped_recipes() -> dict[str, Path]:
    """Every YAML recipe shipped with the package, by name (its file stem), sorted."""
    found = {p.stem: p for p in sorted(METHODS_DIR.glob("*/*.yaml"))}
    return dict(sorted(found.items()))


def recipe_file(name_or_path: str | Path) -> Path:
    """A YAML recipe: an existing file path, or the name of a shipped recipe (``nae``, ``baseline``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_recipes()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise FileNotFoundError(f"{name_or_path}: neither a recipe file nor a shipped recipe "
                            f"(shipped: {', '.join(shipped)}; `personsearch recipes` lists them)")
