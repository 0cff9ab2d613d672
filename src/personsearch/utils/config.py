"""Configs as YAML recipes over dataclass defaults, with ``key.sub=value`` overrides."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .typed import check_value, field_types

T = TypeVar("T")


def merge_into(obj: T, updates: dict[str, Any], where: str = "") -> T:
    """A copy of dataclass ``obj`` with nested ``updates`` applied.

    Unknown keys and values of the wrong type (see ``utils.typed``: ``1.9`` for an int, ``"false"``
    for a bool) raise ValueError naming the dotted setting; so does a failed check of the dataclass.
    """
    if not isinstance(updates, dict):
        raise ValueError(f"setting '{where.rstrip('.') or 'config'}' must be a mapping, got {updates!r}")
    types = field_types(type(obj))
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        if key not in types:
            raise ValueError(f"unknown setting '{where}{key}' (known: {', '.join(sorted(types))})")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"setting '{where}{key}' must be a mapping, got {value!r}")
            changes[key] = merge_into(current, value, f"{where}{key}.")
        else:
            changes[key] = check_value(value, types[key], f"{where}{key}")
    try:
        return replace(obj, **changes)  # type: ignore[type-var]
    except TypeError as err:  # a __post_init__ comparing values of types it did not expect
        raise ValueError(f"settings under '{where.rstrip('.') or 'config'}': {err}") from err


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["a.b=3", "c=[1, 2]"]`` -> ``{"a": {"b": 3}, "c": [1, 2]}`` (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"override must be KEY=VALUE, got '{pair}'")
        node = nested
        *parents, leaf = key.strip().split(".")
        if not all(part.strip() for part in (*parents, leaf)):
            raise ValueError(f"override '{pair}': empty setting name in '{key}'")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override '{pair}': '{part}' was given a value, so it has no '{key}'")
        try:
            node[leaf] = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError) as err:
            raise ValueError(f"override '{pair}': the value is not valid YAML ({_yaml_problem(err)})") from None
    return nested


def _yaml_problem(err: Exception) -> str:
    """One line about a YAML error (problem and position, no multi-line snippet)."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(problem)


def deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge nested dict ``extra`` into ``base`` (in place) and return it."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (empty file -> {}), with a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {_yaml_problem(err)}") from None
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path}: not a readable YAML text file ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    return data


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples -> plain dicts/lists, for YAML or JSON dumps."""
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
