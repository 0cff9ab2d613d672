"""Plans of the scene datasets: CUHK-SYSU, PRW (identities across scenes) and COCO detection.

Identities are spread over scenes of their own split (train and test identities never share a
scene), preferring cameras where the identity was not seen yet; passers-by fill the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import sample_cameras
from .config import DetectionSizes, SceneSizes, SynthConfig
from .identity import Identity, sample_identities
from .tasks import SceneTask


@dataclass(frozen=True)
class PlannedScene:
    """One scene: its render task, the split, and the global pid of each person (-1 = passer-by)."""

    task: SceneTask
    split: str  # "train" | "test" | "detection"
    pids: tuple[int, ...]
    camid: int


def _assign(appearances: list[int], scene_ids: list[int], scene_cams: np.ndarray, capacity: np.ndarray,
            rng: np.random.Generator) -> dict[int, list[int]]:
    """Map each local identity index to the scenes it appears in (distinct scenes, spread over cameras)."""
    members: dict[int, list[int]] = {s: [] for s in scene_ids}
    pool = np.asarray(scene_ids)
    for ident, count in enumerate(appearances):
        seen_cams: set[int] = set()
        for _ in range(min(count, len(pool))):
            free = [s for s in pool if capacity[s] > 0 and ident not in members[s]]
            if not free:
                break
            fresh = [s for s in free if int(scene_cams[s]) not in seen_cams]
            scene = int(rng.choice(fresh or free))
            members[scene].append(ident)
            capacity[scene] -= 1
            seen_cams.add(int(scene_cams[scene]))
    return members


def plan_identity_scenes(sizes: SceneSizes, cfg: SynthConfig, seed: tuple[int, ...],
                         name_scene, min_test_scenes: int = 0) -> list[PlannedScene]:
    """Scenes of a person-search dataset. ``name_scene(index, camera, rng)`` gives each file path."""
    rng = np.random.default_rng(np.random.SeedSequence(list(seed)))
    diff = cfg.difficulty
    cameras = sample_cameras(sizes.cameras, rng, diff)
    n_ids = sizes.train_ids + sizes.test_ids
    identities = sample_identities(n_ids, rng, diff)
    passers = sample_identities(max(8, sizes.scenes), rng, diff)
    pids = (rng.permutation(n_ids) + 1).tolist()
    lo, hi = sizes.appearances_per_id
    appearances = rng.integers(lo, hi + 1, size=n_ids)
    test_share = appearances[sizes.train_ids:].sum() / max(1, appearances.sum())
    n_test = int(round(sizes.scenes * test_share))
    n_test = min(max(n_test, min_test_scenes, 1), sizes.scenes - 1)
    if n_test < min_test_scenes:
        raise ValueError(f"{sizes.scenes} scenes leave {n_test} test scenes, fewer than the {min_test_scenes} "
                         "the largest gallery size needs: raise scenes or lower gallery_sizes")
    order = rng.permutation(sizes.scenes)
    test_ids, train_ids = sorted(order[:n_test].tolist()), sorted(order[n_test:].tolist())
    scene_cams = rng.integers(sizes.cameras, size=sizes.scenes)
    p_lo, p_hi = sizes.people_per_scene
    counts = rng.integers(max(1, p_lo), p_hi + 1, size=sizes.scenes)
    capacity = np.maximum(1, counts - (counts > 2))  # leave room for a passer-by in busier scenes
    members = {}
    for ids, scenes, offset in ((range(sizes.train_ids), train_ids, 0),
                                (range(sizes.train_ids, n_ids), test_ids, sizes.train_ids)):
        local = _assign([int(appearances[i]) for i in ids], scenes, scene_cams, capacity, rng)
        members.update({s: [offset + i for i in m] for s, m in local.items()})
    planned = []
    test_set = set(test_ids)
    for s in range(sizes.scenes):
        labeled = members[s]
        n_pass = max(0, int(counts[s]) - len(labeled))
        people: list[Identity] = [identities[i] for i in labeled]
        people += [passers[int(j)] for j in rng.choice(len(passers), size=n_pass, replace=False)]
        task = SceneTask(path=str(name_scene(s, int(scene_cams[s]), rng)), camera=cameras[int(scene_cams[s])],
                         identities=tuple(people), width=sizes.width, height=sizes.height,
                         seed=(*seed, s), difficulty=diff)
        planned.append(PlannedScene(task=task, split="test" if s in test_set else "train",
                                    pids=tuple(pids[i] for i in labeled) + (-1,) * n_pass,
                                    camid=int(scene_cams[s])))
    return planned


def plan_detection(sizes: DetectionSizes, cfg: SynthConfig, seed: tuple[int, ...], folder: Path) -> list[PlannedScene]:
    """Detection-only scenes: persons without identities, from cameras seen nowhere else."""
    rng = np.random.default_rng(np.random.SeedSequence(list(seed)))
    cameras = sample_cameras(sizes.cameras, rng, cfg.difficulty, cfg.subtask_domain)
    people = sample_identities(max(8, sizes.images * 2), rng, cfg.difficulty)
    lo, hi = sizes.people_per_scene
    planned = []
    for s in range(sizes.images):
        cam = int(rng.integers(sizes.cameras))
        chosen = rng.choice(len(people), size=int(rng.integers(lo, hi + 1)), replace=False)
        task = SceneTask(path=str(folder / f"{s + 1:08d}.jpg"), camera=cameras[cam],
                         identities=tuple(people[int(j)] for j in chosen), width=sizes.width,
                         height=sizes.height, seed=(*seed, s), difficulty=cfg.difficulty)
        planned.append(PlannedScene(task=task, split="detection", pids=(-1,) * len(chosen), camid=cam))
    return planned
