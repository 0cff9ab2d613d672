"""Work units of a parallel build: slices of the inputs that workers index independently.

A unit is a run of frames of one video (``FRAMES_PER_UNIT`` sampled frames at most) or a run of
image files (``IMAGES_PER_UNIT`` at most). The plan is a pure function of the inputs (sources in
sorted order, then frame or file order), so units are committed in the same order whatever the
number of workers: the same people get the same ids. ``run_unit`` is what a worker does with one:
decode, detect and embed (``ingest.outputs``), returning what the index then stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .frames import image_frames, video_frames
from .ingest import classify, outputs
from .metadata import FrameResult

FRAMES_PER_UNIT = 512
IMAGES_PER_UNIT = 256


@dataclass(frozen=True)
class Unit:
    """Frames ``frames`` of ``video``, or the image files ``images`` (never both)."""

    video: str | None = None
    frames: tuple[int, ...] = ()
    images: tuple[str, ...] = ()
    every: int = 1
    camera: str | None = None
    fps: float | None = None

    @property
    def size(self) -> int:
        return len(self.frames) if self.video else len(self.images)

    def describe(self) -> str:
        if self.video:
            return f"{Path(self.video).name} frames {self.frames[0]}..{self.frames[-1]}"
        return f"{len(self.images)} images from {Path(self.images[0]).name}"


@dataclass
class UnitResult:
    """What a worker returns for a unit: the frames with their people, and the skipped files."""

    results: list[FrameResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def plan_units(videos: Sequence[tuple[str, Sequence[int], int, float | None]], images: Sequence[str],
               camera: str | None = None) -> list[Unit]:
    """Units for ``videos`` [(path, frames still to index, every, fps)] and ``images`` (paths still to
    index), in a fixed order: videos by path, then images by path."""
    units = []
    for path, frames, every, fps in sorted(videos, key=lambda v: v[0]):
        frames = sorted(frames)
        units += [Unit(video=path, frames=tuple(frames[i:i + FRAMES_PER_UNIT]), every=every, camera=camera, fps=fps)
                  for i in range(0, len(frames), FRAMES_PER_UNIT)]
    paths = sorted(images)
    units += [Unit(images=tuple(paths[i:i + IMAGES_PER_UNIT]), camera=camera)
              for i in range(0, len(paths), IMAGES_PER_UNIT)]
    return units


_SEARCHERS: dict[tuple[str, float], Any] = {}  # one per worker process and model


def worker_searcher(spec: str, score_threshold: float, threads: int | None = None):
    """The searcher for ``spec``, loaded once per process (workers are reused across units)."""
    key = (spec, float(score_threshold))
    if key not in _SEARCHERS:
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        from .model import load_model

        _SEARCHERS[key] = load_model(spec, score_threshold)
    return _SEARCHERS[key]


def remember_searcher(spec: str, score_threshold: float, searcher) -> None:
    """Use ``searcher`` (already loaded) for ``spec`` in this process."""
    _SEARCHERS[(spec, float(score_threshold))] = searcher


def run_unit(unit: Unit, spec: str, score_threshold: float, dim: int, threads: int | None = None) -> UnitResult:
    """Index one unit in this process (a worker): its frames' people, and its skipped files."""
    searcher = worker_searcher(spec, score_threshold, threads)
    if unit.video:
        frames = video_frames(unit.video, unit.every, frozenset(), unit.frames[0], unit.frames[-1] + 1)
        wanted = set(unit.frames)
        frames = (f for f in frames if f.frame in wanted)
    else:
        frames = image_frames(unit.images)
    out = UnitResult()
    for frame, found in outputs(frames, searcher):
        kept = classify(frame, found, dim, unit.camera, unit.fps)
        (out.results if isinstance(kept, FrameResult) else out.skipped).append(kept)
    return out


__all__ = ["FRAMES_PER_UNIT", "IMAGES_PER_UNIT", "Unit", "UnitResult", "plan_units", "remember_searcher", "run_unit",
           "worker_searcher"]
