"""The index with the real pretrained searcher (SSDLite + ImageNet MobileNetV2) on OpenCV's vtest.avi."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from system_files import VTEST, require_vtest


@pytest.fixture(autouse=True)
def _video_present():
    require_vtest()


def _iou(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))


def test_a_person_from_one_frame_is_found_in_nearby_frames(tmp_path, capsys):
    from personsearch.cli import main
    from personsearch.index import PersonIndex, embedding_dim, query_person
    from personsearch.index.frames import read_video_frame
    from personsearch.pipelines import load_searcher

    searcher = load_searcher("pretrained")
    index = PersonIndex.create(tmp_path / "idx", model="pretrained", dim=embedding_dim(searcher))
    report = index.add_video(searcher, VTEST, every=4, start=100, stop=140, camera="hall", progress=False)
    assert report.images == 10 and report.people >= 20  # frames 100, 104, ..., 136; several walkers each
    assert index.stats()["frames"] == 10

    query_frame = read_video_frame(VTEST, 110)  # not indexed: between 108 and 112
    person = query_person(searcher, query_frame)
    assert person.detected >= 2 and "highest-scoring" in person.how
    hits = index.search(person.embedding, top_k=3)
    same = [h for h in hits if abs(h.frame - 110) <= 4 and _iou(h.box, person.box) > 0.5]
    assert same, f"the query person ({person.box}) is not in the top 3: {hits}"
    assert all(h.camera == "hall" and h.timestamp == pytest.approx(h.frame / 10.0) for h in hits)  # 10 fps

    Image.fromarray(query_frame).save(tmp_path / "q.jpg", quality=95)  # the same through the CLI, with a box
    box = ",".join(f"{v:.0f}" for v in person.box)
    code = main(["query", "--index", str(tmp_path / "idx"), "--image", str(tmp_path / "q.jpg"), "--box", box,
                 "--top-k", "3", "--json", "--report", str(tmp_path / "r.html")])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["query"] == "the given box"
    assert any(abs(h["frame"] - 110) <= 4 and _iou(h["box"], person.box) > 0.5 for h in result["hits"])
    assert (tmp_path / "r.html").read_text().count("data:image/jpeg") == 8
