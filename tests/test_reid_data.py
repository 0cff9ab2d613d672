"""PK sampling and ReID transforms: the batches the triplet loss depends on."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from personsearch.data.samplers import PKSampler
from personsearch.data.transforms import AugmentConfig, build_test_transform, build_train_transform


def test_pk_batches_hold_p_identities_with_k_images_each():
    rng = np.random.default_rng(0)
    pids = rng.integers(0, 12, 200).tolist() + [99]  # one identity with a single image
    sampler = PKSampler(pids, p=4, k=3, seed=0)
    order = list(sampler)
    assert len(order) == len(sampler) > 0
    for start in range(0, len(order), 12):
        counts = Counter(pids[i] for i in order[start:start + 12])
        assert len(counts) == 4 and set(counts.values()) == {3}


def test_pk_order_is_deterministic_per_epoch_and_changes_across_epochs():
    pids = [i // 5 for i in range(100)]
    a, b = PKSampler(pids, 4, 4, seed=3), PKSampler(pids, 4, 4, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


def test_pk_ranks_get_disjoint_equal_shares():
    pids = [i // 4 for i in range(160)]
    shares = [list(PKSampler(pids, 4, 4, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) > 0
    batches = [tuple(s[i:i + 16]) for s in shares for i in range(0, len(s), 16)]
    assert len(set(batches)) == len(batches)


def test_pk_refuses_too_few_identities():
    with pytest.raises(ValueError, match="identities"):
        PKSampler([0, 0, 1, 1], p=4, k=2)


def test_transforms_give_normalised_tensors_of_the_asked_size():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 40, 3), dtype=np.uint8))
    test = build_test_transform(128, 64)(image)
    assert test.shape == (3, 128, 64) and test.dtype == torch.float32
    assert -3 < float(test.mean()) < 3
    torch.manual_seed(0)
    train = build_train_transform(128, 64, AugmentConfig(random_erasing=1.0))(image)
    assert train.shape == (3, 128, 64)
    assert (train == 0).float().mean() > 0.01  # an erased rectangle
