"""Zero-training two-step search on real video: SSDLite detector + ImageNet MobileNetV2 embedder."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from system_files import VTEST, require_vtest

from personsearch.pipelines import TwoStepSearcher



def _frames(indices: list[int]) -> list[np.ndarray]:
    import cv2

    video = cv2.VideoCapture(str(VTEST))
    frames, wanted, i = {}, set(indices), 0
    while len(frames) < len(wanted):
        ok, frame = video.read()
        if not ok:
            break
        if i in wanted:
            frames[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        i += 1
    video.release()
    return [frames[i] for i in indices]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


@pytest.fixture(scope="module")
def searcher():
    from personsearch.detection import SsdlitePersonDetector
    from personsearch.models import build_reid_model

    embedder = build_reid_model("mobilenetv2", 0, weights="imagenet", neck="none")
    return TwoStepSearcher(SsdlitePersonDetector(score_threshold=0.3).detect, embedder, crop_size=(256, 128))


def test_same_person_a_few_frames_apart_is_more_similar_than_other_people(searcher):
    require_vtest()
    same, other = [], []
    for start in (60, 150, 200, 300, 400, 500, 600, 700):
        first, later = (searcher(f) for f in _frames([start, start + 4]))
        assert len(first["boxes"]) >= 2 and len(later["boxes"]) >= 2  # the walking people are found
        overlap = _iou(first["boxes"], later["boxes"])
        sims = first["embeddings"] @ later["embeddings"].T
        for i in range(len(first["boxes"])):
            j = int(overlap[i].argmax())
            if overlap[i, j] < 0.5:
                continue  # not confidently tracked: left out
            same.append(sims[i, j])
            other += [sims[i, k] for k in range(len(later["boxes"])) if overlap[i, k] < 0.1]
    assert len(same) >= 6 and len(other) >= 6
    print(f"same person {np.mean(same):.3f} vs other people {np.mean(other):.3f}")
    assert np.mean(same) > np.mean(other) + 0.05
    assert np.median(same) > np.percentile(other, 75)


def test_bad_images_and_boxes_are_refused(searcher):
    with pytest.raises(ValueError, match="RGB uint8"):
        searcher(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="boxes\\[0\\]"):
        searcher.extract_query(np.zeros((50, 40, 3), np.uint8), [[60, 60, 70, 80]])


def test_bf16_and_channels_last_embed_the_same_people_as_fp32(searcher):
    """The fast settings (bf16 autocast, NHWC weights) keep each detected person's embedding."""
    from personsearch.pipelines.loading import channels_last

    require_vtest()
    frame = _frames([10])[0]
    reference = searcher(frame)
    assert len(reference["boxes"]) >= 2
    fast = TwoStepSearcher(searcher.detector, channels_last(copy.deepcopy(searcher.embedder)),
                           crop_size=(256, 128), dtype=torch.bfloat16)
    got = fast.extract_query(frame, reference["boxes"])
    assert got.dtype == np.float32 and got.shape == reference["embeddings"].shape
    cosine = (got * reference["embeddings"]).sum(1)
    assert cosine.min() > 0.98, cosine
