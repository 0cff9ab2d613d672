"""Plans of the crop datasets: Market-1501-format ReID crops and unlabeled pre-training crops.

A plan fixes every file name, identity, camera and seed up front, so rendering is embarrassingly
parallel and the output is byte-identical for the same config.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .camera import sample_cameras
from .config import MarketSizes, SynthConfig, UnlabeledSizes
from .identity import sample_identities
from .tasks import CropTask

MARKET_DIR = "market1501"
UNLABELED_DIR = "unlabeled"
JUNK_JITTER = 0.45  # junk (-1) crops are detections that barely hit a person
DISTRACTOR_JITTER = 0.3


class _FrameClock:
    """Increasing per-camera frame numbers, like a video timeline, for Market-style names."""

    def __init__(self, cameras: int, rng: np.random.Generator) -> None:
        self.frames = rng.integers(0, 500, size=cameras)
        self.rng = rng

    def next_name(self, pid: int, cam: int) -> str:
        self.frames[cam] += int(self.rng.integers(5, 120))
        frame = int(self.frames[cam])
        seq = 1 + frame // 200_000 % 6
        return f"{pid:04d}_c{cam + 1}s{seq}_{frame % 1_000_000:06d}_{int(self.rng.integers(1, 9)):02d}.jpg"


def _identity_crops(sizes: MarketSizes, rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """For each identity, its (camera, image index) list: >= min_cameras_per_id cameras."""
    lo_cams = min(sizes.min_cameras_per_id, sizes.cameras)
    out = []
    for _ in range(sizes.train_ids + sizes.test_ids):
        n_cams = int(rng.integers(lo_cams, sizes.cameras + 1))
        cams = sorted(rng.choice(sizes.cameras, size=n_cams, replace=False).tolist())
        lo, hi = sizes.images_per_camera
        out.append([(cam, k) for cam in cams for k in range(int(rng.integers(lo, hi + 1)))])
    return out


def _split_query(crops: list[tuple[int, int]], rng: np.random.Generator) -> set[int]:
    """Indices of crops that become queries: one per camera that keeps another crop in the gallery.

    Every query then has a positive in another camera in the gallery, as in Market-1501.
    """
    by_cam: dict[int, list[int]] = {}
    for i, (cam, _) in enumerate(crops):
        by_cam.setdefault(cam, []).append(i)
    queries = {int(rng.choice(idx)) for idx in by_cam.values() if len(idx) >= 2}
    if not queries:
        queries = {int(rng.choice(next(iter(by_cam.values()))))}
    return queries


def plan_market(cfg: SynthConfig, out: Path, seed: tuple[int, ...]) -> list[CropTask]:
    """Every crop of the Market-1501-format dataset (train, query, gallery, distractors, junk)."""
    sizes, diff = cfg.market, cfg.difficulty
    rng = np.random.default_rng(np.random.SeedSequence(list(seed)))
    cameras = sample_cameras(sizes.cameras, rng, diff, cfg.subtask_domain)
    n_ids = sizes.train_ids + sizes.test_ids
    n_extra = max(1, sizes.distractors // 3)
    identities = sample_identities(n_ids + n_extra, rng, diff)
    pids = (rng.permutation(n_ids) + 1).tolist()  # 1-based, train/test interleaved like Market
    clock = _FrameClock(sizes.cameras, rng)
    root = out / MARKET_DIR
    jobs: list[tuple[str, int, int, float]] = []  # (relative path, identity index, camera, jitter)
    for i, crops in enumerate(_identity_crops(sizes, rng)):
        is_train = i < sizes.train_ids
        queries = set() if is_train else _split_query(crops, rng)
        for j, (cam, _) in enumerate(crops):
            folder = "bounding_box_train" if is_train else ("query" if j in queries else "bounding_box_test")
            jobs.append((f"{folder}/{clock.next_name(pids[i], cam)}", i, cam, diff.crop_jitter))
    for label, count, pool, jitter in (("0000", sizes.distractors, range(n_ids, n_ids + n_extra), DISTRACTOR_JITTER),
                                        ("-1", sizes.junk, range(sizes.train_ids, n_ids), JUNK_JITTER)):
        for _ in range(count):
            cam = int(rng.integers(sizes.cameras))
            name = clock.next_name(0, cam).replace("0000_", f"{label}_", 1)
            jobs.append((f"bounding_box_test/{name}", int(rng.choice(pool)), cam, jitter))
    tasks = []
    for k, (rel, ident, cam, jitter) in enumerate(jobs):
        occluder = identities[int(rng.integers(len(identities)))] if rng.random() < diff.occlusion_prob else None
        tasks.append(CropTask(path=str(root / rel), camera=cameras[cam], identity=identities[ident],
                              occluder=occluder, width=sizes.width, height=sizes.height,
                              seed=(*seed, k), difficulty=replace(diff, crop_jitter=max(jitter, diff.crop_jitter))))
    return tasks


def plan_unlabeled(cfg: SynthConfig, out: Path, seed: tuple[int, ...]) -> list[CropTask]:
    """A flat folder of unlabeled crops (LUPerson-style) for self-supervised pre-training."""
    sizes: UnlabeledSizes = cfg.unlabeled
    rng = np.random.default_rng(np.random.SeedSequence(list(seed)))
    cameras = sample_cameras(sizes.cameras, rng, cfg.difficulty, cfg.subtask_domain)
    identities = sample_identities(max(1, sizes.identities), rng, cfg.difficulty)
    tasks = []
    for k in range(sizes.images):
        occluder = identities[int(rng.integers(len(identities)))] if rng.random() < cfg.difficulty.occlusion_prob else None
        tasks.append(CropTask(path=str(out / UNLABELED_DIR / f"{k:07d}.jpg"),
                              camera=cameras[int(rng.integers(len(cameras)))],
                              identity=identities[int(rng.integers(len(identities)))], occluder=occluder,
                              width=sizes.width, height=sizes.height, seed=(*seed, k), difficulty=cfg.difficulty))
    return tasks
