"""Indexing many videos and image folders with several workers, merged into one index.

The inputs are cut into units (``units.plan_units``: runs of frames of a video, runs of image
files) in a fixed order. Workers (processes on this machine, or Ray tasks on a cluster) index units
independently; the coordinator (the process holding the index) commits their results in unit order,
one SQLite transaction per unit. So the ids are the same whatever the number of workers, a unit is
either wholly in the index or not at all, and a rerun after a kill goes on with the units not
committed yet. A worker that dies has its unit run again (``retries`` times) on a fresh one.

Engines: ``InlineEngine`` (this process), ``ProcessEngine`` (a local process pool),
``RayEngine`` (``pip install 'personsearch[ray]'``; a local Ray instance, or a cluster by address).
"""

from __future__ import annotations

import collections
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Iterator, Protocol, Sequence

from . import metadata
from .frames import source_key, video_info, wanted_frames
from .records import AddReport
from .units import Unit, UnitResult, remember_searcher, run_unit, worker_searcher

ENGINES = ("processes", "ray")


class Engine(Protocol):
    def map_ordered(self, units: Sequence[Unit]) -> Iterator[UnitResult]:
        """The results of ``units``, in their order."""


class _Job:
    """What every worker needs to index a unit: the model and the index's embedding size."""

    def __init__(self, spec: str, score_threshold: float, dim: int, threads: int | None) -> None:
        self.spec, self.score_threshold, self.dim, self.threads = spec, score_threshold, dim, threads

    def __call__(self, unit: Unit) -> UnitResult:
        return run_unit(unit, self.spec, self.score_threshold, self.dim, self.threads)


class InlineEngine:
    """Units one after another in this process."""

    def __init__(self, spec: str, score_threshold: float, dim: int, searcher=None) -> None:
        self.job = _Job(spec, score_threshold, dim, None)
        if searcher is not None:  # already loaded by the caller: not loaded again
            remember_searcher(spec, score_threshold, searcher)

    def map_ordered(self, units: Sequence[Unit]) -> Iterator[UnitResult]:
        for unit in units:
            yield self.job(unit)


def _warm(spec: str, score_threshold: float, threads: int) -> None:
    worker_searcher(spec, score_threshold, threads)  # load the model once, as the worker starts


class ProcessEngine:
    """A pool of ``workers`` processes (spawned: each imports torch and loads the model once), each
    with ``threads`` torch threads; at most ``2 * workers`` units in flight. A unit whose worker
    died is run again, up to ``retries`` times, in a new pool."""

    def __init__(self, spec: str, score_threshold: float, dim: int, workers: int, threads: int = 1,
                 retries: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.job = _Job(spec, score_threshold, dim, threads)
        self.workers, self.threads, self.retries = workers, threads, retries

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_warm, initargs=(self.job.spec, self.job.score_threshold, self.threads))

    def map_ordered(self, units: Sequence[Unit]) -> Iterator[UnitResult]:
        attempts = collections.Counter()
        todo = collections.deque(range(len(units)))
        pool = self._pool()
        flight: collections.deque = collections.deque()  # (position, future), in unit order
        try:
            while todo or flight:
                while todo and len(flight) < 2 * self.workers:
                    position = todo.popleft()
                    flight.append((position, pool.submit(self.job, units[position])))
                position, future = flight[0]
                try:
                    result = future.result()
                except BrokenProcessPool:  # a worker died (killed, out of memory): redo what was in flight
                    pool.shutdown(wait=False, cancel_futures=True)
                    for lost, _ in flight:
                        attempts[lost] += 1
                        if attempts[lost] > self.retries:
                            raise RuntimeError(f"{units[lost].describe()}: its worker died {attempts[lost]} times "
                                               "(or could not start: does the model load?); stopped, the units "
                                               "committed so far are kept") from None
                    todo.extendleft(reversed([p for p, _ in flight]))
                    flight.clear()
                    pool = self._pool()
                    continue
                flight.popleft()
                yield result
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


class RayEngine:
    """Units as Ray tasks (one CPU each, ``threads`` torch threads), at most ``window`` in flight;
    Ray runs a task again when its worker or node dies (``retries`` times). ``address``: a running
    cluster's (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on the others;
    every machine needs the model and the input files at the same paths); None: a local instance."""

    def __init__(self, spec: str, score_threshold: float, dim: int, address: str | None = None,
                 window: int | None = None, threads: int = 1, retries: int = 2) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("the ray engine needs Ray: pip install 'personsearch[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        self.ray = ray
        self.job = _Job(spec, score_threshold, dim, threads)
        self.window = window or 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.task = ray.remote(num_cpus=1, max_retries=retries)(_run_job)

    def map_ordered(self, units: Sequence[Unit]) -> Iterator[UnitResult]:
        flight: collections.deque = collections.deque()
        todo = collections.deque(units)
        job = self.ray.put(self.job)
        try:
            while todo or flight:
                while todo and len(flight) < self.window:
                    flight.append(self.task.remote(job, todo.popleft()))
                yield self.ray.get(flight.popleft())
        finally:
            for ref in flight:
                self.ray.cancel(ref)


def _run_job(job: _Job, unit: Unit) -> UnitResult:
    return job(unit)


def plan(index, videos: Sequence[str | Path], images: Sequence[str | Path], every: int = 1, start: int = 0,
         stop: int | None = None, camera: str | None = None) -> tuple[list[Unit], list[tuple[str, int]], AddReport]:
    """(units still to index, video passes they complete, a report of what is already there or
    cannot be opened) for ``index``; the inputs' order does not matter."""
    conn = index._conns.get()
    report = AddReport()
    pending, complete = [], []
    image_sources = metadata.indexed_images(conn)
    for path in dict.fromkeys(source_key(v) for v in videos):
        try:
            fps, count = video_info(path)
        except ValueError as err:
            report.skipped.append((path, str(err)))
            continue
        if path in image_sources:
            report.skipped.append((path, "already indexed as an image, not a video"))
            continue
        finished, done = metadata.video_progress(conn, path)
        frames = wanted_frames(start, stop, every, count)
        if finished and start % finished == 0 and every % finished == 0:
            report.already += len(frames)
            continue
        todo = [f for f in frames if f not in done]
        report.already += len(frames) - len(todo)
        pending.append((path, todo, every, fps))
        if start == 0 and stop is None:
            complete.append((path, every))
    video_sources = metadata.sources_of_kind(conn, "video")
    keys = list(dict.fromkeys(source_key(p) for p in images))
    report.already += sum(k in image_sources for k in keys)
    report.skipped += [(k, "already indexed as a video, not an image") for k in keys if k in video_sources]
    todo_images = [k for k in keys if k not in image_sources and k not in video_sources]
    from .units import plan_units

    return plan_units(pending, todo_images, camera), complete, report


def add_parallel(index, engine: Engine, videos: Sequence[str | Path] = (), images: Sequence[str | Path] = (),
                 every: int = 1, start: int = 0, stop: int | None = None, camera: str | None = None,
                 progress: bool = True) -> AddReport:
    """Index ``videos`` (every ``every``-th frame from ``start``, below ``stop``) and ``images`` into
    ``index`` with ``engine``'s workers, committing units in plan order (see the module docstring)."""
    from ..utils.progress import progress as progress_bar

    with index._writer.hold():
        index._clean_temporaries()
        index.refresh()
        units, complete, report = plan(index, videos, images, every, start, stop, camera)
        bar = progress_bar(sum(u.size for u in units), f"indexing {index.path.name}", progress, unit="frame")
        try:
            for unit, result in zip(units, engine.map_ordered(units)):
                report.people += index._commit(result.results, result.skipped)
                report.images += len(result.results)
                report.skipped += result.skipped
                bar.update(unit.size)
        finally:
            bar.close()
        ended_early = {source for source, _ in report.skipped}
        complete = [(source, e) for source, e in complete if source not in ended_early]
        if complete:
            index._write([], [], complete)
        index._finish(progress)
    return report


__all__ = ["ENGINES", "InlineEngine", "ProcessEngine", "RayEngine", "add_parallel", "plan"]
