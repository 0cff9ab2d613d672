"""Strict checks of config values against a dataclass field's annotation: a wrong type is an error
naming the dotted setting, never a coercion (``epochs: 1.9`` is refused, not read as 1; ``"false"``
given as a quoted string to a bool is refused, not read as True).

Accepted widenings, none of which loses information: an int for a float field, a list for a tuple
field (and a single value for a variable-length tuple, ``--set eval.gallery_sizes=50``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import lru_cache
from typing import Any


class ConfigTypeError(ValueError):
    """A setting whose value has the wrong type; the message names the dotted setting."""


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a text", type(None): "null"}


def _type_name(hint: Any) -> str:
    if hint in _NAMES:
        return _NAMES[hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return f"a list ({str(hint).replace('typing.', '')})"
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _refuse(where: str, value: Any, hint: Any, extra: str = "") -> ConfigTypeError:
    return ConfigTypeError(f"setting '{where}' must be {_type_name(hint)}, got {value!r} "
                           f"({type(value).__name__}){extra}")


def _check_scalar(value: Any, hint: type, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        hint_text = " (write true or false, unquoted)" if isinstance(value, str) else ""
        raise _refuse(where, value, hint, hint_text)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _refuse(where, value, hint, " (a whole number, no decimals)" if isinstance(value, float) else "")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and math.isnan(value):
                raise ConfigTypeError(f"setting '{where}' must be a number, got NaN")
            return float(value)
        raise _refuse(where, value, hint)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _refuse(where, value, hint, " (quote it to give a text value)")
    if isinstance(value, hint):
        return value
    raise _refuse(where, value, hint)


def _check_tuple(value: Any, hint: Any, where: str) -> tuple:
    args = typing.get_args(hint)
    if not isinstance(value, (list, tuple)):
        if len(args) == 2 and args[1] is Ellipsis and not isinstance(value, dict):
            value = (value,)  # a single value for a variable-length tuple
        else:
            raise _refuse(where, value, hint, " (a list)")
    if not args:
        return tuple(value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigTypeError(f"setting '{where}' must be a list of {len(args)} values, got {len(value)}: {value!r}")
    return tuple(check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))


def check_value(value: Any, hint: Any, where: str) -> Any:
    """``value`` if it has the type ``hint`` (or a lossless widening of it), else ConfigTypeError."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise _refuse(where, value, hint)
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return check_value(value, option, where)
            except ConfigTypeError as err:
                errors.append(err)
        raise _refuse(where, value, hint) from errors[0] if errors else None
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise ConfigTypeError(f"setting '{where}' must be one of {typing.get_args(hint)}, got {value!r}")
    if origin is tuple or hint is tuple:
        return _check_tuple(value, hint, where)
    if origin in (list, dict):
        if not isinstance(value, origin):
            raise _refuse(where, value, hint)
        return value
    if value is None:
        raise _refuse(where, value, hint, " (this setting cannot be null)")
    if isinstance(hint, type):
        return _check_scalar(value, hint, where)
    return value


@lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations (``from __future__ import annotations`` strings evaluated) of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}
