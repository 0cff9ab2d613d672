"""Shared fixtures: one tiny synthetic benchmark per test session."""

from __future__ import annotations

from pathlib import Path

import pytest



@pytest.fixture(scope="session")
def tiny_config():
    from personsearch.synthetic.config import make_config

    return make_config("tiny")


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory, tiny_config) -> Path:
    """The `tiny` preset generated once (2 workers), shared read-only by all tests."""
    from personsearch.synthetic.generate import generate

    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate(out, tiny_config, workers=2, progress=False)
    return out
