"""Generate the whole synthetic benchmark: plan, render in parallel, write the official formats.

Layout under ``out``:
    market1501/   Market-1501 crops: bounding_box_train, bounding_box_test, query
    cuhk_sysu/    CUHK-SYSU: Image/SSM/*.jpg + annotation/*.mat (Images, pool, Train, TestG{N})
    prw/          PRW: frames/*.jpg, annotations/*.jpg.mat, frame_*.mat, ID_*.mat, query_info.txt
    detection/    COCO: images/*.jpg + annotations/instances_person.json
    unlabeled/    flat folder of unlabeled person crops
    synth.yaml    the settings used; written last, so its presence means the output is complete
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml

from .. import __version__
from ..data.records import SceneAnnotation
from ..utils.files import atomic_write_text
from ..utils.progress import progress as progress_bar
from .config import SynthConfig, config_to_dict
from .plan_crops import plan_market, plan_unlabeled
from .plan_scenes import PlannedScene, plan_detection, plan_identity_scenes
from .tasks import run_task
from .write_coco import write_coco_annotations
from .write_cuhk_sysu import write_cuhk_sysu_annotations
from .write_prw import write_prw_annotations

OUTPUTS = ("market1501", "cuhk_sysu", "prw", "detection", "unlabeled")
MARKER = "synth.yaml"
MIN_VISIBLE = 0.15  # persons hidden more than this are not annotated at all
HARD_VISIBLE = 0.5  # persons less visible than this are flagged hard (ignore)
COCO_JSON = "detection/annotations/instances_person.json"


def _prepare(out: Path, outputs: Iterable[str]) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        leftovers = {p.name for p in out.iterdir()} - set(OUTPUTS)
        if leftovers:
            raise FileExistsError(f"{out}: not empty and not made by `personsearch synth` "
                                  f"(found {sorted(leftovers)[:3]}); choose an empty folder")
    (out / MARKER).unlink(missing_ok=True)
    for name in outputs:
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def _sysu_namer(root: Path, total: int, seed: tuple[int, ...]):
    """CUHK-SYSU names scenes s1.jpg .. sN.jpg; train and test numbers interleave."""
    numbers = np.random.default_rng(np.random.SeedSequence([*seed, 99])).permutation(total) + 1
    return lambda s, cam, rng: root / "Image" / "SSM" / f"s{numbers[s]}.jpg"


def _prw_namer(root: Path, cameras: int):
    """PRW names frames c{camera}s{sequence}_{frame:06d}.jpg, frame numbers increasing per camera."""
    frames = [0] * cameras

    def name(s: int, cam: int, rng: np.random.Generator) -> Path:
        frames[cam] += int(rng.integers(25, 200))
        return root / "frames" / f"c{cam + 1}s{1 + frames[cam] // 100_000}_{frames[cam] % 100_000:06d}.jpg"
    return name


def plan_all(cfg: SynthConfig, out: Path, outputs: Iterable[str] = OUTPUTS) -> tuple[list, dict[str, list[PlannedScene]]]:
    """Every render task, and the scene plans per scene dataset (for writing annotations later)."""
    outputs = set(outputs)
    crops: list = []
    scenes: dict[str, list[PlannedScene]] = {}
    seeds = {name: (cfg.seed, i + 1) for i, name in enumerate(OUTPUTS)}
    if "market1501" in outputs:
        crops += plan_market(cfg, out, seeds["market1501"])
    if "unlabeled" in outputs:
        crops += plan_unlabeled(cfg, out, seeds["unlabeled"])
    if "cuhk_sysu" in outputs:
        namer = _sysu_namer(out / "cuhk_sysu", cfg.cuhk_sysu.scenes, seeds["cuhk_sysu"])
        scenes["cuhk_sysu"] = plan_identity_scenes(cfg.cuhk_sysu, cfg, seeds["cuhk_sysu"], namer,
                                                   min_test_scenes=max(cfg.gallery_sizes, default=0) + 1)
    if "prw" in outputs:
        scenes["prw"] = plan_identity_scenes(cfg.prw, cfg, seeds["prw"], _prw_namer(out / "prw", cfg.prw.cameras),
                                             min_test_scenes=2)
    if "detection" in outputs:
        scenes["detection"] = plan_detection(cfg.detection, cfg, seeds["detection"], out / "detection" / "images")
    return crops, scenes


def _annotate(planned: list[PlannedScene], results: list) -> list[SceneAnnotation]:
    annotations = []
    for plan, (boxes, visibility) in zip(planned, results):
        keep = visibility >= MIN_VISIBLE
        annotations.append(SceneAnnotation(path=Path(plan.task.path), boxes=boxes[keep],
                                           pids=np.asarray(plan.pids, np.int64)[keep], camid=plan.camid,
                                           ignore=visibility[keep] < HARD_VISIBLE))
    return annotations


def _render(tasks: list, workers: int, progress: bool) -> list:
    bar = progress_bar(len(tasks), "rendering", progress, unit="img")
    if workers <= 1:
        results = []
        for task in tasks:
            results.append(run_task(task))
            bar.update()
    else:
        # A process pool that reports a crashed worker (BrokenProcessPool) instead of hanging.
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            results = []
            for result in pool.map(run_task, tasks, chunksize=16):
                results.append(result)
                bar.update()
    bar.close()
    return results


def generate(out: str | Path, cfg: SynthConfig, workers: int | None = None,
             outputs: Iterable[str] = OUTPUTS, progress: bool = True) -> dict[str, Any]:
    """Write the benchmark to ``out``; returns counts and timing. Deterministic for a given config."""
    out = Path(out)
    unknown = set(outputs) - set(OUTPUTS)
    outputs = [o for o in OUTPUTS if o in set(outputs)]
    if unknown:
        raise ValueError(f"unknown outputs {sorted(unknown)} (known: {', '.join(OUTPUTS)})")
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    start = time.perf_counter()
    _prepare(out, outputs)
    crops, scenes = plan_all(cfg, out, outputs)
    scene_tasks = [p.task for plans in scenes.values() for p in plans]
    results = _render(scene_tasks + crops, workers, progress)[: len(scene_tasks)]
    offset = 0
    annotated: dict[str, list[SceneAnnotation]] = {}
    for name, plans in scenes.items():
        annotated[name] = _annotate(plans, results[offset: offset + len(plans)])
        offset += len(plans)
    for name, plans in scenes.items():
        split = {k: [a for a, p in zip(annotated[name], plans) if p.split == k] for k in ("train", "test")}
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, OUTPUTS.index(name) + 1, 7]))
        if name == "cuhk_sysu":
            write_cuhk_sysu_annotations(out / name, split["train"], split["test"], cfg.gallery_sizes, rng)
        elif name == "prw":
            write_prw_annotations(out / name, split["train"], split["test"], rng)
        else:
            write_coco_annotations(out / COCO_JSON, annotated[name], out / "detection" / "images",
                                   [(p.task.width, p.task.height) for p in plans])
    seconds = time.perf_counter() - start
    counts = {"version": __version__, "outputs": outputs, "scenes": len(scene_tasks), "crops": len(crops)}
    # The marker holds no timing, so the whole output stays byte-identical for the same config.
    atomic_write_text(out / MARKER, yaml.safe_dump({"summary": counts, "config": config_to_dict(cfg)},
                                                   sort_keys=False))
    return {**counts, "seconds": round(seconds, 2), "scenes_per_s": round(len(scene_tasks) / seconds, 1),
            "images_per_s": round((len(scene_tasks) + len(crops)) / seconds, 1)}
