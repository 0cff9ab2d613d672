"""The REST API keeps its OpenAPI contract: schemathesis (a dev dependency) generates requests from
the document the server publishes and runs all its checks (``--checks all``: status codes, content
types, response schemas, schema-valid requests accepted, schema-violating ones refused, method and
header handling) on every route, through every phase (coverage, fuzzing, stateful).

The server is the real app over a small index with the fake searcher, on loopback. What JSON Schema
cannot say (what an image of a person is, a box inside it) comes from ``api_strategies``, loaded as
schemathesis hooks. Bounded: a fixed number of examples per route and a time limit. Seeded, so CI
reruns the same requests; set ``SCHEMATHESIS_SEED`` to explore others (a failure prints its seed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serve_fakes import FakeSearcher, gallery, serving  # noqa: E402

from personsearch.serve import create_app  # noqa: E402

TESTS = Path(__file__).parent
EXAMPLES, MAX_TIME_S = 25, 45
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261207"))


def _schemathesis() -> list[str]:
    pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency: pip install -e '.[dev]'")
    return [sys.executable, "-m", "schemathesis.cli"]


@pytest.mark.slow
def test_every_route_keeps_the_openapi_contract(tmp_path):
    command = _schemathesis()
    app = create_app(gallery(tmp_path), searcher=FakeSearcher(), max_upload_bytes=4 * 2**20)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "api_strategies", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    with serving(app) as base:
        run = subprocess.run([*command, "run", f"{base}/openapi.json", "--checks", "all",
                              "--max-examples", str(EXAMPLES), "--max-time", str(MAX_TIME_S), "--seed", str(SEED), "--no-color"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=MAX_TIME_S + 60)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20_000:]
    assert "11 selected / 11 total" in report and "No issues found" in report, report[-5_000:]
