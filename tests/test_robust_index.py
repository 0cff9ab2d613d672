"""Robustness: the index and the files it is built from. Damage is detected and repaired, a full disk
is a named error that loses nothing committed, one bad source never blocks the rest."""

from __future__ import annotations

import errno
import sqlite3
import warnings
from pathlib import Path

import faiss
import numpy as np
import pytest
from index_fakes import DIM, FakeSearcher, scene, write_scenes, write_video
from PIL import Image

from personsearch.cli import main
from personsearch.index import IndexWriteError, PersonIndex, metadata, vectors
from personsearch.index.writing import VECTORS_NAME

pytestmark = pytest.mark.robustness
MODEL = "py:index_fakes:make_searcher"


def _index(tmp_path: Path, images: int = 12) -> tuple[PersonIndex, list[Path]]:
    write_scenes(tmp_path / "images", images)
    paths = sorted((tmp_path / "images").glob("*.png"))
    index = PersonIndex.create(tmp_path / "idx", model="fake", dim=DIM)
    index.add_images(FakeSearcher(), paths, progress=False)
    return index, paths


def _consistent(path: Path) -> int:
    """Open the index with warnings as errors; its vectors equal the database's; returns its size."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = PersonIndex.open(path)
    conn = sqlite3.connect(str(path / "index.db"))
    n = metadata.count_people(conn)
    assert len(index) == n
    assert np.array_equal(vectors.reconstruct_range(index._vectors, 0, n), metadata.embeddings(conn, 0, n, DIM))
    ids = [row[0] for row in conn.execute("SELECT id FROM people ORDER BY id")]
    assert ids == list(range(n))  # dense, nothing duplicated
    frames = conn.execute("SELECT COUNT(*), COUNT(DISTINCT source_id || '/' || frame) FROM frames").fetchone()
    assert frames[0] == frames[1]
    conn.close()
    index.close()
    return n


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_a_vector_file_damaged_inside_is_detected_and_rebuilt(tmp_path, kind):
    index, _ = _index(tmp_path)
    n = len(index)
    stored = vectors.reconstruct_range(index._vectors, 0, n)
    index.close()
    zeroed = stored.copy()
    zeroed[2:5] = 0  # rows in the middle zeroed; the last row intact, the file still parses
    damaged = vectors.build(kind, DIM, zeroed)
    faiss.write_index(damaged, str(tmp_path / "idx" / VECTORS_NAME))
    with pytest.warns(UserWarning, match="does not match index.db; rebuilding it"):
        reopened = PersonIndex.open(tmp_path / "idx")
    assert np.array_equal(vectors.reconstruct_range(reopened._vectors, 0, n), stored)
    hit = reopened.search(stored[3], top_k=1)[0]
    assert hit.person_id == 3 or hit.similarity == pytest.approx(1.0, abs=1e-5)
    reopened.close()
    assert _consistent(tmp_path / "idx") == n


def test_disk_full_during_a_build_names_the_database_and_loses_nothing(tmp_path):
    write_scenes(tmp_path / "images", 120, per_image=3)
    paths = sorted((tmp_path / "images").glob("*.png"))
    index = PersonIndex.create(tmp_path / "idx", model="fake", dim=DIM)
    conn = index._conns.get()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + 4}")  # the disk fills up after a few batches
    with pytest.raises(IndexWriteError, match=r"index\.db: cannot write to the index \(database or disk is full\)"):
        index.add_images(FakeSearcher(), paths, progress=False, commit_every=10)
    index.close()
    kept = _consistent(tmp_path / "idx")
    assert 0 < kept < 360
    resumed = PersonIndex.open(tmp_path / "idx")  # space freed: the same command continues
    report = resumed.add_images(FakeSearcher(), paths, progress=False)
    assert report.already == kept // 3 and len(resumed) == 360
    resumed.close()
    assert _consistent(tmp_path / "idx") == 360


def test_disk_full_while_saving_the_vector_file(tmp_path, monkeypatch):
    index, paths = _index(tmp_path)
    n = len(index)
    write_scenes(tmp_path / "more", 4)

    def full(*_):
        raise RuntimeError("Error in faiss::FileIOWriter: write error: No space left on device")

    monkeypatch.setattr(faiss, "write_index", full)
    with pytest.raises(IndexWriteError, match=r"vectors\.faiss: cannot save the vector index"):
        index.add_images(FakeSearcher(), sorted((tmp_path / "more").glob("*.png")), progress=False)
    monkeypatch.undo()
    index.close()
    assert not list((tmp_path / "idx").glob(".*.tmp"))
    assert _consistent(tmp_path / "idx") == n + 8


def test_disk_full_through_the_cli_is_a_named_error(tmp_path, capsys, monkeypatch):
    write_scenes(tmp_path / "images", 3)

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", full)
    code = main(["-q", "index", "build", "--model", MODEL, "--index", str(tmp_path / "idx"),
                 "--images", str(tmp_path / "images")])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "No space left on device" in err and "Traceback" not in err


def test_a_truncated_video_is_indexed_up_to_the_damage_and_not_marked_complete(tmp_path):
    write_video(tmp_path / "cam.avi", 40)
    data = (tmp_path / "cam.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    index = PersonIndex.create(tmp_path / "idx", model="fake", dim=DIM)
    report = index.add_video(FakeSearcher(), tmp_path / "cut.avi", every=2, progress=False)
    assert 0 < report.images < 20
    assert len(report.skipped) == 1 and "the stream ended at frame" in report.skipped[0][1]
    assert "of the 40 the file states" in report.skipped[0][1]
    key = str((tmp_path / "cut.avi").absolute())
    assert metadata.video_progress(index._conns.get(), key)[0] == 0  # not complete
    assert [p for p, _ in index.skipped()] == [key]
    again = index.add_video(FakeSearcher(), tmp_path / "cut.avi", every=2, progress=False)
    assert again.images == 0 and again.already == report.images  # nothing twice
    whole = index.add_video(FakeSearcher(), tmp_path / "cam.avi", every=2, progress=False)
    assert whole.skipped == [] and metadata.video_progress(index._conns.get(), str((tmp_path / "cam.avi").absolute()))[0] == 2
    index.close()
    _consistent(tmp_path / "idx")


def test_an_image_given_as_a_video_is_skipped_and_the_folder_still_indexes(tmp_path, capsys):
    write_scenes(tmp_path / "images", 4)
    jpeg = tmp_path / "images" / "photo.jpg"
    Image.fromarray(scene([1, 2])).save(jpeg)
    idx = tmp_path / "idx"
    code = main(["-q", "index", "build", "--model", MODEL, "--index", str(idx), "--video", str(jpeg)])
    out = capsys.readouterr().out
    assert code == 0 and "1 skipped" in out and "image, not a video" in out
    code = main(["-q", "index", "add", "--index", str(idx), "--images", str(tmp_path / "images")])
    out = capsys.readouterr().out
    assert code == 0 and "indexed 5 images" in out, out


def test_a_source_indexed_as_the_other_kind_is_skipped_not_fatal(tmp_path):
    index, paths = _index(tmp_path, images=3)
    write_scenes(tmp_path / "more", 3)
    more = sorted((tmp_path / "more").glob("*.png"))
    fake = metadata.FrameResult(str(more[0].absolute()), "video", 0, 0.0, 96, 64, np.zeros((0, 4), np.float32),
                                np.zeros(0, np.float32), np.zeros((0, DIM), np.float32))
    metadata.write_batch(index._conns.get(), [fake], [])  # an older index that took this file for a video
    report = index.add_images(FakeSearcher(), more, progress=False)
    assert report.images == 2 and report.skipped == [(str(more[0].absolute()), "already indexed as a video, not an image")]
    assert index.add_video(FakeSearcher(), paths[0], progress=False).skipped[0][1].startswith(str(paths[0]))
    index.close()


def test_tiny_images_are_skipped_naming_the_file(tmp_path):
    class Strict(FakeSearcher):
        def __call__(self, image):
            if min(np.asarray(image).shape[:2]) < 2:
                raise ValueError(f"image is too small: shape {np.asarray(image).shape}")
            return super().__call__(image)

    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "images" / "dot.png")
    Image.fromarray(scene([1])).save(tmp_path / "images" / "ok.png")
    index = PersonIndex.create(tmp_path / "idx", model="fake", dim=DIM)
    report = index.add_images(Strict(), sorted((tmp_path / "images").glob("*.png")), progress=False)
    assert report.images == 1 and len(report.skipped) == 1 and "dot.png" in report.skipped[0][1]
    index.close()


def test_the_query_cli_names_the_query_file(tmp_path, capsys):
    write_scenes(tmp_path / "images", 2)
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.add_images(FakeSearcher(), sorted((tmp_path / "images").glob("*.png")), progress=False)
    index.close()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    code = main(["query", "--index", str(tmp_path / "idx"), "--image", str(tmp_path / "dot.png"),
                 "--box", "2,2,5,5"])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path / 'dot.png'}: query box" in err and "Traceback" not in err


def test_16_bit_grey_images_are_read_with_their_range(tmp_path):
    from personsearch.data.images import read_image

    values = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "grey16.png")
    rgb = np.asarray(read_image(tmp_path / "grey16.png"))
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb[..., 0].astype(int) - np.round(values / 257).astype(int)).max() <= 1
    assert rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) > 200
