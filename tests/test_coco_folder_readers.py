"""COCO person reader, plain-folder readers and image verification."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from personsearch.data.coco import read_coco_persons
from personsearch.data.errors import DatasetError
from personsearch.data.folder import list_images, read_identity_folder
from personsearch.data.images import read_image, verify_image
from personsearch.data.records import UNLABELED


def _img(path: Path, size: tuple[int, int] = (4, 8), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".bmp": "BMP"}.get(path.suffix.lower(), "JPEG")
    Image.new(mode, size, 90 if mode == "L" else (10, 200, 30)).save(path, fmt)


# ------------------------------------------------------------------ COCO
def coco_dict() -> dict:
    return {
        "images": [
            {"id": 7, "file_name": "b.jpg", "width": 64, "height": 48},
            {"id": 3, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 9, "file_name": "empty.jpg", "width": 64, "height": 48},  # no person
        ],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 5, "bbox": [1, 2, 3, 4], "iscrowd": 0},
            {"id": 2, "image_id": 3, "category_id": 5, "bbox": [10.5, 20, 5, 8.25], "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [0, 0, 9, 9], "iscrowd": 0},  # car
            {"id": 4, "image_id": 7, "category_id": 5, "bbox": [4, 6, 10, 20]},  # no iscrowd key
            {"id": 5, "image_id": 7, "category_id": 5, "bbox": [4, 6, 0, 20]},  # zero width
            {"id": 6, "image_id": 9, "category_id": 2, "bbox": [1, 1, 5, 5]},
        ],
        "categories": [{"id": 2, "name": "car"}, {"id": 5, "name": "person"}],
    }


def write_coco(tmp_path: Path, data: dict, with_images_dir: bool = True) -> Path:
    ann = tmp_path / "annotations" / "instances.json"
    ann.parent.mkdir(parents=True)
    ann.write_text(json.dumps(data))
    if with_images_dir:
        (tmp_path / "images").mkdir()
    return ann


def test_coco_persons_boxes_crowd_and_empty_images(tmp_path: Path) -> None:
    ds = read_coco_persons(write_coco(tmp_path, coco_dict()))
    assert ds.root == tmp_path / "images"
    assert [s.path for s in ds.images] == [tmp_path / "images" / n for n in
                                           ("a.jpg", "b.jpg", "empty.jpg")]  # sorted by id
    a, b, empty = ds.images
    np.testing.assert_array_equal(a.boxes, [[1, 2, 4, 6], [10.5, 20, 15.5, 28.25]])
    assert a.boxes.dtype == np.float32
    np.testing.assert_array_equal(a.ignore, [False, True])
    np.testing.assert_array_equal(b.boxes, [[4, 6, 14, 26]])  # car and zero-width box dropped
    np.testing.assert_array_equal(b.ignore, [False])
    assert empty.boxes.shape == (0, 4) and empty.boxes.dtype == np.float32
    assert empty.pids.shape == (0,) and empty.ignore is not None and empty.ignore.shape == (0,)
    assert all(s.pids.dtype == np.int64 and (s.pids == UNLABELED).all() for s in ds.images)
    assert ds.summary() == {"dataset": "instances", "images": 3, "boxes": 3,
                            "images_without_persons": 1}


def test_coco_image_root_default_and_explicit(tmp_path: Path) -> None:
    ann = write_coco(tmp_path, coco_dict(), with_images_dir=False)
    assert read_coco_persons(ann).images[0].path == ann.parent / "a.jpg"  # no sibling images/
    other = tmp_path / "frames"
    other.mkdir()
    assert read_coco_persons(ann, image_root=other).images[0].path == other / "a.jpg"
    with pytest.raises(DatasetError) as err:
        read_coco_persons(ann, image_root=tmp_path / "nope")
    assert err.value.path == tmp_path / "nope"


def test_coco_without_categories_uses_id_1(tmp_path: Path) -> None:
    data = coco_dict()
    del data["categories"]
    data["annotations"][2]["category_id"] = 1  # the "car" box becomes person id 1
    ds = read_coco_persons(write_coco(tmp_path, data))
    assert [len(s.boxes) for s in ds.images] == [0, 1, 0]


def test_coco_missing_annotations_key(tmp_path: Path) -> None:
    data = coco_dict()
    del data["annotations"]
    ann = write_coco(tmp_path, data)
    with pytest.raises(DatasetError) as err:
        read_coco_persons(ann)
    assert err.value.path == ann and err.value.field == "annotations"
    assert str(ann) in str(err.value) and "annotations" in str(err.value)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["annotations"][0].pop("bbox"), "annotations[0].bbox"),
        (lambda d: d["annotations"][1].update(bbox=[1, 2, 3]), "annotations[1].bbox"),
        (lambda d: d["annotations"][0].update(image_id=99), "annotations[0].image_id"),
        (lambda d: d["images"][1].pop("file_name"), "images[1].file_name"),
        (lambda d: d["images"][1].update(id=7), "images[1].id"),
        (lambda d: d["categories"].pop(), "categories"),  # no person category left
    ],
)
def test_coco_bad_fields_named(tmp_path: Path, mutate, field: str) -> None:
    data = coco_dict()
    mutate(data)
    ann = write_coco(tmp_path, data)
    with pytest.raises(DatasetError) as err:
        read_coco_persons(ann)
    assert err.value.path == ann and err.value.field == field


def test_coco_invalid_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(DatasetError, match="invalid JSON") as err:
        read_coco_persons(bad)
    assert err.value.path == bad
    with pytest.raises(DatasetError) as err:
        read_coco_persons(tmp_path / "missing.json")
    assert err.value.path == tmp_path / "missing.json"


# ------------------------------------------------------------------ folders
def test_read_identity_folder(tmp_path: Path) -> None:
    for rel in ["b_person/x_c2_1.jpg", "b_person/a_c1_9.JPG", "10/p_c3_0.png", "2/q_c1_0.bmp"]:
        _img(tmp_path / rel)
    (tmp_path / "2" / "notes.txt").write_text("x")
    (tmp_path / "empty_dir").mkdir()
    _img(tmp_path / "loose.jpg")  # directly in root: ignored
    got = read_identity_folder(tmp_path)
    # folders sorted as strings: "10" < "2" < "b_person"; empty_dir has no image
    assert [(s.path.relative_to(tmp_path).as_posix(), s.pid, s.camid) for s in got] == [
        ("10/p_c3_0.png", 0, 0), ("2/q_c1_0.bmp", 1, 0),
        ("b_person/a_c1_9.JPG", 2, 0), ("b_person/x_c2_1.jpg", 2, 0),
    ]
    cams = read_identity_folder(tmp_path, camera_regex=r"_c(\d+)_")
    assert [s.camid for s in cams] == [3, 1, 1, 2]
    with pytest.raises(DatasetError) as err:
        read_identity_folder(tmp_path, camera_regex=r"_cam(\d)")
    assert err.value.path == tmp_path / "10" / "p_c3_0.png" and err.value.field == "camera"


def test_read_identity_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        read_identity_folder(tmp_path / "missing")
    _img(tmp_path / "flat.jpg")
    with pytest.raises(DatasetError, match="no identity folders"):
        read_identity_folder(tmp_path)


def test_list_images_nested_sorted_case_insensitive(tmp_path: Path) -> None:
    for rel in ["z.PNG", "a/2.jpeg", "a/10.jpg", "a/b/c.BMP", "m.Jpg", "a-1.jpg"]:
        _img(tmp_path / rel)
    (tmp_path / "a" / "readme.md").write_text("x")
    (tmp_path / "folder.jpg").mkdir()  # a directory with an image-like name
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    # sorted by path components (a folder's files stay together: "a/..." before "a-1.jpg")
    assert got == ["a/10.jpg", "a/2.jpeg", "a/b/c.BMP", "a-1.jpg", "m.Jpg", "z.PNG"]
    with pytest.raises(DatasetError, match="no images"):
        list_images(_empty(tmp_path))
    with pytest.raises(DatasetError):
        list_images(tmp_path / "missing")


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    (d / "x.txt").write_text("no image")
    return d


# ------------------------------------------------------------------ images
def _noise_jpeg(path: Path) -> bytes:
    arr = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_verify_image_accepts_good_rejects_truncated(tmp_path: Path) -> None:
    good = tmp_path / "0001_c1s1_000001_00.jpg"
    data = _noise_jpeg(good)
    verify_image(good)  # no error
    trunc = tmp_path / "0001_c1s1_000002_00.jpg"
    trunc.write_bytes(data[: len(data) // 2])
    with Image.open(trunc) as im:  # PIL's verify() alone does not notice
        im.verify()
    with pytest.raises(DatasetError, match="truncated") as err:
        verify_image(trunc)
    assert err.value.path == trunc and str(trunc) in str(err.value)
    with pytest.raises(DatasetError) as err:
        read_image(trunc)
    assert err.value.path == trunc


def test_verify_image_not_an_image_and_missing(tmp_path: Path) -> None:
    txt = tmp_path / "fake.jpg"
    txt.write_text("definitely not a jpeg")
    with pytest.raises(DatasetError) as err:
        verify_image(txt)
    assert err.value.path == txt
    with pytest.raises(DatasetError, match="missing") as err:
        verify_image(tmp_path / "gone.png")
    assert err.value.path == tmp_path / "gone.png"
    png = tmp_path / "broken.png"
    _img(png, size=(16, 16))
    raw = bytearray(png.read_bytes())
    raw[45] ^= 0xFF  # flip a byte inside the IDAT data: CRC check fails
    png.write_bytes(bytes(raw))
    with pytest.raises(DatasetError):
        verify_image(png)


def test_read_image_rgb(tmp_path: Path) -> None:
    gray = tmp_path / "g.png"
    _img(gray, size=(8, 4), mode="L")
    im = read_image(gray)
    assert im.mode == "RGB" and im.size == (8, 4)
    assert im.getpixel((0, 0)) == (90, 90, 90)
