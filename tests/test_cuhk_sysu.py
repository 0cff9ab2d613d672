"""CUHK-SYSU: writer -> official .mat layout -> reader, reference-style parsing, edge cases, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from personsearch.data.cuhk_sysu import read_cuhk_sysu
from personsearch.data.errors import DatasetError
from personsearch.data.matfiles import MAT_HEADER, mat_cell, mat_scalar, mat_struct, save_mat
from personsearch.data.records import UNLABELED, SceneAnnotation
from personsearch.synthetic.write_cuhk_sysu import write_cuhk_sysu_annotations

SIZES = (2, 4, 10)
PROTO = Path("annotation/test/train_test")


def _scene(name: str, boxes: list[list[float]], pids: list[int], hard: list[bool] | None = None) -> SceneAnnotation:
    return SceneAnnotation(Path("/gen") / name, np.array(boxes, dtype=np.float32), np.array(pids, dtype=np.int64),
                           -1, None if hard is None else np.array(hard))


TRAIN = [
    _scene("s1.jpg", [[10, 20, 50, 120], [60, 10, 90, 100]], [7, UNLABELED], [False, True]),
    _scene("s2.jpg", [[5, 5, 40, 90]], [7]),
    _scene("s3.jpg", [[100, 30, 140, 130], [0, 0, 30, 60]], [3, 7]),
    _scene("s4.jpg", [[12.4, 20.6, 50.2, 119.5]], [3]),
]
TEST = [
    _scene("t1.jpg", [[10, 10, 40, 90]], [20]),
    _scene("t2.jpg", [[20, 10, 60, 100], [70, 10, 100, 90]], [20, 22]),
    _scene("t3.jpg", [[30, 30, 60, 110]], [20]),
    _scene("t4.jpg", [[5, 5, 30, 70]], [21]),
    _scene("t5.jpg", [[50, 20, 80, 95]], [22], [True]),
    _scene("t6.jpg", [[1, 2, 31, 62]], [UNLABELED]),
]


def _write(root: Path, seed: int = 0) -> Path:
    (root / "Image" / "SSM").mkdir(parents=True, exist_ok=True)
    write_cuhk_sysu_annotations(root, TRAIN, TEST, SIZES, np.random.default_rng(seed))
    return root


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return _write(tmp_path / "cuhk")


def _by_name(scenes: list[SceneAnnotation]) -> dict[str, SceneAnnotation]:
    return {s.name: s for s in scenes}


def test_reader_reads_writer_output(root: Path) -> None:
    ds = read_cuhk_sysu(root)
    assert [s.name for s in ds.train] == ["s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg"]
    assert [s.name for s in ds.gallery] == [s.name for s in TEST]
    assert ds.num_train_pids == 2 and sorted(ds.gallery_lists) == list(SIZES)
    train = _by_name(ds.train)
    # identities relabelled in Train.mat order (pid 3 -> 0, pid 7 -> 1); passers-by UNLABELED
    assert train["s1.jpg"].pids.tolist() == [1, UNLABELED]
    assert train["s3.jpg"].pids.tolist() == [0, 1]
    assert train["s1.jpg"].ignore.tolist() == [False, True]
    np.testing.assert_array_equal(train["s4.jpg"].boxes, [[12, 21, 50, 120]])  # uint16 x,y,w,h round trip
    assert train["s4.jpg"].boxes.dtype == np.float32 and train["s4.jpg"].camid == -1
    gallery = _by_name(ds.gallery)
    # test pids filled from the protocol; identity 21 has no query, so it stays unknown
    assert gallery["t2.jpg"].pids.tolist() == [20, 22]
    assert gallery["t4.jpg"].pids.tolist() == [UNLABELED]
    assert gallery["t5.jpg"].ignore.tolist() == [True]
    assert [q.pid for q in ds.queries] == [20, 22]
    shows = {20: {"t1.jpg", "t2.jpg", "t3.jpg"}, 22: {"t2.jpg", "t5.jpg"}}
    for qi, q in enumerate(ds.queries):
        assert q.image.name in shows[q.pid] and q.image.parent == root / "Image" / "SSM"
        qscene = gallery[q.image.name]
        np.testing.assert_array_equal(q.box, qscene.boxes[qscene.pids.tolist().index(q.pid)])
        positives = shows[q.pid] - {q.image.name}
        negatives = {s.name for s in TEST} - shows[q.pid]
        for size in SIZES:
            glist = ds.gallery_lists[size][qi]
            npos = len(positives)
            assert len(glist) == max(npos, min(size, npos + len(negatives)))
            assert {n for n, _ in glist[:npos]} == positives and all(b is not None for _, b in glist[:npos])
            assert all(b is None and n in negatives for n, b in glist[npos:])
            for name, box in glist[:npos]:
                scene = gallery[name]
                np.testing.assert_array_equal(box, scene.boxes[scene.pids.tolist().index(q.pid)])
        names = [[n for n, _ in ds.gallery_lists[size][qi]] for size in SIZES]
        assert all(small == large[:len(small)] for small, large in zip(names, names[1:]))  # prefixes


def test_reference_parsing_style_reads_same(root: Path) -> None:
    """Index the files exactly as SeqNet datasets/cuhk_sysu.py + eval_func.py and OIM psdb.py do."""
    ds = read_cuhk_sysu(root)
    ann = root / "annotation"
    name_to_boxes = {}
    for img_name, _, boxes in loadmat(ann / "Images.mat")["Img"].squeeze():
        img_name = str(img_name[0])
        boxes = np.asarray([b[0] for b in boxes[0]]).reshape(-1, 4)
        boxes = boxes[(boxes[:, 2] > 0) & (boxes[:, 3] > 0)].astype(np.int32)
        boxes[:, 2:] += boxes[:, :2]
        name_to_boxes[img_name] = boxes
    pool = [str(a[0]) for a in loadmat(ann / "pool.mat")["pool"].squeeze()]
    assert pool == [s.name for s in ds.gallery]
    for s in ds.train + ds.gallery:
        np.testing.assert_array_equal(name_to_boxes[s.name], s.boxes)
    labelled = {}
    for index, item in enumerate(loadmat(root / PROTO / "Train.mat")["Train"].squeeze()):
        for img_name, box, _ in item[0, 0][2].squeeze():
            box = box.squeeze().astype(np.int32)
            labelled[(str(img_name[0]), tuple(box[:2]) + tuple(box[:2] + box[2:]))] = index
    train = _by_name(ds.train)
    expected = {(s.name, tuple(b.astype(int))): p for s in ds.train for b, p in zip(s.boxes, s.pids) if p >= 0}
    assert labelled == expected and len(train) == 4
    for size in SIZES:
        key = f"TestG{size}"
        protoc = loadmat(root / PROTO / f"{key}.mat")[key].squeeze()
        for i, item in enumerate(protoc["Query"]):  # SeqNet _load_queries
            roi = item["idlocate"][0, 0][0].astype(np.int32)
            roi[2:] += roi[:2]
            assert str(item["imname"][0, 0][0]) == ds.queries[i].image.name
            np.testing.assert_array_equal(roi, ds.queries[i].box)
        for i, item in enumerate(protoc):  # OIM psdb gt_roidb
            assert str(item["Query"][0, 0][0][0]) == ds.queries[i].image.name
            assert item["Query"][0, 0][1].squeeze().astype(np.int32).tolist()[:2] == ds.queries[i].box[:2].tolist()
            ref = []
            for gallery_item in protoc["Gallery"][i].squeeze():  # SeqNet eval_search_cuhk
                gt = gallery_item[1][0].astype(np.int32)
                if gt.size > 0:
                    gt[2:] += gt[:2]
                ref.append((str(gallery_item[0][0]), gt.tolist() if gt.size else None))
            ours = [(n, None if b is None else b.astype(int).tolist()) for n, b in ds.gallery_lists[size][i]]
            assert ref == ours
            ((((qname,), (qbox,), _, _),),) = item["Query"]  # tuple-unpacking style (Yimin Jiang reader)
            (gallery,) = item["Gallery"]
            assert str(qname) == ds.queries[i].image.name and len(qbox) == 4
            expected_sizes = [0 if b is None else 4 for _, b in ds.gallery_lists[size][i]]
            assert [len(box) for (_,), (box,), _ in gallery] == expected_sizes


def test_writer_is_byte_deterministic(tmp_path: Path) -> None:
    a, b, c = (_write(tmp_path / name, seed) for name, seed in (("a", 0), ("b", 0), ("c", 5)))
    files = sorted(p.relative_to(a) for p in a.rglob("*.mat"))
    assert len(files) == 3 + len(SIZES)
    for rel in files:
        data = (a / rel).read_bytes()
        assert data == (b / rel).read_bytes(), rel
        assert data.startswith(MAT_HEADER)
    assert not [p for p in a.rglob("*") if p.name.endswith(".tmp")]  # atomic writes left no temp file
    assert any((a / rel).read_bytes() != (c / rel).read_bytes() for rel in files)  # the rng is used


def _mat_img(items: list[tuple[str, list[list[int]], list[int]]]) -> np.ndarray:
    return mat_struct([{"imname": n, "nAppear": mat_scalar(len(b)),
                        "box": mat_struct([{"idlocate": np.array([x], np.uint16), "ishard": mat_scalar(h)}
                                           for x, h in zip(b, hard)], ("idlocate", "ishard"))}
                       for n, b, hard in items], ("imname", "nAppear", "box"))


def test_hand_written_official_files(tmp_path: Path) -> None:
    """uint16 boxes, a zero-width box, an empty idlocate, non-'p' idnames, auto-discovered sizes."""
    root = tmp_path / "hand"
    (root / "Image" / "SSM").mkdir(parents=True)
    save_mat(root / "annotation/Images.mat", {"Img": _mat_img([
        ("a.jpg", [[1, 2, 10, 20], [5, 5, 0, 30]], [0, 0]),
        ("b.jpg", [[3, 4, 11, 21]], [1]),
        ("c.jpg", [[7, 8, 12, 22], [30, 30, 9, 9]], [0, 0]),
    ])})
    save_mat(root / "annotation/pool.mat", {"pool": mat_cell(["b.jpg", "c.jpg"])})
    scene = mat_struct([{"imname": "a.jpg", "idlocate": np.array([[1, 2, 10, 20]], np.uint16),
                         "ishard": mat_scalar(0)}], ("imname", "idlocate", "ishard"))
    train = mat_cell([mat_struct([{"idname": "p9", "nAppear": mat_scalar(1), "scene": scene}],
                                 ("idname", "nAppear", "scene"))])
    save_mat(root / PROTO / "Train.mat", {"Train": train})
    query = mat_struct([{"imname": "b.jpg", "idlocate": np.array([[3, 4, 11, 21]], np.uint16),
                         "ishard": mat_scalar(1), "idname": "person_x"}], ("imname", "idlocate", "ishard", "idname"))
    gallery = mat_struct([
        {"imname": "c.jpg", "idlocate": np.array([[7, 8, 12, 22]], np.uint16), "ishard": mat_scalar(0)},
        {"imname": "c.jpg", "idlocate": np.zeros((1, 0)), "ishard": np.zeros((1, 0))},  # MATLAB zeros(1, 0)
    ], ("imname", "idlocate", "ishard"))
    for size in (7, 50):
        save_mat(root / PROTO / f"TestG{size}.mat",
                 {f"TestG{size}": mat_struct([{"Query": query, "Gallery": gallery}], ("Query", "Gallery"))})
    ds = read_cuhk_sysu(root)
    assert sorted(ds.gallery_lists) == [7, 50]
    assert [s.name for s in ds.train] == ["a.jpg"] and ds.num_train_pids == 1
    np.testing.assert_array_equal(ds.train[0].boxes, [[1, 2, 11, 22]])  # zero-width box dropped
    assert ds.train[0].pids.tolist() == [0]
    assert ds.queries[0].pid == 1 and ds.gallery[0].ignore.tolist() == [True]  # idname not 'p<n>': index + 1
    assert ds.gallery[1].pids.tolist() == [1, UNLABELED]
    glist = ds.gallery_lists[50][0]
    np.testing.assert_array_equal(glist[0][1], [7, 8, 19, 30])
    assert glist[1] == ("c.jpg", None) and glist[0][1].dtype == np.float32
    assert read_cuhk_sysu(root, gallery_sizes=[7]).gallery_lists.keys() == {7}


def _resave(path: Path, key: str, mutate: Callable[[np.ndarray], np.ndarray | None]) -> None:
    value = loadmat(path)[key]
    out = mutate(value)
    savemat(path, {key: value if out is None else out})


def _set_query_box(protoc: np.ndarray) -> None:
    protoc[0, 0]["Query"]["idlocate"][0, 0] = np.array([[10, 10, 0, 80]], np.uint16)


def _set_gallery(field: str, value: object) -> Callable[[np.ndarray], None]:
    def mutate(protoc: np.ndarray) -> None:
        protoc[0, 0]["Gallery"][field][0, 0] = value
    return mutate


def _set_train_box(train: np.ndarray) -> None:
    train[0, 0][0, 0]["scene"]["idlocate"][0, 0] = np.array([[1, 1, 5, 5]], np.uint16)


ERRORS: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("missing Images.mat", lambda r: (r / "annotation/Images.mat").unlink(), "Images.mat", "missing"),
    ("corrupt Images.mat", lambda r: (r / "annotation/Images.mat").write_bytes(b"not a mat file" * 20),
     "Images.mat", "unreadable"),
    ("missing key", lambda r: save_mat(r / "annotation/Images.mat", {"Imgs": _mat_img([])}), "Images.mat", ": Img:"),
    ("missing field", lambda r: save_mat(r / "annotation/Images.mat", {"Img": mat_struct(
        [{"imname": "s1.jpg", "box": mat_struct([{"ishard": mat_scalar(0)}], ("ishard",))}], ("imname", "box"))}),
     "Images.mat", "Img[0].box[0]"),
    ("unknown pool image", lambda r: save_mat(r / "annotation/pool.mat", {"pool": mat_cell(["zz.jpg"])}),
     "pool.mat", "pool[0]"),
    ("pool lists an image twice", lambda r: save_mat(r / "annotation/pool.mat", {"pool": mat_cell(["t1.jpg"] * 2)}),
     "pool.mat", "pool[1]"),
    ("train box not in Images", lambda r: _resave(r / PROTO / "Train.mat", "Train", _set_train_box),
     "Train.mat", "scene[0].idlocate"),
    ("zero-width query box", lambda r: _resave(r / PROTO / "TestG2.mat", "TestG2", _set_query_box),
     "TestG2.mat", "TestG2[0].Query.idlocate"),
    ("gallery image not in pool",
     lambda r: _resave(r / PROTO / "TestG4.mat", "TestG4", _set_gallery("imname", "s1.jpg")),
     "TestG4.mat", "TestG4[0].Gallery[0].imname"),
    ("gallery box of 3 numbers", lambda r: _resave(r / PROTO / "TestG10.mat", "TestG10",
                                                   _set_gallery("idlocate", np.array([[1.0, 2.0, 3.0]]))),
     "TestG10.mat", "TestG10[0].Gallery[0].idlocate"),
    ("query order differs", lambda r: _resave(r / PROTO / "TestG4.mat", "TestG4", lambda p: p[:, ::-1].copy()),
     "TestG4.mat", "TestG4.Query"),
    ("no protocol file", lambda r: [p.unlink() for p in (r / PROTO).glob("TestG*.mat")],
     "train_test", "TestG{N}.mat"),
    ("missing image folder", lambda r: (r / "Image/SSM").rmdir(), "SSM", "missing"),
]


@pytest.mark.parametrize(("label", "damage", "file", "field"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_dataset_error(root: Path, label: str, damage: Callable[[Path], None],
                                        file: str, field: str) -> None:
    read_cuhk_sysu(root)  # intact before the damage
    damage(root)
    with pytest.raises(DatasetError) as info:
        read_cuhk_sysu(root)
    assert file in str(info.value) and field in str(info.value), str(info.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nowhere"):
        read_cuhk_sysu(tmp_path / "nowhere")
