"""`personsearch index build|add|stats` and `personsearch query` on fake people; kill-and-resume."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from index_fakes import DIM, FakeSearcher, scene, write_scenes, write_video
from PIL import Image

from personsearch.cli import main
from personsearch.index import PersonIndex

TESTS = Path(__file__).resolve().parent
MODEL = "py:index_fakes:make_searcher"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_build_add_stats_and_query(tmp_path, capsys):
    write_scenes(tmp_path / "images", 10)
    (tmp_path / "images" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    write_video(tmp_path / "cam.avi", 20)
    idx = tmp_path / "idx"
    code, out, _ = _run(capsys, "-q", "index", "build", "--model", MODEL, "--index", idx, "--images", tmp_path / "images",
                        "--camera", "door")
    assert code == 0 and "indexed 10 images (20 people)" in out and "1 skipped" in out
    assert re.search(r"skipped .*truncated\.png: .*corrupt", out)
    code, out, _ = _run(capsys, "-q", "index", "add", "--index", idx, "--video", tmp_path / "cam.avi", "--every", "4")
    assert code == 0 and "indexed 5 frames (10 people)" in out and "holds 30 people" in out
    code, out, _ = _run(capsys, "-q", "index", "add", "--index", idx, "--images", tmp_path / "images")
    assert code == 0 and "indexed 0 images" in out and "10 images already indexed" in out
    code, out, _ = _run(capsys, "-q", "index", "stats", "--index", idx, "--json")
    stats = json.loads(out)
    assert {k: stats[k] for k in ("images", "videos", "frames", "people", "skipped")} == {
        "images": 10, "videos": 1, "frames": 5, "people": 30, "skipped": 1}
    code, out, _ = _run(capsys, "-q", "index", "stats", "--index", idx)
    assert code == 0 and re.search(r"people: 30", out)
    assert stats["vector_memory_bytes"] == 30 * stats["dim"] * 4  # exact: the float32 vectors
    assert re.search(r"vector_memory_bytes: \d+ \(0\.0 MB\)", out)

    Image.fromarray(scene([4, 7])).save(tmp_path / "q.png")  # colour 7 is the right-hand person
    report = tmp_path / "report.html"
    code, out, _ = _run(capsys, "query", "--index", idx, "--image", tmp_path / "q.png", "--box", "26,16,40,46",
                        "--top-k", "3", "--json", "--report", report)
    result = json.loads(out)
    assert code == 0 and result["query"] == "the given box" and len(result["hits"]) == 3
    top = result["hits"][0]
    assert top["similarity"] == pytest.approx(1.0, abs=1e-3) and top["frame"] is None and top["camera"] == "door"
    page = report.read_text()
    assert page.count("data:image/jpeg;base64,") == 2 + 2 * 3 and page.count("similarity <b>") == 3
    code, out, _ = _run(capsys, "query", "--index", idx, "--image", tmp_path / "q.png", "--rerank")
    assert code == 0 and "the highest-scoring of 2 detected people" in out
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+\s+-?\d\.\d{4}", line)]
    assert len(rows) == 10 and rows[0].split()[0] == "1"


def test_clear_errors(tmp_path, capsys):
    write_scenes(tmp_path / "images", 2)
    Image.fromarray(scene([1])).save(tmp_path / "q.png")
    code, _, err = _run(capsys, "query", "--index", tmp_path / "none", "--image", tmp_path / "q.png")
    assert code == 2 and "no such index" in err
    code, _, err = _run(capsys, "-q", "index", "add", "--index", tmp_path / "none", "--images", tmp_path / "images")
    assert code == 2 and "no such index" in err
    empty = PersonIndex.create(tmp_path / "empty", model=MODEL, dim=DIM).path
    code, _, err = _run(capsys, "query", "--index", empty, "--image", tmp_path / "q.png")
    assert code == 2 and "is empty" in err
    code, _, err = _run(capsys, "-q", "index", "build", "--model", MODEL, "--index", tmp_path / "idx", "--images",
                        tmp_path / "nothing")
    assert code == 2 and "nothing" in err
    _run(capsys, "-q", "index", "build", "--model", MODEL, "--index", tmp_path / "idx", "--images", tmp_path / "images")
    for box, message in (("1,2,3", "four numbers"), ("a,b,c,d", "four numbers"),
                         ("10,10,5,20", "zero area"), ("500,500,600,600", "outside the 96x64 image")):
        code, _, err = _run(capsys, "query", "--index", tmp_path / "idx", "--image", tmp_path / "q.png", "--box", box)
        assert code == 2 and message in err, (box, err)
    code, _, err = _run(capsys, "query", "--index", tmp_path / "idx", "--image", tmp_path / "missing.png")
    assert code == 2 and "missing.png" in err
    PersonIndex.create(tmp_path / "dim8", model=MODEL, dim=8)  # built for another embedding size
    code, _, err = _run(capsys, "-q", "index", "add", "--index", tmp_path / "dim8", "--images", tmp_path / "images")
    assert code == 2 and "16-d embeddings but the index holds 8-d" in err
    code, _, err = _run(capsys, "-q", "index", "build", "--index", tmp_path / "idx", "--images", tmp_path / "images")
    assert code == 2 and "built with model py:index_fakes" in err
    code, _, err = _run(capsys, "-q", "index", "build", "--model", tmp_path / "no_run", "--index", tmp_path / "x",
                        "--images", tmp_path / "images")
    assert code == 2 and "no_run" in err and not (tmp_path / "x").exists()
    code, _, err = _run(capsys, "-q", "index", "add", "--index", tmp_path / "idx", "--images", tmp_path / "images", "--every", "2")
    assert code == 2 and "--video only" in err


def _indexed_images(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killed_build_resumes_without_loss_or_duplicates(tmp_path):
    truth = write_scenes(tmp_path / "images", 60)
    idx = tmp_path / "idx"
    cmd = [sys.executable, "-m", "personsearch.cli", "index", "build", "--model", MODEL, "--index", str(idx),
           "--images", str(tmp_path / "images"), "--commit-every", "4"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "INDEX_FAKE_DELAY": "0.05"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while _indexed_images(idx / "index.db") < 12 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate()
    done_before = _indexed_images(idx / "index.db")
    assert 12 <= done_before < 60, f"the build should have been killed mid-way: {stderr.decode()[-2000:]}"
    env["INDEX_FAKE_DELAY"] = "0"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "continuing" in rerun.stderr and f"{done_before} images already indexed" in rerun.stdout
    index = PersonIndex.open(idx)
    assert index.stats()["images"] == 60 and len(index) == 120
    with sqlite3.connect(idx / "index.db") as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT source_id) FROM frames").fetchone() == (60, 60)
        per_image = conn.execute("SELECT COUNT(*) FROM people GROUP BY frame_id").fetchall()
    assert {n for (n,) in per_image} == {2}
    query = FakeSearcher().extract_query(scene([4]), [[4, 16, 18, 46]])[0]
    hits = index.search(query, top_k=12)
    assert {Path(h.source).name for h in hits} == {n for n, p in truth.items() if 4 in p}
