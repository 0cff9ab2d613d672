"""Recipes: each composes data, model, losses and schedule into one method."""

from __future__ import annotations

from typing import Any, Callable

METHODS: dict[str, str] = {
    # method name -> "module:Class"; imported lazily so `personsearch --help` stays fast
    "baseline": "personsearch.methods.baseline:BaselineRecipe",
    "alignedreid": "personsearch.methods.alignedreid:AlignedReidRecipe",
    "nae": "personsearch.methods.person_search:PersonSearchRecipe",
}


def recipe_class(method: str) -> Callable[..., Any]:
    """The recipe class registered under ``method``."""
    import importlib

    if method not in METHODS:
        raise ValueError(f"unknown method '{method}' (known: {', '.join(METHODS)})")
    module, cls = METHODS[method].split(":")
    return getattr(importlib.import_module(module), cls)
