"""Unsupervised adaptation: tracklets, the resumable fine-tune, and `personsearch adapt` on real video."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from system_files import VTEST, require_vtest  # noqa: E402

from personsearch.index.tracklets import link_tracklets, merge_tracklets
from personsearch.pipelines import FinetuneConfig, finetune_on_tracklets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_footage  # noqa: E402


def _box(x: float, y: float = 100.0, h: float = 80.0) -> list[float]:
    return [x, y, x + h / 2, y + h]


def test_tracklets_follow_walkers_and_stop_where_people_cross():
    # A walks right from 0, B walks left from 400 (they meet at frame 10, x = 200); C stands far away
    frames = [np.array([_box(20 * f), _box(400 - 20 * f), _box(700)]) for f in range(21)]
    tracks = link_tracklets(frames)
    for t in tracks:  # never a swap: a tracklet keeps one walker's direction (or C's stillness)
        steps = {float(np.sign(frames[f2][b2][0] - frames[f1][b1][0])) for (f1, b1), (f2, b2) in zip(t, t[1:])}
        assert len(steps) == 1, [frames[f][b][0] for f, b in t]
    lengths = sorted(len(t) for t in tracks)
    assert lengths[-1] == 21 and lengths.count(21) == 1  # C, followed all along
    assert sum(lengths[:-1]) >= 28 and all(n >= 4 for n in lengths)  # the walkers, apart from the meeting
    assert link_tracklets([np.zeros((0, 4))] * 5) == []


def test_pseudo_identities_merge_alike_tracklets_never_two_seen_at_once():
    walk = np.array([1.0, 0.0, 0.0])
    means = np.array([walk, [0.99, 0.14, 0.0], [0.0, 1.0, 0.0], [0.98, 0.2, 0.0], walk])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    spans = [(0, 0, 10), (0, 20, 30), (0, 0, 30), (0, 5, 25), (1, 5, 25)]  # (source, first, last frame)
    labels = merge_tracklets(means, spans, max_distance=0.1)
    assert labels[0] == labels[1]  # the same look on two walks: one person
    assert labels[2] not in (labels[0], labels[3])  # another look
    assert labels[3] != labels[0] and labels[3] != labels[1]  # alike, but on screen with both of them
    assert labels[4] == labels[0]  # another camera at the same time is no conflict
    assert list(merge_tracklets(means, spans, max_distance=0.0)) == [0, 1, 2, 3, 4]


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1))
        self.flip = True

    def forward(self, x):
        return nn.functional.normalize(self.features(x).mean((2, 3)), dim=1)


def test_finetune_pulls_tracklets_together_and_resumes_exactly(tmp_path):
    gen = torch.Generator().manual_seed(1)
    centres = torch.randn(4, 3, 1, 1, generator=gen)
    crops = (centres.repeat_interleave(6, 0) + 0.8 * torch.randn(24, 3, 8, 4, generator=gen)).half()
    labels = np.repeat(np.arange(4), 6)
    cfg = FinetuneConfig(steps=8, lr=1e-2, ids_per_batch=4, crops_per_id=3, train_from=0, checkpoint_every=2)
    whole = _Tiny()
    losses = finetune_on_tracklets(whole, crops, labels, cfg, progress=False)
    assert np.mean(losses[-3:]) < losses[0] and whole.flip and not whole.training
    half = _Tiny()
    first = finetune_on_tracklets(half, crops, labels, FinetuneConfig(**{**cfg.__dict__, "steps": 4}),
                                  tmp_path / "state.pt", progress=False)
    resumed = finetune_on_tracklets(_Tiny(), crops, labels, cfg, tmp_path / "state.pt", progress=False)
    assert resumed[:4] == first and np.allclose(resumed, losses, atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 tracklets"):
        finetune_on_tracklets(_Tiny(), crops, np.zeros(24, int), cfg, progress=False)


def test_adapt_refuses_indexes_it_cannot_tune(tmp_path, capsys):
    from index_fakes import write_scenes

    from personsearch.cli import main

    write_scenes(tmp_path / "imgs", 3)
    sys.path.insert(0, str(Path(__file__).parent))
    assert main(["index", "build", "--model", "py:index_fakes:make_searcher", "--index", str(tmp_path / "idx"),
                 "--images", str(tmp_path / "imgs")]) == 0
    capsys.readouterr()
    assert main(["adapt", "--index", str(tmp_path / "idx")]) == 2
    assert "built with model py:index_fakes:make_searcher" in capsys.readouterr().err
    assert main(["adapt", "--index", str(tmp_path / "nowhere")]) == 2
    assert "no such index" in capsys.readouterr().err


def _margin(searcher, frames, people) -> float:
    """Mean cosine of a person's crops 2+ s apart minus mean cosine of different people in one frame."""
    same, other = [], []
    for person in people.values():
        fs = [f for f in person["boxes"] if f in frames]
        if len(fs) < 2:
            continue
        a, b = fs[0], fs[-1]
        if b - a >= 20:
            ea = searcher.extract_query(frames[a], person["boxes"][a][None])[0]
            eb = searcher.extract_query(frames[b], person["boxes"][b][None])[0]
            same.append(float(ea @ eb))
    for f, rgb in frames.items():
        boxes = [p["boxes"][f] for p in people.values() if f in p["boxes"]]
        if len(boxes) >= 2:
            emb = searcher.extract_query(rgb, np.array(boxes))
            sims = emb @ emb.T
            other += list(sims[np.triu_indices(len(boxes), 1)])
    return float(np.mean(same) - np.mean(other))


@pytest.mark.slow
def test_adapting_on_a_few_vtest_frames_raises_the_same_person_margin(tmp_path, capsys, monkeypatch):
    require_vtest()
    from personsearch.cli import main
    from personsearch.index import PersonIndex
    from personsearch.index.frames import video_frames
    from personsearch.pipelines import load_searcher

    torch.set_num_threads(2)
    assert main(["-q", "index", "build", "--index", str(tmp_path / "idx"), "--video", str(VTEST), "--every", "5",
                 "--start", "200", "--stop", "500"]) == 0
    before = PersonIndex.open(tmp_path / "idx")
    old_model, people_count = before.model, len(before)
    query_frame, query_box = before.frame_image(0), before.hit(0).box
    before.close()
    from fastapi.testclient import TestClient

    from personsearch.serve import create_app

    client = TestClient(create_app(tmp_path / "idx"), base_url="http://localhost")  # serving while adapting
    monkeypatch.chdir(tmp_path)  # a relative --index, as users type it
    assert main(["-q", "adapt", "--index", "idx", "--steps", "10", "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["tracklets"] >= 4 and report["identities"] == report["tracklets"] and report["people"] == people_count and report["last_loss"] < report["first_loss"]
    after = PersonIndex.open(tmp_path / "idx")
    assert after.model == report["model"] != old_model and "weights=adapt/embedder-" in after.model  # inside
    assert len(after) == people_count and not list((tmp_path / "idx" / "adapt").glob("emb_*"))
    hits = after.search(after.embedding(0), top_k=1)
    assert hits[0].person_id == 0 and hits[0].similarity == pytest.approx(1.0, abs=1e-4)  # vectors rebuilt
    after.close()
    import io

    from PIL import Image

    jpeg = io.BytesIO()
    Image.fromarray(query_frame).save(jpeg, format="PNG")
    served = client.post("/api/query", files={"image": ("q.png", jpeg.getvalue(), "image/png")},
                         data={"box": ",".join(f"{v:.3f}" for v in query_box), "top_k": "1"}).json()
    assert served["hits"][0]["id"] == 0 and served["hits"][0]["similarity"] > 0.999  # the server follows the model
    people = real_footage.load_people()
    frames = {f.frame: f.rgb for f in video_frames(VTEST, start=200, stop=500, every=10)}
    (tmp_path / "idx").rename(tmp_path / "moved")  # the index carries its tuned weights along
    moved = PersonIndex.open(tmp_path / "moved")
    adapted = moved.load_searcher()
    moved.close()
    gained = _margin(adapted, frames, people) - _margin(load_searcher(old_model), frames, people)
    assert gained > 0.03, gained
