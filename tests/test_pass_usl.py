"""PASS's unsupervised fine-tuning parts: the all-pairs Jaccard distance (the re-ranking's encoding),
DBSCAN pseudo-labels, the hardest-sample cluster memory, PK batches over pseudo-identities, and a
USL run that never reads the training identities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from personsearch.distance import distance_matrix
from personsearch.evaluation.jaccard import jaccard_distance
from personsearch.evaluation.rerank import re_ranking
from personsearch.methods.pass_finetune.clusters import (ClusterMemory, PseudoLabelBatchSampler, camera_centred,
                                                         cluster_centroids, majority_share, pseudo_labels)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:3] * 4
    feats = np.concatenate([c + 0.3 * rng.normal(size=(12, 8)) for c in centres]).astype(np.float32)
    return feats, np.repeat(np.arange(3), 12)


def test_jaccard_distance_is_re_ranking_s_encoding_on_one_set():
    feats = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    jac = jaccard_distance(feats, k1=8, k2=3)
    q, g = feats[:15], feats[15:]
    ref = re_ranking(*(distance_matrix(a, b, "l2") for a, b in ((q, g), (q, q), (g, g))), k1=8, k2=3, lambda_value=0.0)
    assert np.allclose(jac[:15, 15:], ref, atol=1e-6)
    assert np.allclose(jac, jac.T, atol=1e-6) and np.abs(np.diag(jac)).max() < 1e-6
    with pytest.raises(ValueError, match="N >= 2"):
        jaccard_distance(feats[:1])


def test_dbscan_pseudo_labels_find_the_blobs_and_leave_a_stray_point_out():
    feats, truth = _blobs()
    stray = np.full((1, 8), -3.0, dtype=np.float32)
    labels = pseudo_labels(np.concatenate([feats, stray]), eps=0.6, min_samples=4, k1=10, k2=3)
    assert labels[-1] == -1  # the outlier
    found = labels[:-1]
    assert len(set(found.tolist())) == 3 and all(len(set(found[truth == c].tolist())) == 1 for c in range(3))


def test_camera_centring_lets_one_cluster_span_the_cameras():
    """Three people seen by two cameras whose offset outweighs identity: raw features split every
    person into one cluster per camera (useless for cross-camera ranking); camera-centred features
    give one cluster per person across both cameras."""
    rng = np.random.default_rng(0)
    people, cameras = np.repeat(np.arange(3), 16), np.tile(np.repeat([0, 1], 8), 3)
    offsets = np.zeros((2, 8), dtype=np.float32)
    offsets[:, 7] = [-6.0, 6.0]
    feats = (np.eye(8, dtype=np.float32)[people] * 1.5 + offsets[cameras]
             + 0.15 * rng.normal(size=(48, 8))).astype(np.float32)
    raw = pseudo_labels(feats, eps=0.6, min_samples=4, k1=10, k2=3)
    assert len(set(raw[raw >= 0].tolist())) == 6 and majority_share(raw, cameras) == 1.0
    centred = pseudo_labels(camera_centred(feats, cameras), eps=0.6, min_samples=4, k1=10, k2=3)
    assert len(set(centred[centred >= 0].tolist())) == 3 and (centred >= 0).all()
    assert majority_share(centred, people) == 1.0 and majority_share(centred, cameras) == 0.5
    unit = camera_centred(feats, cameras)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="47 camera ids for 48 features"):
        camera_centred(feats, cameras[:-1])
    assert np.isnan(majority_share(np.array([-1, -1]), np.array([0, 1])))


def test_cluster_memory_starts_at_centroids_and_moves_towards_the_hardest_sample():
    feats = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.0, 2.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1, 1, -1])
    centroids = cluster_centroids(feats, labels)
    assert torch.allclose(centroids, F.normalize(torch.tensor([[1.8, 0.6], [0.0, 3.0]]), dim=1))
    memory = ClusterMemory(centroids, temperature=0.05, momentum=0.2)
    before = memory.memory[0].clone()
    batch = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # the second is the least similar to M_0
    memory.update(batch, torch.tensor([0, 0]))
    assert torch.allclose(memory.memory[0], F.normalize(0.2 * before + 0.8 * torch.tensor([0.6, 0.8]), dim=0))
    loss = memory.loss(torch.tensor([[0.0, 1.0]]), torch.tensor([1]))
    cos_other = float(memory.memory[0][1])  # f = (0, 1) against M_0; M_1 = (0, 1) exactly
    assert loss.item() == pytest.approx(float(np.log1p(np.exp((cos_other - 1.0) / 0.05))), rel=1e-4)


def test_batches_hold_p_clusters_of_k_and_never_an_outlier():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, -1, -1])
    sampler = PseudoLabelBatchSampler(p=2, k=3, iters=5, seed=3)
    sampler.set_labels(labels)
    sampler.set_epoch(1)
    first = list(sampler)
    assert len(first) == 5 and first == list(sampler)  # deterministic per epoch
    for batch in first:
        assert len(batch) == 6 and all(labels[i] >= 0 for i in batch)
        groups = [labels[batch[i:i + 3]] for i in (0, 3)]
        assert all(len(set(g.tolist())) == 1 for g in groups) and groups[0][0] != groups[1][0]
    sampler.set_epoch(2)
    assert list(sampler) != first
    sampler.set_labels(np.array([0, 0, -1]))
    with pytest.raises(ValueError, match="fewer than data.p"):
        list(sampler)


def test_usl_training_never_reads_the_training_identities(tiny_synth, tmp_path):
    from personsearch.engine import train
    from personsearch.methods.runs import build_recipe, load_recipe_config
    from personsearch.methods.smoke import smoke_overrides

    def run(out, scramble):
        cfg = load_recipe_config("pass_usl", [*smoke_overrides("pass_usl", tiny_synth, tmp_path, "cpu", "none"),
                                              "eval.rerank=false", "cluster.camera_norm=true"])  # cameras: yes
        recipe = build_recipe(cfg, out)
        if scramble:  # other identity labels on the training images: nothing may change
            data = recipe.dataset
            pids = [s.pid for s in data.train][::-1]
            data.train[:] = [dataclasses.replace(s, pid=p) for s, p in zip(data.train, pids)]
        torch.manual_seed(0)
        return train(recipe, cfg.engine, out)

    plain, scrambled = run(tmp_path / "a", False), run(tmp_path / "b", True)
    assert plain.history[-1]["clusters"] >= 2
    assert 0 < plain.history[-1]["camera_purity"] <= 1
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, scrambled.model.state_dict()[key]), key
