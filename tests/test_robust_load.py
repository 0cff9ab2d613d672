"""Robustness: a loopback load test. A real server (uvicorn on 127.0.0.1) answers concurrent queries
while images are added; every answer is checked, then the index's consistency on disk. Bounded in
count (at most 6 x 40 queries, 2 adds of 10 images) and in time (30 s)."""

from __future__ import annotations

import sys
import threading
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serve_fakes import COLOURS, DIM, FakeSearcher, encode, gallery, person_box, scene, serving  # noqa: E402

from personsearch.index import PersonIndex, metadata, vectors  # noqa: E402
from personsearch.serve import create_app  # noqa: E402

pytestmark = pytest.mark.robustness
QUERY_THREADS, MAX_QUERIES, DEADLINE_S = 6, 40, 30.0


def test_concurrent_queries_during_an_add_all_succeed_and_the_index_stays_consistent(tmp_path):
    index_path = gallery(tmp_path)
    app = create_app(index_path, searcher=FakeSearcher(delay=0.03))
    with serving(app) as base:
        start = time.monotonic()
        rng = np.random.default_rng(0)
        new_colours = [tuple(map(tuple, rng.integers(0, 256, (2, 3)).tolist())) for _ in range(20)]
        box = ",".join(f"{v:g}" for v in person_box(160, 120))
        failures: list[str] = []
        answered = [0] * QUERY_THREADS
        adds: list[httpx.Response] = []
        adding = threading.Event()

        def add() -> None:
            with httpx.Client(base_url=base, timeout=DEADLINE_S) as client:
                for batch in (new_colours[:10], new_colours[10:]):
                    files = [("images", (f"n{i}.png", encode(scene(*c)), "image/png")) for i, c in enumerate(batch)]
                    adds.append(client.post("/api/images", files=files, data={"camera": "load"}))
            adding.set()

        def query(worker: int) -> None:
            with httpx.Client(base_url=base, timeout=DEADLINE_S) as client:
                for n in range(MAX_QUERIES):
                    if adding.is_set() or time.monotonic() - start > DEADLINE_S:
                        return
                    person = (worker + n) % len(COLOURS)
                    files = {"image": ("q.png", encode(scene(*COLOURS[person])), "image/png")}
                    response = client.post("/api/query", files=files, data={"box": box, "top_k": "3"})
                    if response.status_code != 200:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                    hit = response.json()["hits"][0]
                    if hit["id"] != person or hit["similarity"] < 0.999:
                        failures.append(f"query {person} got {hit}")
                    answered[worker] += 1

        threads = [threading.Thread(target=add)] + [threading.Thread(target=query, args=(w,))
                                                    for w in range(QUERY_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE_S + 10)
        assert not any(thread.is_alive() for thread in threads)
        with httpx.Client(base_url=base) as client:
            stats = client.get("/api/stats").json()
            found = [client.post("/api/query", files={"image": ("q.png", encode(scene(*c)), "image/png")},
                                 data={"box": box, "top_k": "1"}).json()["hits"][0] for c in new_colours]
    assert failures == [] and sum(answered) >= QUERY_THREADS
    assert [r.status_code for r in adds] == [200, 200] and [r.json()["people"] for r in adds] == [10, 10]
    assert stats["index"]["people"] == len(COLOURS) + 20 and stats["adding"] is False
    assert all(hit["camera"] == "load" and hit["similarity"] > 0.999 for hit in found)
    assert len({hit["id"] for hit in found}) == 20  # each added person found as itself, none twice

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the saved vector file agrees with the database
        reopened = PersonIndex.open(index_path)
    conn = reopened._conns.get()
    n = metadata.count_people(conn)
    assert n == len(reopened) == len(COLOURS) + 20
    assert np.array_equal(vectors.reconstruct_range(reopened._vectors, 0, n), metadata.embeddings(conn, 0, n, DIM))
    assert [row[0] for row in conn.execute("SELECT id FROM people ORDER BY id")] == list(range(n))
    reopened.close()
