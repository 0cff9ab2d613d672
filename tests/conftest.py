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


@pytest.fixture(scope="module")
def two_torch_threads():
    """Long trainings: two threads (1.8x faster than one on 2 cores: 258 vs 461 s for the person
    search learning test), fixed so that the run is the same on any machine.

    Use with ``pytestmark = pytest.mark.usefixtures("two_torch_threads")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small forwards on a shared 2-core box: OpenMP's second thread waits more than it helps.

    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
