"""Staged ingest: decoding, detection and embedding overlapped on threads, embeddings batched across
frames, with exactly the results of frame-by-frame ingest, its skips, its errors, and no stray threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from index_fakes import DIM, FakeSearcher, write_scenes, write_video
from torch import nn

from personsearch.index import PersonIndex
from personsearch.index.frames import Frame, image_frames, video_frames
from personsearch.index.ingest import ingest
from personsearch.index.staged import can_stage, on_accelerator, staged_outputs
from personsearch.pipelines import TwoStepSearcher


class BlobDetector:
    """The fake searcher's boxes as a detector; refuses frames listed in ``refuse``; counts its calls."""

    def __init__(self, refuse: tuple[int, ...] = (), delay: float = 0.0) -> None:
        self.refuse, self.delay, self.calls = refuse, delay, 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls in self.refuse:
            raise ValueError("cannot read this frame")
        time.sleep(self.delay)
        out = FakeSearcher()(rgb)
        return np.concatenate([out["boxes"], out["scores"][:, None]], 1)


def _searcher(**detector) -> TwoStepSearcher:
    torch.manual_seed(0)
    embedder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(8, DIM))
    return TwoStepSearcher(BlobDetector(**detector), embedder, crop_size=(32, 16))


def _collect(frames, searcher, staged):
    stored, skipped = [], []

    def commit(results, skips):
        stored.extend(results)
        skipped.extend(skips)
        return sum(len(r.boxes) for r in results)

    report = ingest(frames, searcher, DIM, commit, commit_every=3, staged=staged)
    return report, stored, skipped


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ingest-")]


def test_staged_ingest_gives_the_frame_by_frame_results(tmp_path):
    write_video(tmp_path / "walk.avi", 24)
    searcher = _searcher()
    assert can_stage(searcher) and not can_stage(FakeSearcher())
    assert not on_accelerator(searcher)  # so ingest's default is frame by frame here
    plain = _collect(video_frames(tmp_path / "walk.avi", every=2), searcher, staged=False)
    staged = _collect(video_frames(tmp_path / "walk.avi", every=2), searcher, staged=True)
    assert plain[0].images == staged[0].images == 12 and plain[0].people == staged[0].people >= 24
    for a, b in zip(plain[1], staged[1], strict=True):
        assert (a.frame, a.timestamp) == (b.frame, b.timestamp)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-5)  # batched across frames: same values
    assert not _threads()


def test_unreadable_and_refused_frames_are_skipped_in_order(tmp_path):
    write_scenes(tmp_path / "images", 6)
    (tmp_path / "images" / "scene_0002.png").write_bytes(b"not a png")
    paths = sorted((tmp_path / "images").glob("*.png"))
    report, stored, skipped = _collect(image_frames(paths), _searcher(refuse=(4,)), staged=True)
    assert report.images == 4 and [r.source.rsplit("/", 1)[-1] for r in stored] == [
        "scene_0000.png", "scene_0001.png", "scene_0003.png", "scene_0005.png"]
    reasons = dict(skipped)
    assert len(reasons) == 2 and "cannot read this frame" in next(v for k, v in reasons.items() if "0004" in k)
    assert not _threads()


def test_a_failing_stage_raises_in_the_caller_and_stops_the_others():
    def frames():
        rgb = np.zeros((64, 96, 3), np.uint8)
        rgb[16:46, 4:18] = 200
        for i in range(3):
            yield Frame("cam.avi", "video", i, i / 10, rgb.copy())
        raise RuntimeError("the camera stream broke")

    with pytest.raises(RuntimeError, match="stream broke"):
        _collect(frames(), _searcher(), staged=True)
    assert not _threads()
    with pytest.raises(ValueError, match="no separate detect"):
        _collect(frames(), FakeSearcher(), staged=True)


def test_leaving_early_stops_the_stages(tmp_path):
    write_video(tmp_path / "walk.avi", 40)
    outputs = staged_outputs(video_frames(tmp_path / "walk.avi"), _searcher(delay=0.01))
    frame, out = next(outputs)
    assert frame.frame == 0 and len(out["boxes"]) == len(out["embeddings"]) >= 1
    outputs.close()
    assert not _threads()


def test_an_index_built_staged_stores_what_one_built_frame_by_frame_does(tmp_path):
    write_video(tmp_path / "walk.avi", 20)
    stored = {}
    for staged in (False, True):
        index = PersonIndex.create(tmp_path / f"idx{staged}", model="py:index_fakes:make_searcher", dim=DIM)
        index.add_video(_searcher(), tmp_path / "walk.avi", every=2, progress=False, staged=staged)
        stored[staged] = [(index.hit(i).frame, index.hit(i).box, index.embedding(i)) for i in range(len(index))]
    assert len(stored[True]) == len(stored[False]) >= 20
    for (frame_a, box_a, emb_a), (frame_b, box_b, emb_b) in zip(stored[True], stored[False]):
        assert (frame_a, box_a) == (frame_b, box_b) and np.allclose(emb_a, emb_b, atol=1e-5)
