"""Crops cut from annotated scenes (two-step ReID training data) and DKD's ISA jitter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from personsearch.data import read_cuhk_sysu
from personsearch.data.scene_crops import IsaConfig, SceneCropDataset, jitter_box, scene_crop_samples
from personsearch.data.transforms import build_test_transform


def test_labeled_boxes_become_crop_samples_with_their_pids(tiny_synth):
    data = read_cuhk_sysu(tiny_synth / "cuhk_sysu")
    samples = scene_crop_samples(data.train)
    labeled = sum(int((s.pids >= 0).sum()) for s in data.train)
    assert len(samples) == labeled > 0
    assert {s.pid for s in samples} == set(range(data.num_train_pids))
    assert len(scene_crop_samples(data.train, labeled_only=False)) == sum(len(s.boxes) for s in data.train)
    crops = SceneCropDataset(samples, build_test_transform(64, 32))
    item = crops[3]
    assert item["images"].shape == (3, 64, 32) and item["pids"] == samples[3].pid


def test_isa_jitter_stays_inside_the_enlarged_box_and_the_image():
    rng = np.random.default_rng(0)
    isa = IsaConfig(enlarge=1.4, min_side=0.7)
    box = np.array([40.0, 30.0, 80.0, 130.0])
    w, h = 40 * 1.4, 100 * 1.4
    for _ in range(200):
        out = jitter_box(box, isa, rng, width=100, height=150)
        assert 60 - w / 2 - 1e-9 <= out[0] < out[2] <= 60 + w / 2 + 1e-9
        assert max(0, 80 - h / 2) - 1e-9 <= out[1] < out[3] <= min(150, 80 + h / 2) + 1e-9
        assert out[2] - out[0] >= 0.7 * w - 1e-6 or out[2] >= 100 or out[0] <= 0
    outs = np.array([jitter_box(box, isa, rng, 1000, 1000) for _ in range(200)])
    assert outs.std(axis=0).min() > 1.0  # it does jitter


def test_isa_dataset_is_reproducible_under_the_torch_seed(tiny_synth):
    data = read_cuhk_sysu(tiny_synth / "cuhk_sysu")
    crops = SceneCropDataset(scene_crop_samples(data.train), build_test_transform(64, 32), IsaConfig(enlarge=1.3))
    torch.manual_seed(5)
    a = crops[0]["images"]
    torch.manual_seed(5)
    b = crops[0]["images"]
    torch.manual_seed(6)
    c = crops[0]["images"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="isa.enlarge"):
        IsaConfig(enlarge=0.9)
