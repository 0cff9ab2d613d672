"""``search(query_image, query_box, gallery)``: ranking and the errors users get for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from personsearch.data.errors import DatasetError
from personsearch.pipelines import check_boxes, embed_gallery, rank_gallery, search


class ColourSearcher:
    """Fake pipeline: one person per image (its left half), embedded by its mean colour."""

    def __call__(self, image):
        rgb = np.asarray(image)
        h, w = rgb.shape[:2]
        box = np.array([[0, 0, w / 2, h]], np.float32)
        return {"boxes": box, "scores": np.ones(1, np.float32), "embeddings": self.extract_query(rgb, box)}

    def extract_query(self, image, boxes):
        rgb = np.asarray(image, np.float32)
        feats = [rgb[int(y1):int(y2), int(x1):int(x2)].reshape(-1, 3).mean(0) for x1, y1, x2, y2 in boxes]
        feats = np.asarray(feats) + 1.0
        return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def _image(colour) -> np.ndarray:
    return np.full((40, 60, 3), colour, np.uint8)


@pytest.fixture()
def gallery():
    return {"red.jpg": _image((250, 10, 10)), "green.jpg": _image((10, 250, 10)), "blue.jpg": _image((10, 10, 250))}


def test_ranks_the_matching_person_first(gallery, tmp_path):
    query = tmp_path / "query.png"
    Image.fromarray(_image((10, 240, 20))).save(query)
    hits = search(ColourSearcher(), query, [0, 0, 30, 40], gallery, top_k=2)
    assert hits[0].image == "green.jpg"
    assert len(hits) == 2 and hits[0].similarity >= hits[1].similarity
    embedded = embed_gallery(ColourSearcher(), gallery)
    assert search(ColourSearcher(), query, [0, 0, 30, 40], embedded, top_k=1)[0].image == "green.jpg"


@pytest.mark.parametrize("box, message", [
    ([0, 0, 0, 10], "zero area"),
    ([10, 10, 5, 20], "zero area"),
    ([100, 0, 120, 10], "outside the 60x40 image"),
    ([0, 0, float("nan"), 10], "not finite"),
    ([0, 0, 10], "x1, y1, x2, y2"),
])
def test_bad_query_box_is_named(gallery, box, message):
    with pytest.raises(ValueError, match=rf"query_box.*{message}|{message}"):
        search(ColourSearcher(), _image((1, 2, 3)), box, gallery)


def test_missing_or_corrupt_query_image_names_the_file(gallery, tmp_path):
    with pytest.raises(DatasetError, match="missing.jpg"):
        search(ColourSearcher(), tmp_path / "missing.jpg", [0, 0, 5, 5], gallery)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="bad.jpg"):
        search(ColourSearcher(), bad, [0, 0, 5, 5], gallery)


def test_empty_gallery_and_dimension_mismatch_are_clear_errors():
    with pytest.raises(ValueError, match="gallery is empty"):
        search(ColourSearcher(), _image((1, 2, 3)), [0, 0, 5, 5], {})
    outputs = {"cam1.jpg": {"boxes": np.zeros((1, 4)), "scores": np.ones(1), "embeddings": np.ones((1, 8))}}
    with pytest.raises(ValueError, match="cam1.jpg.*dimension 3"):
        rank_gallery(np.ones(3), outputs)
    with pytest.raises(ValueError, match="not finite"):
        rank_gallery(np.array([np.nan, 0, 0]), outputs)


def test_images_without_people_are_fine_and_boxes_are_checked_against_the_image():
    outputs = {"empty.jpg": {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "embeddings": np.zeros((0, 3))}}
    assert rank_gallery(np.ones(3), outputs) == []
    assert check_boxes([[-5, -5, 10, 10]], 20, 20).shape == (1, 4)  # partly outside: kept (clipped later)
    with pytest.raises(ValueError, match=r"boxes\[1\]"):
        check_boxes([[0, 0, 5, 5], [0, 0, 5, 0]], 20, 20)
