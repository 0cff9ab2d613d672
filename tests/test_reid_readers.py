"""Market-1501 / DukeMTMC-reID / CUHK03-NP / MSMT17 readers on tiny official-layout fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from personsearch.data.errors import DatasetError
from personsearch.data.market1501 import read_cuhk03_np, read_dukemtmc, read_market1501
from personsearch.data.msmt17 import read_msmt17


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    Image.new("RGB", (4, 8), (200, 30, 30)).save(path, fmt)


# ------------------------------------------------------------------ Market-1501
MARKET_TRAIN = [
    "0007_c3s3_077419_03.jpg",
    "0002_c1s1_000451_03.jpg",
    "0002_c2s1_000301_01.jpg",
    "0010_c6s4_002427_02.jpg",
    "0010_c6s4_002452_02.jpg",
]
MARKET_QUERY = ["0001_c1s1_001051_00.jpg", "0003_c2s1_000076_00.jpg"]
MARKET_GALLERY = [
    "0001_c2s1_000301_01.jpg",
    "0001_c1s1_001051_03.jpg",  # same pid + camera as a query (protocol junk, still listed)
    "0003_c4s2_033413_02.jpg",
    "0000_c1s1_000151_01.jpg",  # distractors
    "0000_c5s1_000401_04.jpg",
    "-1_c1s1_000401_03.jpg",  # junk: dropped
    "-1_c3s1_000551_01.jpg",
]


def make_market(base: Path) -> Path:
    data = base / "Market-1501-v15.09.15"
    for split, names in (
        ("bounding_box_train", MARKET_TRAIN),
        ("query", MARKET_QUERY),
        ("bounding_box_test", MARKET_GALLERY),
    ):
        for name in names:
            _img(data / split / name)
    (data / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0\1")  # real archive has these
    return data


def test_market_counts_relabel_junk_and_distractors(tmp_path: Path) -> None:
    data = make_market(tmp_path)
    ds = read_market1501(tmp_path)
    assert ds.root == data
    assert ds.summary() == {
        "dataset": "market1501",
        "train_images": 5, "train_ids": 3, "train_cams": 4,
        "query_images": 2, "query_ids": 2, "query_cams": 2,
        "gallery_images": 5, "gallery_ids": 3, "gallery_cams": 4,
    }
    # train: sorted by name, pids 2, 7, 10 -> 0, 1, 2; camid = C - 1
    assert [(s.path.name, s.pid, s.camid) for s in ds.train] == [
        ("0002_c1s1_000451_03.jpg", 0, 0),
        ("0002_c2s1_000301_01.jpg", 0, 1),
        ("0007_c3s3_077419_03.jpg", 1, 2),
        ("0010_c6s4_002427_02.jpg", 2, 5),
        ("0010_c6s4_002452_02.jpg", 2, 5),
    ]
    assert ds.num_train_pids == 3
    # query/gallery keep original pids; junk (-1) gone, distractors (0) kept
    assert [(s.pid, s.camid) for s in ds.query] == [(1, 0), (3, 1)]
    assert sorted(s.pid for s in ds.gallery) == [0, 0, 1, 1, 3]
    assert all(s.path.suffix == ".jpg" and s.path.is_file() for s in ds.gallery)
    assert {s.camid for s in ds.gallery if s.pid == 0} == {0, 4}


@pytest.mark.parametrize("layout", ["itself", "parent", "torchreid"])
def test_market_root_forms(tmp_path: Path, layout: str) -> None:
    base = tmp_path / "market1501" if layout == "torchreid" else tmp_path
    data = make_market(base)
    root = {"itself": data, "parent": tmp_path, "torchreid": tmp_path}[layout]
    ds = read_market1501(root)
    assert ds.root == data
    assert len(ds.train) == 5 and len(ds.gallery) == 5


def test_market_missing_split_folder(tmp_path: Path) -> None:
    data = make_market(tmp_path)
    for p in (data / "query").iterdir():
        p.unlink()
    (data / "query").rmdir()
    with pytest.raises(DatasetError) as err:
        read_market1501(tmp_path)
    assert err.value.path == data / "query"
    assert str(data / "query") in str(err.value)


def test_market_no_dataset_folder(tmp_path: Path) -> None:
    (tmp_path / "something_else").mkdir()
    with pytest.raises(DatasetError, match="bounding_box_train"):
        read_market1501(tmp_path)


@pytest.mark.parametrize(
    "bad_name, field",
    [("abc_c1s1_000001_01.jpg", "name"), ("0002_c7s1_000001_01.jpg", "camera"),
     ("0002_c0s1_000001_01.jpg", "camera"), ("1502_c1s1_000001_01.jpg", "pid"),
     ("-2_c1s1_000001_01.jpg", "pid")],
)
def test_market_bad_file_name(tmp_path: Path, bad_name: str, field: str) -> None:
    data = make_market(tmp_path)
    _img(data / "bounding_box_train" / bad_name)
    with pytest.raises(DatasetError) as err:
        read_market1501(tmp_path)
    assert err.value.path.name == bad_name
    assert err.value.field == field
    assert bad_name in str(err.value)


def test_market_split_with_only_junk_is_empty(tmp_path: Path) -> None:
    data = make_market(tmp_path)
    for p in (data / "query").iterdir():
        p.unlink()
    _img(data / "query" / "-1_c1s1_000401_03.jpg")
    with pytest.raises(DatasetError, match="empty split") as err:
        read_market1501(tmp_path)
    assert err.value.path == data / "query"


# ------------------------------------------------------------------ DukeMTMC-reID
def make_duke(base: Path) -> Path:
    data = base / "DukeMTMC-reID"
    for name in ["0005_c2_f0046985.jpg", "0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg"]:
        _img(data / "bounding_box_train" / name)
    for name in ["0008_c8_f0017063.jpg", "0009_c1_f0041573.jpg"]:
        _img(data / "query" / name)
    for name in ["0008_c2_f0044637.jpg", "0009_c6_f0029745.jpg", "7140_c7_f0111111.jpg"]:
        _img(data / "bounding_box_test" / name)
    return data


def test_duke_eight_cameras_and_large_pids(tmp_path: Path) -> None:
    data = make_duke(tmp_path)
    ds = read_dukemtmc(tmp_path)
    assert ds.root == data and ds.name == "dukemtmcreid"
    assert [(s.pid, s.camid) for s in ds.train] == [(0, 1), (0, 4), (1, 1)]
    assert [(s.pid, s.camid) for s in ds.query] == [(8, 7), (9, 0)]
    assert sorted(s.pid for s in ds.gallery) == [8, 9, 7140]
    # the same tree is rejected by the Market reader (camera c8 > 6 and pid 7140 > 1501)
    with pytest.raises(DatasetError):
        read_market1501(data)


def test_duke_camera_nine_rejected(tmp_path: Path) -> None:
    data = make_duke(tmp_path)
    _img(data / "query" / "0010_c9_f0000001.jpg")
    with pytest.raises(DatasetError, match="c1..c8"):
        read_dukemtmc(data)


# ------------------------------------------------------------------ CUHK03-NP
def make_cuhk03_np(base: Path) -> Path:
    top = base / "cuhk03-np"
    for variant, extra in (("labeled", []), ("detected", ["0003_c2_5.png"])):
        d = top / variant
        for name in ["0003_c1_1.png", "0003_c2_6.png", "0001_c1_2.png"] + extra:
            _img(d / "bounding_box_train" / name)
        for name in ["0002_c1_1.png", "0002_c2_6.png"]:
            _img(d / "query" / name)
        for name in ["0002_c1_3.png", "0002_c2_8.png", "0004_c1_1.png"]:
            _img(d / "bounding_box_test" / name)
        _img(d / "bounding_box_train" / "0009_c1_1.jpg")  # not .png: ignored
    return top


@pytest.mark.parametrize("use_top", [False, True])
def test_cuhk03_np_variants(tmp_path: Path, use_top: bool) -> None:
    top = make_cuhk03_np(tmp_path)
    root = top if use_top else tmp_path
    lab = read_cuhk03_np(root)
    det = read_cuhk03_np(root, variant="detected")
    assert lab.root == top / "labeled" and det.root == top / "detected"
    assert lab.name == "cuhk03_np_labeled"
    assert (len(lab.train), len(det.train)) == (3, 4)
    assert [(s.path.name, s.pid, s.camid) for s in lab.train] == [
        ("0001_c1_2.png", 0, 0), ("0003_c1_1.png", 1, 0), ("0003_c2_6.png", 1, 1),
    ]
    assert lab.summary()["query_cams"] == 2 and lab.summary()["gallery_ids"] == 2


def test_cuhk03_np_variant_folder_itself_and_errors(tmp_path: Path) -> None:
    top = make_cuhk03_np(tmp_path)
    assert read_cuhk03_np(top / "detected", "detected").root == top / "detected"
    with pytest.raises(DatasetError):  # folder name says detected, variant asks labeled
        read_cuhk03_np(top / "detected", "labeled")
    with pytest.raises(ValueError, match="variant"):
        read_cuhk03_np(top, "classic")
    _img(top / "labeled" / "query" / "0005_c3_1.png")  # CUHK03-NP has 2 cameras
    with pytest.raises(DatasetError, match="c1..c2"):
        read_cuhk03_np(top)


# ------------------------------------------------------------------ MSMT17
MSMT_LISTS = {
    # list file: (folder, [(pid folder, file name, pid)])
    "list_train.txt": ("train", [(0, "0000_000_01_0303morning_0015_0.jpg", 0),
                                 (0, "0000_001_05_0303morning_0030_1.jpg", 0),
                                 (2, "0002_003_15_0303noon_0100_0.jpg", 2)]),
    "list_val.txt": ("train", [(1, "0001_004_07_0303afternoon_0017_0.jpg", 1)]),
    "list_query.txt": ("test", [(0, "0000_000_02_0303morning_0029_0.jpg", 0)]),
    "list_gallery.txt": ("test", [(0, "0000_010_03_0303morning_0200_0.jpg", 0),
                                  (5, "0005_011_12_0303afternoon_0007_1.jpg", 5)]),
}


def make_msmt17(base: Path, version: str = "MSMT17_V1") -> Path:
    data = base / version
    names = {"train": "train", "test": "test"}
    if version == "MSMT17_V2":
        names = {"train": "mask_train_v2", "test": "mask_test_v2"}
    for list_name, (folder, rows) in MSMT_LISTS.items():
        lines = []
        for pid_dir, fname, pid in rows:
            rel = f"{pid_dir:04d}/{fname}"
            _img(data / names[folder] / rel)
            lines.append(f"{rel} {pid}\n")
        (data / list_name).write_text("".join(lines))
    return data


@pytest.mark.parametrize("version", ["MSMT17_V1", "MSMT17_V2"])
def test_msmt17_lists_cameras_and_val(tmp_path: Path, version: str) -> None:
    data = make_msmt17(tmp_path / "msmt17", version)
    ds = read_msmt17(tmp_path)  # torchreid-style parent of msmt17/MSMT17_V*
    assert ds.root == data
    train_dir = data / ("train" if version == "MSMT17_V1" else "mask_train_v2")
    # default: val NOT in train (torchreid/fast-reid); pids 0, 2 relabelled to 0, 1
    assert [(s.path, s.pid, s.camid) for s in ds.train] == [
        (train_dir / "0000/0000_000_01_0303morning_0015_0.jpg", 0, 0),
        (train_dir / "0000/0000_001_05_0303morning_0030_1.jpg", 0, 4),
        (train_dir / "0002/0002_003_15_0303noon_0100_0.jpg", 1, 14),
    ]
    assert all(s.path.is_file() for s in ds.train + ds.query + ds.gallery)
    assert [(s.pid, s.camid) for s in ds.query] == [(0, 1)]
    assert [(s.pid, s.camid) for s in ds.gallery] == [(0, 2), (5, 11)]
    with_val = read_msmt17(data, include_val=True)
    assert [s.pid for s in with_val.train] == [0, 0, 2, 1]  # pids 0, 2, 1 -> 0, 2, 1 sorted
    assert with_val.summary()["train_ids"] == 3 and with_val.summary()["train_images"] == 4


def test_msmt17_bad_list_line(tmp_path: Path) -> None:
    data = make_msmt17(tmp_path)
    with (data / "list_query.txt").open("a") as f:
        f.write("\n0000/0000_000_02_0303morning_0031_0.jpg 0 extra\n")
    with pytest.raises(DatasetError) as err:
        read_msmt17(data)
    assert err.value.path == data / "list_query.txt"
    assert err.value.field == "line 3"  # the blank line 2 is skipped but counted
    assert "list_query.txt: line 3:" in str(err.value)


@pytest.mark.parametrize("line", ["0000/0000_000_xx_morning_0_0.jpg 0", "0000/0000.jpg 0",
                                  "0000/0000_000_16_a_0_0.jpg 0", "0000/0000_000_01_a_0_0.jpg x"])
def test_msmt17_bad_camera_or_pid(tmp_path: Path, line: str) -> None:
    data = make_msmt17(tmp_path)
    (data / "list_gallery.txt").write_text(line + "\n")
    with pytest.raises(DatasetError) as err:
        read_msmt17(data)
    assert err.value.path == data / "list_gallery.txt" and err.value.field == "line 1"


def test_msmt17_missing_folder_and_list(tmp_path: Path) -> None:
    data = make_msmt17(tmp_path)
    (data / "list_gallery.txt").unlink()
    with pytest.raises(DatasetError) as err:
        read_msmt17(data)
    assert err.value.path == data / "list_gallery.txt"
    (data / "test").rename(data / "test_moved")
    with pytest.raises(DatasetError) as err:
        read_msmt17(data)
    assert err.value.path == data / "test"
    (data / "list_gallery.txt").write_text("")
    (data / "test_moved").rename(data / "test")
    with pytest.raises(DatasetError, match="empty split") as err:
        read_msmt17(data)
    assert err.value.path == data / "list_gallery.txt"
