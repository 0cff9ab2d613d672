"""Configs as YAML recipes over dataclass defaults, with ``key.sub=value`` overrides."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def merge_into(obj: T, updates: dict[str, Any], where: str = "") -> T:
    """A copy of dataclass ``obj`` with nested ``updates`` applied; unknown keys raise ValueError."""
    known = {f.name for f in fields(obj)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in (updates or {}).items():
        if key not in known:
            raise ValueError(f"unknown setting '{where}{key}' (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"setting '{where}{key}' must be a mapping, got {value!r}")
            changes[key] = merge_into(current, value, f"{where}{key}.")
        elif isinstance(current, tuple) and value is not None:
            changes[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        elif isinstance(current, (bool, int, float, str)) and value is not None and not isinstance(current, bool):
            try:
                changes[key] = type(current)(value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"setting '{where}{key}': cannot read {value!r} as {type(current).__name__}") from err
        else:
            changes[key] = value
    return replace(obj, **changes)  # type: ignore[type-var]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["a.b=3", "c=[1, 2]"]`` -> ``{"a": {"b": 3}, "c": [1, 2]}`` (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"override must be KEY=VALUE, got '{pair}'")
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return nested


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
    data = yaml.safe_load(path.read_text()) or {}
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
