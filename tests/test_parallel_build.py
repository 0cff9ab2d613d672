"""Scale-out indexing: many videos and image folders, N worker processes or Ray tasks, merged into one
index with the same people and ids whatever the worker count; killed workers and coordinators lose
nothing and duplicate nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from index_fakes import DIM, write_scenes, write_video

from personsearch.index import PersonIndex, parallel, units

TESTS = Path(__file__).parent
MODEL = "py:index_fakes:make_searcher"


@pytest.fixture()
def inputs(tmp_path, monkeypatch) -> dict:
    """Two videos and a folder of images; units small enough that each source makes several."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(units, "FRAMES_PER_UNIT", 4)
    monkeypatch.setattr(units, "IMAGES_PER_UNIT", 5)
    write_video(tmp_path / "cam_b.avi", 18)
    write_video(tmp_path / "cam_a.avi", 13)
    write_scenes(tmp_path / "images", 12)
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    return {"videos": [tmp_path / "cam_b.avi", tmp_path / "cam_a.avi"],
            "images": sorted((tmp_path / "images").glob("*.png"))}


def _content(folder: Path) -> list[tuple]:
    """Every person by id: where they were seen, and their embedding."""
    index = PersonIndex.open(folder)
    out = [(Path(h.source).name, h.frame, h.box, tuple(np.round(index.embedding(i), 6)))
           for i in range(len(index)) for h in [index.hit(i)]]
    index.close()
    return out


def _build(folder: Path, engine, inputs: dict, model: str = MODEL):
    index = PersonIndex.create(folder, model=model, dim=DIM)
    report = parallel.add_parallel(index, engine, inputs["videos"], inputs["images"], every=2, progress=False)
    index.close()
    return report


def test_worker_count_changes_nothing_but_speed(tmp_path, inputs):
    one = _build(tmp_path / "one", parallel.InlineEngine(MODEL, 0.5, DIM), inputs)
    two = _build(tmp_path / "two", parallel.ProcessEngine(MODEL, 0.5, DIM, workers=2), inputs)
    assert one.images == two.images == 7 + 9 + 12 and one.people == two.people > 28
    assert [Path(p).name for p, _ in two.skipped] == ["broken.png"]
    assert _content(tmp_path / "one") == _content(tmp_path / "two")
    videos = [h[:2] for h in _content(tmp_path / "two") if h[1] is not None]
    assert videos[0] == ("cam_a.avi", 0) and videos == sorted(videos)  # sources in sorted order, frames in order
    index = PersonIndex.open(tmp_path / "two")  # the videos' passes are recorded: a rerun does nothing
    again = parallel.add_parallel(index, parallel.ProcessEngine(MODEL, 0.5, DIM, workers=2), inputs["videos"],
                                  inputs["images"], every=2, progress=False)
    assert (again.images, again.people, again.already) == (0, 0, 7 + 9 + 12)


def test_a_killed_worker_s_unit_is_redone_once(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("INDEX_FAKE_DIE_ONCE", str(tmp_path / "died"))
    _build(tmp_path / "one", parallel.InlineEngine(MODEL, 0.5, DIM), inputs)
    _build(tmp_path / "two", parallel.ProcessEngine("py:index_fakes:make_dying_searcher", 0.5, DIM, workers=2),
           inputs, model="py:index_fakes:make_dying_searcher")
    assert (tmp_path / "died").read_text() == "died once"  # a worker did die
    assert _content(tmp_path / "one") == _content(tmp_path / "two")  # nothing lost, nothing twice


class _Interrupted(Exception):
    pass


class _StopsAfter:
    """An engine whose coordinator is 'killed' after ``count`` units were handed over."""

    def __init__(self, engine, count: int) -> None:
        self.engine, self.count = engine, count

    def map_ordered(self, todo):
        for i, result in enumerate(self.engine.map_ordered(todo)):
            if i == self.count:
                raise _Interrupted()
            yield result


def test_a_killed_build_resumes_where_it_stopped(tmp_path, inputs):
    engine = parallel.InlineEngine(MODEL, 0.5, DIM)
    _build(tmp_path / "whole", engine, inputs)
    with pytest.raises(_Interrupted):
        _build(tmp_path / "resumed", _StopsAfter(engine, 3), inputs)
    index = PersonIndex.open(tmp_path / "resumed")
    assert 0 < len(index) < len(_content(tmp_path / "whole"))  # three units committed
    index.close()
    index = PersonIndex.open(tmp_path / "resumed")
    parallel.add_parallel(index, parallel.ProcessEngine(MODEL, 0.5, DIM, workers=2), inputs["videos"],
                          inputs["images"], every=2, progress=False)
    index.close()
    assert _content(tmp_path / "resumed") == _content(tmp_path / "whole")


@pytest.mark.slow
def test_a_local_ray_cluster_of_two_workers_builds_the_same_index(tmp_path, inputs):
    ray = pytest.importorskip("ray", reason="Ray is a dev dependency: pip install -e '.[dev]'")
    _build(tmp_path / "one", parallel.InlineEngine(MODEL, 0.5, DIM), inputs)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
    try:
        engine = parallel.RayEngine(MODEL, 0.5, DIM)
        assert engine.window == 4
        _build(tmp_path / "ray", engine, inputs)
    finally:
        ray.shutdown()
    assert _content(tmp_path / "one") == _content(tmp_path / "ray")


def test_the_cli_builds_one_index_from_many_inputs_with_workers(tmp_path, inputs, capsys):
    import json

    from personsearch.cli import main

    sources = ["--video", *map(str, inputs["videos"]), "--images", str(inputs["images"][0].parent), "--every", "2"]
    for name, workers in (("w1", "1"), ("w2", "2")):
        code = main(["-q", "index", "build", "--model", MODEL, "--index", str(tmp_path / name), *sources,
                     "--workers", workers, "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 0 and out["indexed"] == 7 + 9 + 12 and out["unit"] == "images and frames", out
    assert _content(tmp_path / "w1") == _content(tmp_path / "w2")
    assert main(["index", "build", "--model", MODEL, "--index", str(tmp_path / "w3"), "--workers", "0",
                 "--video", str(inputs["videos"][0])]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
