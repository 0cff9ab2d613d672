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


def test_identity_regions_hold_the_person_and_its_jittered_box(tiny_synth):
    """The region's ground-truth box shows exactly the scene's box (mirrored when flipped), and the
    jittered box (DKD's FSA) lies inside the region, near the person."""
    from personsearch.data.images import read_image
    from personsearch.data.scene_crops import SceneRegionDataset, collate_regions

    data = read_cuhk_sysu(tiny_synth / "cuhk_sysu")
    samples = scene_crop_samples(data.train)
    sample = samples[2]
    scene = torch.from_numpy(np.asarray(read_image(sample.path), np.float32) / 255).permute(2, 0, 1)
    x1, y1, x2, y2 = (int(round(v)) for v in sample.box)
    for flip in (0.0, 1.0):
        region, box, truth, pid, size = SceneRegionDataset(samples, 1.3, IsaConfig(1.3, 0.7), flip)[2]
        assert pid == sample.pid and size == tuple(scene.shape[-2:])
        a1, b1, a2, b2 = (int(round(float(v))) for v in truth)
        person = region[:, b1:b2, a1:a2]
        expected = scene[:, y1:y2, x1:x2]
        if flip:
            expected = expected.flip(-1)
        assert person.shape == expected.shape and torch.allclose(person, expected, atol=1 / 255 + 1e-6)
        assert 0 <= box[0] < box[2] <= region.shape[-1] and 0 <= box[1] < box[3] <= region.shape[-2]
        inter = (torch.minimum(box[2:], truth[2:]) - torch.maximum(box[:2], truth[:2])).clamp_min(0).prod()
        union = (box[2:] - box[:2]).prod() + (truth[2:] - truth[:2]).prod() - inter
        assert inter / union > 0.4
    batch = collate_regions([SceneRegionDataset(samples)[i] for i in range(3)])
    assert batch["pids"].tolist() == [s.pid for s in samples[:3]]
    assert all(torch.equal(b, t) for b, t in zip(batch["boxes"], batch["gt_boxes"]))  # no ISA: no jitter
