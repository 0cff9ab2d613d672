"""PRW: writer -> official layout -> reader, reference-style parsing, edge cases, errors."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from personsearch.data.errors import DatasetError
from personsearch.data.matfiles import mat_cell, save_mat
from personsearch.data.prw import read_prw
from personsearch.data.records import UNLABELED, SceneAnnotation
from personsearch.synthetic.write_prw import write_prw_annotations

W, H = 120, 100


def _scene(name: str, boxes: list[list[float]], pids: list[int]) -> SceneAnnotation:
    cam = int(name[1]) - 1
    return SceneAnnotation(Path("/gen") / name, np.array(boxes, np.float32), np.array(pids, np.int64), cam)


TRAIN = [
    _scene("c1s1_000010.jpg", [[10, 10, 40, 90], [50, 5, 80, 95]], [5, UNLABELED]),
    _scene("c2s1_000020.jpg", [[0, 0, 30, 70]], [9]),
    _scene("c3s1_000030.jpg", [[20, 20, 50, 90]], [5]),
]
TEST = [
    _scene("c1s2_000100.jpg", [[10, 10, 40, 80], [60, 10, 90, 90]], [101, 102]),
    _scene("c2s2_000200.jpg", [[15, 15, 45, 85]], [101]),
    _scene("c3s2_000300.jpg", [[20, 5, 52, 95.5]], [101]),
    _scene("c4s2_000400.jpg", [[5, 5, 35, 75], [40, 10, 70, 88]], [102, UNLABELED]),
    _scene("c1s2_000500.jpg", [[30, 10, 60, 90]], [103]),
    _scene("c1s2_000600.jpg", [[12.25, 7.5, 44.75, 88.125]], [102]),
]


def _frames(root: Path, names: list[str]) -> None:
    (root / "frames").mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (W, H), (90, 90, 90)).save(root / "frames" / name)


def _write(root: Path, seed: int = 0) -> Path:
    _frames(root, [s.name for s in TRAIN + TEST])
    write_prw_annotations(root, TRAIN, TEST, np.random.default_rng(seed))
    return root


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return _write(tmp_path / "prw")


def test_reader_reads_writer_output(root: Path) -> None:
    ds = read_prw(root)
    assert [s.name for s in ds.train] == [s.name for s in TRAIN]
    assert [s.name for s in ds.gallery] == [s.name for s in TEST]
    assert ds.num_train_pids == 2 and ds.gallery_lists == {}
    assert [s.pids.tolist() for s in ds.train] == [[0, UNLABELED], [1], [0]]  # 5 -> 0, 9 -> 1
    assert [s.pids.tolist() for s in ds.gallery] == [s.pids.tolist() for s in TEST]  # raw test ids
    assert [s.camid for s in ds.gallery] == [0, 1, 2, 3, 0, 0]
    for ours, given in zip(ds.train + ds.gallery, TRAIN + TEST):
        np.testing.assert_allclose(ours.boxes, given.boxes, atol=0.01)
        assert ours.boxes.dtype == np.float32 and ours.path == root / "frames" / given.name
    # one query per (identity, camera), <= 2 cameras, only identities seen in >= 2 frames
    cams = {}
    for q in ds.queries:
        cams.setdefault(q.pid, []).append(q.camid)
        scene = next(s for s in ds.gallery if s.path == q.image)
        assert q.camid == scene.camid and q.pid in scene.pids.tolist()
        np.testing.assert_allclose(q.box, scene.boxes[scene.pids.tolist().index(q.pid)], atol=0.02)
    assert sorted(cams) == [101, 102] and cams[102] == [0, 3]
    assert len(cams[101]) == 2 and len(set(cams[101])) == 2 and set(cams[101]) <= {0, 1, 2}
    raw = (root / "query_info.txt").read_bytes()
    assert raw.count(b"\r\n") == len(ds.queries) == len(raw.splitlines())


def test_reference_parsing_style_reads_same(root: Path) -> None:
    """Index the files exactly as SeqNet datasets/prw.py (and the PRW ID_test2 users) do."""
    ds = read_prw(root)
    for split, scenes in (("train", ds.train), ("test", ds.gallery)):
        imgs = loadmat(str(root / f"frame_{split}.mat"))[f"img_index_{split}"]
        names = [img[0][0] + ".jpg" for img in imgs]
        assert names == [s.name for s in scenes]
        for name, scene in zip(names, scenes):
            anno = loadmat(str(root / "annotations" / name))  # loadmat appends .mat, as in SeqNet
            box_key = "box_new" if "box_new" in anno else "anno_file"
            rois = np.clip(anno[box_key][:, 1:], 0, None)
            rois[:, 2:] += rois[:, :2]
            ids = anno[box_key][:, 0]
            np.testing.assert_allclose(rois, scene.boxes, atol=1e-4)
            if split == "test":
                assert np.where(ids == -2, UNLABELED, ids).tolist() == scene.pids.tolist()
            else:
                assert ((ids == -2) == (scene.pids == UNLABELED)).all()
    with open(root / "query_info.txt", "rb") as f:
        raw = f.readlines()
    assert len(raw) == len(ds.queries)
    for line, q in zip(raw, ds.queries):
        linelist = str(line, "utf-8").split(" ")
        x, y, w, h = (float(v) for v in linelist[1:5])
        assert int(linelist[0]) == q.pid and linelist[5][:-2] + ".jpg" == q.image.name
        np.testing.assert_allclose([x, y, x + w, y + h], q.box, atol=1e-4)
    assert loadmat(root / "ID_test.mat")["ID_test2"][0].tolist() == [101, 102, 103]
    assert loadmat(root / "ID_train.mat")["ID_train"].squeeze().tolist() == [5, 9]


def test_writer_is_byte_deterministic(tmp_path: Path) -> None:
    a, b, c = (_write(tmp_path / name, seed) for name, seed in (("a", 0), ("b", 0), ("c", 3)))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.parent.name != "frames")
    assert len(files) == len(TRAIN + TEST) + 5
    assert all((a / rel).read_bytes() == (b / rel).read_bytes() for rel in files)
    assert not [p for p in a.rglob("*") if p.name.endswith(".tmp")]
    assert any((a / rel).read_bytes() != (c / rel).read_bytes() for rel in files)  # the rng is used


def test_hand_written_official_files(tmp_path: Path) -> None:
    """anno_file / anno_previous keys, negative and out-of-frame coordinates, a zero-width box,
    an empty frame, float query boxes, LF line endings and a trailing blank line."""
    root = tmp_path / "hand"
    names = {"train": ["c1s1_000001", "c2s1_000002"], "test": ["c3s1_000003", "c1s1_000004"]}
    _frames(root, [n + ".jpg" for split in names.values() for n in split])
    ann = root / "annotations"
    save_mat(ann / "c1s1_000001.jpg.mat", {"anno_file": np.array(
        [[3, -5, 10, 30, 40], [-2, 90, 50, 40, 70], [4, 10, 10, 0, 20]], dtype=np.float64)})
    save_mat(ann / "c2s1_000002.jpg.mat", {"anno_previous": np.array([[4, 1, 2, 3, 4]], dtype=np.float64)})
    save_mat(ann / "c3s1_000003.jpg.mat", {"box_new": np.array([[7, 1.5, 2.5, 10.25, 20.75]]),
                                           "anno_file": np.array([[8, 0, 0, 5, 5]], dtype=np.float64)})
    save_mat(ann / "c1s1_000004.jpg.mat", {"box_new": np.zeros((0, 5))})
    for split, split_names in names.items():
        save_mat(root / f"frame_{split}.mat", {f"img_index_{split}": mat_cell(split_names)})
    (root / "query_info.txt").write_bytes(b"7 -3.5 2.5 10.25 20.75 c3s1_000003\n\n")
    ds = read_prw(root)
    first = ds.train[0]
    np.testing.assert_array_equal(first.boxes, [[0, 10, 25, 50], [90, 50, W, H]])  # clipped, zero-width dropped
    assert first.pids.tolist() == [0, UNLABELED] and ds.train[1].pids.tolist() == [1]
    assert ds.num_train_pids == 2 and [s.camid for s in ds.train] == [0, 1]
    np.testing.assert_allclose(ds.gallery[0].boxes, [[1.5, 2.5, 11.75, 23.25]])  # box_new wins
    assert ds.gallery[0].pids.tolist() == [7] and ds.gallery[1].boxes.shape == (0, 4)
    (q,) = ds.queries
    assert (q.pid, q.camid, q.image.name) == (7, 2, "c3s1_000003.jpg")
    np.testing.assert_allclose(q.box, [0, 2.5, 6.75, 23.25])


def _edit_query_line(index: int, text: bytes) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        lines = (root / "query_info.txt").read_bytes().split(b"\r\n")
        lines[index] = text
        (root / "query_info.txt").write_bytes(b"\r\n".join(lines))
    return damage


def _add_test_frame(name: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        shutil.copy(root / "frames" / TEST[0].name, root / "frames" / f"{name}.jpg")
        shutil.copy(root / "annotations" / f"{TEST[0].name}.mat", root / "annotations" / f"{name}.jpg.mat")
        stems = [Path(s.name).stem for s in TEST] + [name]
        save_mat(root / "frame_test.mat", {"img_index_test": mat_cell(stems)})
    return damage


ANNO = f"annotations/{TEST[0].name}.mat"
ERRORS: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("missing frame_train.mat", lambda r: (r / "frame_train.mat").unlink(), "frame_train.mat", "missing"),
    ("frame_test.mat without key", lambda r: save_mat(r / "frame_test.mat", {"names": mat_cell(["c1s2_000100"])}),
     "frame_test.mat", "img_index_test"),
    ("corrupt annotation", lambda r: (r / ANNO).write_bytes(b"\x00garbage" * 40),
     TEST[0].name + ".mat", "unreadable"),
    ("annotation without box key", lambda r: save_mat(r / ANNO, {"boxes": np.zeros((1, 5))}),
     TEST[0].name + ".mat", "box_new/anno_file/anno_previous"),
    ("four columns", lambda r: save_mat(r / ANNO, {"box_new": np.ones((2, 4))}), TEST[0].name + ".mat", "box_new"),
    ("fractional id", lambda r: save_mat(r / ANNO, {"anno_file": np.array([[1.5, 1, 1, 5, 5]])}),
     TEST[0].name + ".mat", "anno_file"),
    ("query line of 5 fields", _edit_query_line(1, b"101 1 2 3 c1s2_000100"), "query_info.txt", "line 2"),
    ("query number not a number", _edit_query_line(0, b"101 1 abc 3 4 c1s2_000100"), "query_info.txt", "line 1"),
    ("query with zero width", _edit_query_line(0, b"101 1 2 0 4 c1s2_000100"), "query_info.txt", "line 1"),
    ("query on unknown frame", _edit_query_line(0, b"101 1 2 3 4 c9s9_999999"), "query_info.txt", "line 1"),
    ("query on a train frame", _edit_query_line(2, b"101 1 2 3 4 c1s1_000010"), "query_info.txt", "line 3"),
    ("missing query_info.txt", lambda r: (r / "query_info.txt").unlink(), "query_info.txt", "missing"),
    ("missing frame image", lambda r: (r / "frames" / TEST[1].name).unlink(), TEST[1].name, "missing"),
    ("frame name without camera", _add_test_frame("zz_000001"), "frame_test.mat", "img_index_test"),
    ("frame in train and test", _add_test_frame("c1s1_000010"), "frame_test.mat", "img_index_test"),
]


@pytest.mark.parametrize(("label", "damage", "file", "field"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_dataset_error(root: Path, label: str, damage: Callable[[Path], None],
                                        file: str, field: str) -> None:
    read_prw(root)  # intact before the damage
    damage(root)
    with pytest.raises(DatasetError) as info:
        read_prw(root)
    assert file in str(info.value) and field in str(info.value), str(info.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nowhere"):
        read_prw(tmp_path / "nowhere")
