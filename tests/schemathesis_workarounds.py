"""A workaround for a false positive of schemathesis 4.32.5 (the pinned dev dependency).

Its ``negative_data_rejection`` check asks whether a negative case became valid once serialised: a
multipart string field "mutated" to a number is still a string on the wire (``camera=-22``), which
the server rightly accepts. That question is answered by validating the form as sent, but a form
that also holds file parts carries ``Binary`` values, which its JSON Schema validator refuses; the
answer then defaults to "invalid" and an accepted string is reported as accepted negative data.
Here file parts are validated as the strings of bytes they stand for (same length), nothing else
changes. ``apply()`` fails loudly if the patched function moved (a schemathesis upgrade).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def _as_text(value: Any) -> Any:
    from schemathesis.transport.serialization import Binary

    if isinstance(value, Binary):
        return "\0" * len(value.data)
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    return value


def apply() -> None:
    """Patch ``_form_body_is_valid_as_sent`` once."""
    from schemathesis.specs.openapi import checks

    original = checks._form_body_is_valid_as_sent
    if getattr(original, "patched", False):
        return

    def form_body_is_valid_as_sent(response, case, media_type: str) -> bool:
        if isinstance(case.body, dict):
            case = SimpleNamespace(body={k: _as_text(v) for k, v in case.body.items()}, operation=case.operation)
        return original(response, case, media_type)

    form_body_is_valid_as_sent.patched = True
    checks._form_body_is_valid_as_sent = form_body_is_valid_as_sent
