"""Robustness: property-based fuzzing of every dataset reader's parsers. Whatever the input, a reader
returns well-formed records (finite boxes with area, valid ids) or raises a DatasetError naming the
file; never another exception, never NaN or inf."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.io import loadmat, savemat

from personsearch.data.coco import read_coco_persons
from personsearch.data.cuhk_sysu import read_cuhk_sysu
from personsearch.data.errors import DatasetError
from personsearch.data.folder import _camid
from personsearch.data.market_style import MARKET_PATTERN, parse_market_name
from personsearch.data.msmt17 import read_msmt17_list
from personsearch.data.prw import _read_frame, _read_queries
from personsearch.data.records import UNLABELED, SceneAnnotation
from personsearch.synthetic.write_cuhk_sysu import write_cuhk_sysu_annotations

pytestmark = pytest.mark.robustness
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORK = Path(tempfile.mkdtemp(prefix="robust_readers_"))
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))


def _finite_boxes(boxes: np.ndarray) -> None:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    assert np.isfinite(boxes).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


# -- Market-style names (Market-1501, DukeMTMC, CUHK03-NP) -----------------------------------------
@FUZZ
@given(st.one_of(st.text(max_size=30), st.from_regex(r"-?\d{1,5}_c\d{1,2}s\d_\d{6}_\d{2}\.jpg", fullmatch=True)))
def test_market_names_parse_or_raise_a_named_error(name):
    path = Path("/data") / (name.replace("/", "_").replace("\0", "") or "x")
    try:
        pid, camid = parse_market_name(path, MARKET_PATTERN, num_cams=6, max_pid=1501)
    except DatasetError as err:
        assert err.path == path and err.field in ("name", "pid", "camera")
        return
    assert -1 <= pid <= 1501 and 0 <= camid < 6


# -- MSMT17 list files -----------------------------------------------------------------------------
_LIST_LINE = st.one_of(st.text(max_size=40), st.builds(
    lambda pid, cam, pad: f"{pid:04d}/{pid:04d}_{cam}_{pad}.jpg {pid}", st.integers(-3, 5000), st.integers(-2, 20),
    st.text("0123456789_ab", max_size=6)))


@FUZZ
@given(st.lists(_LIST_LINE, max_size=6), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_msmt17_list_files_parse_or_raise_a_named_error(lines, newline, latin1):
    path = WORK / "list_train.txt"
    text = newline.join(lines)
    path.write_bytes(text.encode("latin-1", "replace") if latin1 else text.encode("utf-8", "replace"))
    try:
        samples = read_msmt17_list(path, WORK / "images")
    except DatasetError as err:
        assert err.path == path
        return
    assert samples and all(s.pid >= 0 and 0 <= s.camid < 15 for s in samples)


# -- identity folders ------------------------------------------------------------------------------
@FUZZ
@given(st.text(max_size=20), st.sampled_from([r"c(\d+)", r"cam(\d)", r"_(\w+)_"]))
def test_folder_camera_regex_reads_a_camera_or_raises(name, regex):
    path = Path("/data/0001") / (name.replace("/", "_") or "x")
    try:
        camid = _camid(path, re.compile(regex))
    except DatasetError as err:
        assert err.path == path
        return
    assert isinstance(camid, int) and camid >= 0


# -- COCO JSON ---------------------------------------------------------------------------------------
_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                               st.text(max_size=5)),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                     max_leaves=12)
_ID = st.one_of(st.integers(0, 3), st.text("ab", max_size=2), st.none(), st.floats(0, 3), st.booleans(),
                st.lists(st.integers(0, 2), max_size=2))


@st.composite
def _coco(draw):
    """Mostly COCO-shaped documents with fields of random JSON types."""
    images = draw(st.lists(st.fixed_dictionaries({"id": _ID, "file_name": st.one_of(st.text(max_size=6), _JSON)}),
                           max_size=3))
    anns = draw(st.lists(st.fixed_dictionaries({
        "image_id": _ID, "category_id": _ID,
        "bbox": st.one_of(st.lists(NUMBERS, min_size=0, max_size=5), _JSON, st.text(max_size=4)),
        "iscrowd": st.one_of(st.integers(0, 2), st.booleans(), st.text(max_size=2), st.floats(0, 1))}), max_size=4))
    cats = draw(st.one_of(st.just([{"id": 1, "name": "person"}]),
                          st.lists(st.fixed_dictionaries({"id": _ID, "name": st.one_of(st.just("person"), _JSON)}),
                                   max_size=2)))
    doc = {"images": images, "annotations": anns, "categories": cats}
    return draw(st.one_of(st.just(doc), _JSON))


@FUZZ
@given(_coco())
def test_coco_json_parses_or_raises_a_named_error(doc):
    path = WORK / "coco" / "instances.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc))
    try:
        dataset = read_coco_persons(path, image_root=WORK)
    except DatasetError as err:
        assert err.path == path
        return
    for scene in dataset.images:
        _finite_boxes(scene.boxes)
        assert len(scene.ignore) == len(scene.boxes)


def test_deeply_nested_coco_json_is_a_named_error():
    path = WORK / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DatasetError, match="nested too deeply"):
        read_coco_persons(path, image_root=WORK)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["categories"][0].update(id="x"), None),
    (lambda d: d["categories"][0].update(id=[5]), "categories[0].id"),
    (lambda d: d["categories"][0].update(id=5.5), "categories[0].id"),
    (lambda d: d["images"][0].update(id={"a": 1}), "images[0].id"),
    (lambda d: d["annotations"][0].update(category_id=[1]), "annotations[0].category_id"),
    (lambda d: d["annotations"][0].update(image_id=None), "annotations[0].image_id"),
    (lambda d: d["annotations"][0].update(bbox="1234"), "annotations[0].bbox"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, True, 4]), "annotations[0].bbox"),
    (lambda d: d["annotations"][0].update(iscrowd="0"), "annotations[0].iscrowd"),
    (lambda d: d["images"][0].update(file_name=7), "images[0].file_name"),
])
def test_coco_ids_of_the_wrong_json_type_name_the_file_and_field(mutate, field):
    doc = {"images": [{"id": 1, "file_name": "a.jpg"}],
           "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
           "categories": [{"id": 1, "name": "person"}]}
    mutate(doc)
    path = WORK / "typed.json"
    path.write_text(json.dumps(doc))
    try:
        read_coco_persons(path, image_root=WORK)
    except DatasetError as err:
        assert err.path == path and (field is None or err.field == field), str(err)
    else:
        assert field is None  # a string category id is allowed (then no annotation is a person)


# -- PRW: annotation matrices and query_info.txt -----------------------------------------------------
@FUZZ
@given(st.lists(st.lists(NUMBERS, min_size=5, max_size=5), max_size=4), st.sampled_from(["box_new", "anno_file"]))
def test_prw_annotation_matrices_parse_or_raise(rows, key):
    path = WORK / "c1s1_000001.jpg.mat"
    savemat(path, {key: np.asarray(rows, np.float64).reshape(-1, 5)})
    try:
        boxes, ids = _read_frame(path, (320, 240))
    except DatasetError as err:
        assert err.path == path
        return
    _finite_boxes(boxes)
    assert ((ids >= 1) | (ids == -2)).all()
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 2] <= 320).all() and (boxes[:, 3] <= 240).all()


_QUERY_LINE = st.one_of(st.text(max_size=40), st.builds(
    lambda pid, nums, frame: " ".join([str(pid), *map(str, nums), frame]), st.integers(-2, 99),
    st.lists(NUMBERS, min_size=4, max_size=4), st.sampled_from(["c1s1_000001", "c2s1_000002.jpg", "c9s9_000009"])))


@FUZZ
@given(st.lists(_QUERY_LINE, max_size=5), st.sampled_from(["\n", "\r\n"]))
def test_prw_query_files_parse_or_raise(lines, newline):
    path = WORK / "query_info.txt"
    path.write_bytes(newline.join(lines).encode("utf-8", "replace"))
    sizes = {"c1s1_000001.jpg": (320, 240), "c2s1_000002.jpg": (320, 240)}
    try:
        queries = _read_queries(path, WORK, sizes)
    except DatasetError as err:
        assert err.path == path
        return
    for query in queries:
        _finite_boxes(query.box)


# -- CUHK-SYSU: boxes in Images.mat ------------------------------------------------------------------
def _cuhk(root: Path) -> Path:
    scene = lambda name, boxes, pids: SceneAnnotation(Path(name), np.array(boxes, np.float32),  # noqa: E731
                                                      np.array(pids, np.int64), -1, None)
    train = [scene("s1.jpg", [[10, 20, 50, 120], [60, 10, 90, 100]], [7, UNLABELED]), scene("s2.jpg", [[5, 5, 40, 90]], [7])]
    test = [scene("t1.jpg", [[10, 10, 40, 90]], [20]), scene("t2.jpg", [[20, 10, 60, 100]], [20]),
            scene("t3.jpg", [[1, 2, 31, 62]], [UNLABELED])]
    (root / "Image" / "SSM").mkdir(parents=True, exist_ok=True)
    write_cuhk_sysu_annotations(root, train, test, (2,), np.random.default_rng(0))
    return root


CUHK = _cuhk(WORK / "cuhk")
IMAGES_MAT = CUHK / "annotation" / "Images.mat"
PRISTINE = IMAGES_MAT.read_bytes()


def _set_box(image: int, box: int, xywh) -> None:
    data = loadmat(IMAGES_MAT)
    boxes = data["Img"][0, image]["box"]
    boxes[0, box]["idlocate"] = np.asarray(xywh, np.float64).reshape(1, 4)
    savemat(IMAGES_MAT, {"Img": data["Img"]})


@FUZZ
@given(st.integers(0, 4), st.lists(NUMBERS, min_size=4, max_size=4))
def test_cuhk_sysu_boxes_are_finite_or_a_named_error(image, xywh):
    IMAGES_MAT.write_bytes(PRISTINE)
    data = loadmat(IMAGES_MAT)
    names = [str(rec["imname"].flat[0]) for rec in data["Img"][0]]
    _set_box(image, 0, xywh)
    try:
        dataset = read_cuhk_sysu(CUHK)
    except DatasetError as err:
        assert err.path.name in ("Images.mat", "Train.mat", "TestG2.mat")
        return
    finally:
        IMAGES_MAT.write_bytes(PRISTINE)
    for scene in dataset.train + dataset.gallery:
        _finite_boxes(scene.boxes)
    for query in dataset.queries:
        _finite_boxes(query.box)
    assert names


@pytest.mark.parametrize("xywh", [[np.nan, 20, 40, 100], [10, 20, np.inf, 100], [10, -np.inf, 40, 100]])
def test_cuhk_sysu_non_finite_boxes_are_named_errors(xywh):
    try:
        _set_box(0, 1, xywh)  # s1.jpg's unlabeled passer-by: nothing else refers to it
        with pytest.raises(DatasetError, match=r"Images\.mat: Img\[0\]\.box\[1\]\.idlocate: box .* is not finite"):
            read_cuhk_sysu(CUHK)
    finally:
        IMAGES_MAT.write_bytes(PRISTINE)


def test_a_bad_box_in_images_mat_is_blamed_on_images_mat():
    try:
        _set_box(0, 0, [10, 20, 0, 100])  # s1.jpg's labelled person, now w = 0: dropped, yet Train.mat labels it
        with pytest.raises(DatasetError) as info:
            read_cuhk_sysu(CUHK)
    finally:
        IMAGES_MAT.write_bytes(PRISTINE)
    assert info.value.path.name == "Images.mat" and info.value.field == "Img[0].box[0].idlocate"
    assert "w or h <= 0" in str(info.value) and "Train.mat" in str(info.value)
