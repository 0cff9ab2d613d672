"""The REST API's contract: schemathesis drives every route from the OpenAPI document (examples,
coverage and fuzzing phases; positive and negative cases) and runs all its checks on every answer,
in-process, over a small index with the fake searcher. Bounded: a few dozen cases a route."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
schemathesis = pytest.importorskip("schemathesis")  # a dev dependency (pyproject.toml)
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import CHECKS  # noqa: E402

import api_strategies  # noqa: E402
from serve_fakes import COLOURS, DIM, FakeSearcher, scene  # noqa: E402

from personsearch.index import PersonIndex  # noqa: E402
from personsearch.serve import create_app  # noqa: E402

HOST = "http://localhost"  # a name the server answers to (the test client's default, testserver, is not)
EXAMPLES = 25


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The schema of an app over a 5-person gallery, loaded from the app's own /openapi.json."""
    folder = tmp_path_factory.mktemp("contract")
    paths = []
    for i, (left, right) in enumerate(COLOURS):
        paths.append(folder / f"scene{i}.png")
        Image.fromarray(scene(left, right)).save(paths[-1])
    index = PersonIndex.create(folder / "index", model="fake", dim=DIM)
    index.add_images(FakeSearcher(), paths, progress=False)
    index.close()
    api_strategies.register()
    app = create_app(folder / "index", searcher=FakeSearcher(), max_upload_bytes=4 * 2**20)
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers={"Host": "localhost"})


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_keeps_the_contract(case):
    case.call_and_validate(base_url=HOST, checks=CHECKS.get_all())
