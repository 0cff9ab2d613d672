"""The gallery index API on cheap fake people: build, incremental adds, videos, errors, crashes, threads."""

from __future__ import annotations

import sqlite3
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from index_fakes import COLOURS, DIM, FakeSearcher, scene, write_scenes, write_video
from PIL import Image

from personsearch.index import DimensionError, EmptyIndexError, IndexCorruptError, PersonIndex, vectors

MODEL = "py:index_fakes:make_searcher"


def _query(colour: int) -> np.ndarray:
    return FakeSearcher().extract_query(scene([colour]), [[4, 16, 18, 46]])[0]


def _colour_of(index: PersonIndex, hit) -> int:
    """The colour index of the rectangle inside a hit's box, read back from its frame."""
    x1, y1, x2, y2 = (int(v) for v in hit.box)
    mean = index.frame_image(hit.person_id)[y1:y2, x1:x2].reshape(-1, 3).mean(0)
    return int(np.argmin([np.abs(mean - np.array(c)).sum() for c in COLOURS]))


@pytest.fixture()
def gallery(tmp_path: Path) -> tuple[Path, dict[str, list[int]]]:
    truth = write_scenes(tmp_path / "images", 12)
    (tmp_path / "images" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    return tmp_path / "images", truth


def _db_rows(index: PersonIndex, sql: str) -> list[tuple]:
    with sqlite3.connect(index.path / "index.db") as conn:
        return conn.execute(sql).fetchall()


def test_build_search_and_look_up(tmp_path, gallery):
    folder, truth = gallery
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    assert (index.model, index.dim, len(index), index.index_type) == (MODEL, DIM, 0, "exact")
    report = index.add_images(FakeSearcher(), sorted(folder.iterdir()), camera="gate", progress=False)
    assert (report.images, report.people, report.already) == (12, 24, 0)
    assert [Path(p).name for p, _ in report.skipped] == ["broken.jpg"]
    assert "corrupt or unreadable" in report.skipped[0][1]
    stats = index.stats()
    assert {k: stats[k] for k in ("images", "videos", "frames", "people", "skipped", "dim", "model")} == {
        "images": 12, "videos": 0, "frames": 0, "people": 24, "skipped": 1, "dim": DIM, "model": MODEL}
    assert stats["cameras"] == ["gate"] and stats["bytes"] > 0 and stats["index_type"] == "exact"
    assert index.skipped()[0][0].endswith("broken.jpg")

    hits = index.search(_query(3), top_k=4)
    assert len(hits) == 4 and [_colour_of(index, h) == 3 for h in hits] == [True, True, False, False]
    assert {Path(h.source).name for h in hits[:2]} == {n for n, p in truth.items() if 3 in p}  # 2 images
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-4) and hits[1].similarity > hits[2].similarity
    first = hits[0]
    assert (first.frame, first.timestamp, first.camera) == (None, None, "gate") and 0.5 < first.det_score <= 1
    again = index.hit(first.person_id)
    assert (again.source, again.box) == (first.source, first.box) and np.isnan(again.similarity)
    assert again.to_dict()["similarity"] is None and again.to_dict()["box"] == list(first.box)
    expected = np.asarray(Image.open(first.source).convert("RGB"))
    np.testing.assert_array_equal(index.frame_image(first.person_id), expected)
    assert index.search(_query(3), top_k=1000)[-1].similarity < 0.9  # asks for more than there are: all 24
    assert len(index.search(_query(3), top_k=1000)) == 24


def test_adding_again_duplicates_nothing_and_reopening_keeps_everything(tmp_path, gallery):
    folder, _ = gallery
    paths = sorted(folder.glob("scene_*.png"))
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.add_images(FakeSearcher(), paths[:5], progress=False)
    index.close()
    index = PersonIndex.open(tmp_path / "idx")
    searcher = FakeSearcher()
    report = index.add_images(searcher, paths + paths[:2], progress=False)  # overlapping, with repeats
    assert (report.images, report.already, searcher.calls) == (7, 5, 7)
    assert len(index) == 24 and index.stats()["people"] == 24
    assert _db_rows(index, "SELECT COUNT(*), COUNT(DISTINCT path) FROM sources") == [(12, 12)]
    reopened = PersonIndex.open(tmp_path / "idx")
    assert len(reopened) == 24
    assert [h.person_id for h in reopened.search(_query(5), 3)] == [h.person_id for h in index.search(_query(5), 3)]


def test_video_every_nth_frame_keeps_frame_numbers_and_times(tmp_path):
    video = tmp_path / "walk.avi"
    write_video(video, 30, fps=10.0)
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    report = index.add_video(FakeSearcher(), video, every=5, camera="cam2", progress=False)
    assert (report.images, report.people) == (6, 12)
    frames = sorted({h.frame for h in index.search(_query(8), top_k=12)})
    assert frames == [0, 5, 10, 15, 20, 25]
    hit = index.search(_query(5), top_k=1)[0]  # the moving person of frame i has colour i % 10
    assert hit.frame in (5, 15, 25) and hit.camera == "cam2"
    assert hit.timestamp == pytest.approx(hit.frame / 10.0)
    import cv2

    capture = cv2.VideoCapture(str(video))
    for _ in range(hit.frame + 1):
        ok, bgr = capture.read()
    capture.release()
    np.testing.assert_array_equal(index.frame_image(hit.person_id), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert index.add_video(FakeSearcher(), video, every=10, progress=False).already == 3  # all done
    searcher = FakeSearcher()
    report = index.add_video(searcher, video, every=1, stop=7, progress=False)
    assert (report.images, report.already, searcher.calls) == (5, 2, 5)  # frames 1-4, 6
    stats = index.stats()
    assert (stats["videos"], stats["frames"], stats["people"]) == (1, 11, 22)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF nonsense")
    assert "cannot open" in index.add_video(FakeSearcher(), broken, progress=False).skipped[0][1]
    with pytest.raises(FileNotFoundError, match="missing.avi"):
        index.add_video(FakeSearcher(), tmp_path / "missing.avi", progress=False)


def test_clear_errors(tmp_path, gallery):
    folder, _ = gallery
    with pytest.raises(FileNotFoundError, match="no such index"):
        PersonIndex.open(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="not an index folder"):
        PersonIndex.open(folder)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "index.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IndexCorruptError, match="index.db"):
        PersonIndex.open(bad)
    with pytest.raises(ValueError, match="index type"):
        PersonIndex.create(tmp_path / "x", model=MODEL, dim=DIM, index_type="fast")
    with pytest.raises(ValueError, match="dim"):
        PersonIndex.create(tmp_path / "x", model=MODEL, dim=0)
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    with pytest.raises(FileExistsError, match="already exists"):
        PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    with pytest.raises(FileExistsError, match="not an empty folder"):
        PersonIndex.create(folder, model=MODEL, dim=DIM)
    with pytest.raises(EmptyIndexError, match="empty"):
        index.search(_query(1))
    with pytest.raises(KeyError, match="empty"):
        index.hit(0)
    index.add_images(FakeSearcher(), sorted(folder.glob("scene_000*.png"))[:2], progress=False)
    with pytest.raises(DimensionError, match="4 dimensions.*16-d"):
        index.search(np.ones(4))
    with pytest.raises(ValueError, match="top_k"):
        index.search(_query(1), top_k=0)
    with pytest.raises(KeyError, match="no person 99 .*0..3"):
        index.hit(99)

    class WrongDim(FakeSearcher):
        def __call__(self, image):
            out = super().__call__(image)
            return {**out, "embeddings": out["embeddings"][:, :8]}

    with pytest.raises(DimensionError, match="8-d embeddings but the index holds 16-d"):
        index.add_images(WrongDim(), sorted(folder.glob("scene_001*.png")), progress=False)
    assert len(PersonIndex.open(tmp_path / "idx")) == 4  # nothing half-added


def test_another_process_writing_is_refused(tmp_path, gallery):
    import fcntl

    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    with open(tmp_path / "idx" / ".write.lock", "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # a separate open file description: like another process
        with pytest.raises(ValueError, match="being written by another process"):
            index.add_images(FakeSearcher(), sorted(gallery[0].glob("*.png")), progress=False)


def test_crash_while_saving_vectors_leaves_the_index_openable(tmp_path, gallery, monkeypatch):
    folder, _ = gallery
    paths = sorted(folder.glob("scene_*.png"))
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.add_images(FakeSearcher(), paths[:4], progress=False)
    faiss_file = tmp_path / "idx" / "vectors.faiss"
    before = faiss_file.read_bytes()

    def half_written(idx, path):
        Path(path).write_bytes(b"half a faiss file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(vectors.faiss, "write_index", half_written)
    with pytest.raises(OSError, match="simulated"):
        index.add_images(FakeSearcher(), paths, progress=False)
    monkeypatch.undo()
    assert faiss_file.read_bytes() == before  # the previous version, untouched
    assert not list(faiss_file.parent.glob(".vectors.faiss.*"))  # no temporary left behind
    reopened = PersonIndex.open(tmp_path / "idx")  # the database committed all 12 images: caught up
    assert len(reopened) == 24 and reopened.stats()["people"] == 24
    assert all(_colour_of(reopened, h) == 7 for h in reopened.search(_query(7), 2))


def test_crash_mid_batch_keeps_earlier_batches_and_a_rerun_completes(tmp_path, gallery):
    folder, _ = gallery
    paths = sorted(folder.glob("scene_*.png"))

    class Crashing(FakeSearcher):
        def __call__(self, image):
            if self.calls == 7:
                raise RuntimeError("killed (simulated)")
            return super().__call__(image)

    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    with pytest.raises(RuntimeError, match="simulated"):
        index.add_images(Crashing(), paths, progress=False, commit_every=3)
    reopened = PersonIndex.open(tmp_path / "idx")
    assert reopened.stats()["images"] == 6 and len(reopened) == 12  # two batches of 3 committed
    report = reopened.add_images(FakeSearcher(), paths, progress=False)
    assert (report.images, report.already) == (6, 6)
    assert len(reopened) == 24 and _db_rows(reopened, "SELECT COUNT(DISTINCT frame_id) FROM people") == [(12,)]


def test_damaged_or_mismatched_vector_file_is_rebuilt(tmp_path, gallery):
    folder, _ = gallery
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.add_images(FakeSearcher(), sorted(folder.glob("scene_*.png")), progress=False)
    expected = [h.person_id for h in index.search(_query(4), 4)]
    faiss_file = tmp_path / "idx" / "vectors.faiss"
    faiss_file.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding"):
        assert [h.person_id for h in PersonIndex.open(tmp_path / "idx").search(_query(4), 4)] == expected
    vectors.save(vectors.build("exact", DIM, np.ones((30, DIM), np.float32)), faiss_file)  # more rows than people
    with pytest.warns(UserWarning, match="does not match"):
        assert len(PersonIndex.open(tmp_path / "idx")) == 24


def test_exact_or_approximate_by_size_with_override(tmp_path, gallery, monkeypatch):
    assert vectors.wanted_kind("auto", 1000, 128) == "exact"
    assert vectors.wanted_kind("auto", 1_000_000, 128) == "hnsw"
    assert vectors.wanted_kind("auto", 10_000, 1280) == "hnsw"
    assert vectors.wanted_kind("exact", 10**7, 128) == "exact"
    assert vectors.wanted_kind("ivf", 10, 128) == "exact" and vectors.wanted_kind("ivf", 10**6, 128) == "ivf"
    assert vectors.wanted_kind("auto", 10**7, 128) == "ivfsq" and vectors.wanted_kind("ivfsq", 10, 128) == "exact"
    folder, _ = gallery
    paths = sorted(folder.glob("scene_*.png"))
    monkeypatch.setattr(vectors, "AUTO_EXACT_ELEMENTS", 16 * DIM)  # auto: exact up to 16 people
    monkeypatch.setattr(vectors, "IVF_MIN_TRAIN", 20)
    monkeypatch.setattr(vectors, "_ivf_lists", lambda n: 4)
    kinds = {}
    for requested in ("auto", "exact", "hnsw", "ivf", "ivfsq"):
        index = PersonIndex.create(tmp_path / requested, model=MODEL, dim=DIM, index_type=requested)
        index.add_images(FakeSearcher(), paths[:6], progress=False)  # 12 people
        small = index.index_type
        index.add_images(FakeSearcher(), paths, progress=False)  # 24 people
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the saved file agrees with the database: reopened as is
            kinds[requested] = (small, index.index_type, PersonIndex.open(tmp_path / requested).index_type)
        hits = index.search(_query(6), 2)
        assert all(_colour_of(index, h) == 6 for h in hits), requested
    assert kinds == {"auto": ("exact", "hnsw", "hnsw"), "exact": ("exact",) * 3, "hnsw": ("hnsw",) * 3,
                     "ivf": ("exact", "ivf", "ivf"), "ivfsq": ("exact", "ivfsq", "ivfsq")}


def test_compressed_vectors_keep_recall_in_a_quarter_of_the_memory():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((500, 128)).astype(np.float32)
    data = centres[rng.integers(0, 500, 20_000)] + 0.7 * rng.standard_normal((20_000, 128)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = data[:200] + 0.3 * rng.standard_normal((200, 128)).astype(np.float32)
    exact, compressed = (vectors.build(kind, 128, data) for kind in ("exact", "ivfsq"))
    _, truth = vectors.search(exact, queries, 10)
    _, found = vectors.search(compressed, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95, recall
    assert vectors.memory_bytes(compressed) < 0.35 * vectors.memory_bytes(exact)
    stored = vectors.reconstruct_range(compressed, 0, 1000)
    assert vectors.agrees(compressed, stored, data[:1000])  # approximately the database's rows
    assert not vectors.agrees(compressed, stored, data[1:1001])  # shifted by one: caught
    stored[500] = 0
    assert not vectors.agrees(compressed, stored, data[:1000])  # one row zeroed: caught
    sims, ids = vectors.search(compressed, queries, vectors.candidates(compressed, 10))
    rescored = [vectors.rescore(q, i, data[i], 10) for q, i in zip(queries, ids)]
    assert np.mean([len(set(i) & set(t)) / 10 for (_, i), t in zip(rescored, truth)]) >= recall
    assert all(np.allclose(s, data[i] @ q, atol=1e-5) for (s, i), q in zip(rescored, queries))  # exact values


def test_rerank_reorders_the_candidates(tmp_path, gallery):
    folder, _ = gallery
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.add_images(FakeSearcher(), sorted(folder.glob("scene_*.png")), progress=False)
    hits = index.search(_query(9), top_k=5, rerank=True)
    assert len(hits) == 5 and all(h.rerank_distance is not None for h in hits)
    assert [h.rerank_distance for h in hits] == sorted(h.rerank_distance for h in hits)
    assert all(_colour_of(index, h) == 9 for h in hits[:2])
    assert hits[0].to_dict()["box"] == list(hits[0].box)


def test_queries_run_safely_while_an_add_runs(tmp_path):
    paths = sorted(write_scenes(tmp_path / "many", 40, per_image=3))
    paths = [tmp_path / "many" / name for name in paths]
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.add_images(FakeSearcher(), paths[:2], progress=False)
    errors: list[BaseException] = []

    def add() -> None:
        try:
            index.add_images(FakeSearcher(delay=0.01), paths, progress=False, commit_every=3)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    writer = threading.Thread(target=add)
    writer.start()
    seen, checks = [], 0

    def query(colour: int) -> None:
        try:
            hits = index.search(_query(colour), top_k=5)
            for hit in hits:
                assert hit.person_id < len(index) and index.hit(hit.person_id).source == hit.source
            assert index.frame_image(hits[0].person_id).shape == (64, 96, 3)
            seen.append(len(index))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    while writer.is_alive() or checks < 5:
        readers = [threading.Thread(target=query, args=(c,)) for c in range(3)]
        for r in readers:
            r.start()
        for r in readers:
            r.join()
        checks += 1
    writer.join()
    assert not errors and len(seen) == 3 * checks and checks >= 5
    assert len(index) == 120 and max(seen) == 120 and 6 <= min(seen) < 120  # some ran mid-add


def test_a_person_s_stored_embedding_and_frame(tmp_path, gallery):
    folder, _ = gallery
    index = PersonIndex.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.add_images(FakeSearcher(), sorted(folder.iterdir()), progress=False)
    hit = index.search(_query(5), top_k=1)[0]
    stored = index.embedding(hit.person_id)
    assert stored.shape == (DIM,) and stored.dtype == np.float32
    assert index.search(stored, top_k=1)[0].person_id == hit.person_id  # searching by it finds the person
    frame = index.frame(hit.person_id)
    image = Image.open(hit.source)
    assert (frame.width, frame.height) == image.size
    assert len(frame.people) == 2 and hit.person_id in [p.person_id for p in frame.people]  # 2 people an image
    assert {p.source for p in frame.people} == {hit.source}
    assert [p.person_id for p in frame.people] == sorted(p.person_id for p in frame.people)
    for unknown in (len(index), 10**6):
        with pytest.raises(KeyError, match=f"no person {unknown}"):
            index.embedding(unknown)
        with pytest.raises(KeyError, match=f"no person {unknown}"):
            index.frame(unknown)
