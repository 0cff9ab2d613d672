"""Adapting the index from the REST API: the background job's lifecycle, with the adaptation itself
replaced by a controllable fake (the real one on real video runs in test_serve_browser.py)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from serve_fakes import FakeSearcher, encode, gallery, scene  # noqa: E402

from personsearch.index.adapt import AdaptReport  # noqa: E402
from personsearch.serve import create_app  # noqa: E402
from personsearch.serve.adaptation import without_folders  # noqa: E402
from personsearch.serve.service import SearchService  # noqa: E402


@pytest.fixture()
def client(tmp_path) -> TestClient:
    return TestClient(create_app(gallery(tmp_path), searcher=FakeSearcher()), base_url="http://localhost")


class FakeAdaptation:
    """Stands in for ``adapt_index``: reports progress step by step as the test releases it."""

    def __init__(self, steps: int = 3, fail: str | None = None) -> None:
        self.steps, self.fail = steps, fail
        self.release = threading.Semaphore(0)
        self.calls: list[dict] = []

    def __call__(self, path, cfg, max_crops, merge, progress, on_progress) -> AdaptReport:
        self.calls.append({"path": Path(path), "steps": cfg.steps, "lr": cfg.lr, "seed": cfg.seed,
                           "max_crops": max_crops, "merge": merge})
        on_progress("crops", 1, 1)
        for step in range(1, self.steps + 1):
            assert self.release.acquire(timeout=20), "the test never released the fake"
            on_progress("training", step, self.steps)
        if self.fail:
            raise ValueError(self.fail)
        return AdaptReport(5, 5, 40, self.steps, 0.5, 0.2, 12, 1.5, "pretrained@weights=adapt/embedder-x.pt")


def _wait(client: TestClient, until, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/api/adapt").json()
        if until(status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"adaptation status never reached the expected state: {status}")


@pytest.fixture()
def fake(monkeypatch) -> FakeAdaptation:
    adaptation = FakeAdaptation()
    monkeypatch.setattr("personsearch.index.adapt.adapt_index", adaptation)
    monkeypatch.setattr(SearchService, "_check_adaptable", lambda self: None)  # the fake gallery is stills
    return adaptation


def test_an_index_that_cannot_be_adapted_is_refused_with_the_reason(client):
    assert client.get("/api/adapt").json()["state"] == "idle"
    answer = client.post("/api/adapt")
    assert answer.status_code == 409 and "built with model fake" in answer.json()["detail"]
    assert "/" not in answer.json()["detail"].split("built")[0].strip(": ")  # the index's folder is not shown
    assert client.get("/api/adapt").json()["state"] == "idle"
    assert client.delete("/api/adapt").status_code == 409  # nothing to stop


def test_settings_are_checked_and_named(client):
    for field, value in [("steps", "0"), ("lr", "0"), ("max_crops", "1"), ("merge", "2"), ("seed", "-1")]:
        answer = client.post("/api/adapt", data={field: value})
        assert answer.status_code == 422 and answer.json()["detail"].startswith(field), answer.text
    answer = client.post("/api/adapt", data={"epochs": "3"})
    assert answer.status_code == 422 and "'epochs'" in answer.json()["detail"]


def test_an_adaptation_runs_in_the_background_reports_progress_and_finishes(client, fake):
    started = client.post("/api/adapt", data={"steps": "3", "lr": "0.001", "max_crops": "64", "seed": "7"})
    assert started.status_code == 202 and started.json()["state"] == "running"
    assert started.json()["settings"] == {"steps": 3, "lr": 0.001, "max_crops": 64, "merge": 0.0, "seed": 7}
    assert client.post("/api/adapt").status_code == 409  # one at a time
    added = client.post("/api/images", files={"images": ("a.png", encode(scene((255, 0, 0), (0, 0, 255))),
                                                         "image/png")})
    assert added.status_code == 409 and "being adapted" in added.json()["detail"]
    assert client.get("/api/stats").status_code == 200  # the index keeps answering
    fake.release.release()
    status = _wait(client, lambda s: s["stage"] == "training" and s["done"] == 1)
    assert status["total"] == 3 and status["state"] == "running"
    fake.release.release(2)
    done = _wait(client, lambda s: s["state"] != "running")
    assert done["state"] == "done" and done["report"]["steps"] == 3 and done["finished"] >= done["started"]
    assert done["report"]["model"].endswith("adapt/embedder-x.pt") and done["error"] is None
    assert fake.calls == [{"path": fake.calls[0]["path"], "steps": 3, "lr": 0.001, "seed": 7, "max_crops": 64,
                           "merge": 0.0}]


def test_a_running_adaptation_can_be_stopped_and_failures_are_reported(client, fake):
    assert client.post("/api/adapt", data={"steps": "3"}).status_code == 202
    fake.release.release()
    _wait(client, lambda s: s["done"] == 1 and s["stage"] == "training")
    assert client.delete("/api/adapt").status_code == 202
    fake.release.release()
    stopped = _wait(client, lambda s: s["state"] != "running")
    assert stopped["state"] == "stopped" and "resume" in stopped["error"] and stopped["report"] is None
    fake.fail = "/srv/private/footage/cam1.avi: indexed video is no longer on disk"
    assert client.post("/api/adapt").status_code == 202
    fake.release.release(3)
    failed = _wait(client, lambda s: s["state"] != "running")
    assert failed["state"] == "failed" and failed["error"] == "cam1.avi: indexed video is no longer on disk"


def test_error_messages_lose_the_servers_folders():
    assert without_folders("/a/b/idx: built with model /runs/x/model.pt; see ./rel/path") == \
        "idx: built with model model.pt; see ./rel/path"


def test_a_wrong_method_is_told_every_method_of_the_path(client):
    answer = client.request("PUT", "/api/adapt")
    assert answer.status_code == 405 and answer.headers["allow"] == "DELETE, GET, POST"
    assert "PUT" in answer.json()["detail"]


def test_the_api_s_defaults_are_the_cli_s():
    import argparse

    from personsearch.cli import adapt as cli_adapt
    from personsearch.pipelines import FinetuneConfig
    from personsearch.serve.adaptation import AdaptSettings

    parser = argparse.ArgumentParser()
    cli_adapt.add_arguments(parser)
    args = parser.parse_args(["--index", "x"])
    api = AdaptSettings()
    assert (api.steps, api.lr, api.max_crops, api.merge, api.seed) == (args.steps, args.lr, args.max_crops,
                                                                       args.merge, args.seed)
    assert (api.steps, api.lr) == (FinetuneConfig().steps, FinetuneConfig().lr)
