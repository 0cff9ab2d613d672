"""Sightings: a query's video hits grouped into passages, in the HTML report and the REST API."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index_fakes import COLOURS, FakeSearcher, scene

from personsearch.index.records import IndexHit
from personsearch.index.sightings import group_sightings, timeline_svg


def _hit(pid: int, source: str, t: float | None, sim: float) -> IndexHit:
    return IndexHit(pid, source, None if t is None else int(t * 10), t, (0, 0, 10, 20), 0.9, sim, "cam")


def test_hits_are_cut_into_passages_where_they_are_more_than_max_gap_apart():
    hits = [_hit(0, "a.avi", 1.0, 0.9), _hit(1, "a.avi", 0.0, 0.5), _hit(2, "a.avi", 2.5, 0.6), _hit(6, "a.avi", 1.0, 0.4),
            _hit(3, "a.avi", 9.0, 0.95), _hit(4, "b.avi", 1.0, 0.7), _hit(5, "still.jpg", None, 0.99)]
    sightings = group_sightings(hits, max_gap=3.0)
    assert [(s.source, s.start, s.end, len(s.hits)) for s in sightings] == [
        ("still.jpg", None, None, 1), ("a.avi", 9.0, 9.0, 1), ("a.avi", 0.0, 2.5, 3), ("b.avi", 1.0, 1.0, 1),
        ("a.avi", 1.0, 1.0, 1)]  # hit 6 shares hit 0's frame: someone else
    passage = sightings[2]
    assert passage.best.person_id == 0 and [h.person_id for h in passage.hits] == [0, 2, 1]  # best first
    assert group_sightings(hits, max_gap=10.0)[1].end == 9.0  # one passage of a.avi then
    with pytest.raises(ValueError, match="max_gap"):
        group_sightings(hits, max_gap=-1)
    assert group_sightings([]) == []


def test_timeline_draws_one_bar_per_timed_sighting_per_source_row():
    hits = [_hit(0, "/x/a.avi", 0.0, 0.9), _hit(1, "/x/a.avi", 20.0, 0.5), _hit(2, "/x/b.avi", 5.0, 0.7),
            _hit(3, "s.jpg", None, 0.8)]
    svg = timeline_svg(group_sightings(hits))
    assert svg.startswith("<svg") and svg.count("<rect") == 3
    assert ">a.avi</text>" in svg and ">b.avi</text>" in svg and "0:20.0" in svg
    assert timeline_svg(group_sightings([hits[3]])) == ""  # still images only: no timeline


def _video(path, fps: float = 10.0) -> None:
    """Person 0 walks by twice (frames 0-19 and 60-79, 4 s apart); person 2 stands there throughout."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 64))
    for i in range(80):
        rgb = scene([0] if i < 20 or i >= 60 else [])
        rgb[16:46, 78:92] = COLOURS[2]
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def test_a_video_query_reports_two_passages_in_the_api_and_the_html_report(tmp_path):
    from personsearch.index import PersonIndex
    from personsearch.index.report import query_report_html
    from personsearch.serve import create_app

    _video(tmp_path / "walk.avi")
    index = PersonIndex.create(tmp_path / "idx", model="fake", dim=FakeSearcher.dim)
    index.add_video(FakeSearcher(), tmp_path / "walk.avi", every=2, camera="door", progress=False)
    query = FakeSearcher().extract_query(scene([0]), np.array([[4, 16, 18, 46]]))[0]
    hits = [h for h in index.search(query, top_k=100) if h.similarity > 0.99]  # person 0 only
    assert len(hits) == 20
    sightings = group_sightings(hits)
    assert [(s.start, s.end, len(s.hits)) for s in sorted(sightings, key=lambda s: s.start)] == [
        (0.0, 1.8, 10), (6.0, 7.8, 10)]
    page = query_report_html(tmp_path / "r.html", scene([0]), (4, 16, 18, 46), "test", hits,
                             load_frame=lambda hit: scene([0])).read_text()
    assert "2 sightings" in page and page.count("<rect") == 2 and "<td>door</td>" in page
    index.close()

    client = TestClient(create_app(tmp_path / "idx", searcher=FakeSearcher()), base_url="http://localhost")
    result = client.get(f"/api/hits/{hits[0].person_id}/similar", params={"top_k": "20"}).json()
    assert {h["id"] for h in result["hits"]} == {h.person_id for h in hits}
    assert [(s["source"], s["camera"], s["start"], s["end"], len(s["hit_ids"])) for s in
            sorted(result["sightings"], key=lambda s: s["start"])] == [("walk.avi", "door", 0.0, 1.8, 10),
                                                                       ("walk.avi", "door", 6.0, 7.8, 10)]


def test_people_far_apart_at_the_same_moment_are_separate_sightings():
    near = IndexHit(0, "a.avi", 10, 1.0, (0, 0, 10, 20), 0.9, 0.9, None)
    walked = IndexHit(1, "a.avi", 15, 1.5, (8, 0, 18, 20), 0.9, 0.8, None)  # 8 px in 0.5 s: the same walk
    far = IndexHit(2, "a.avi", 20, 2.0, (200, 0, 210, 20), 0.9, 0.7, None)  # 200 px (10 heights) in 1 s
    assert [len(s.hits) for s in group_sightings([near, walked, far])] == [2, 1]
