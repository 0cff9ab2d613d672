"""Adapting the served index to its own footage (``personsearch adapt``) from the API: one
background job per server, its progress readable at any time, stoppable.

The job runs ``index.adapt.adapt_index`` in a thread. Queries are answered meanwhile with the model
the index has until the swap; additions are refused (409) while it runs, since it holds the index's
writer lock. A stopped (or killed) job resumes where it was when started again with the same settings.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .uploads import ApiError

_ABSOLUTE = re.compile(r"(?<![\w.~])/(?:[^\s/:'\",;()]+/)*([^\s/:'\",;()]+)")


def without_folders(text: str) -> str:
    """``text`` with every absolute path replaced by its file name (the server's folders stay private)."""
    return _ABSOLUTE.sub(r"\1", text)


class Stopped(Exception):
    """Raised inside the job's thread when a stop was asked for."""


@dataclass(frozen=True)
class AdaptSettings:
    """What a client may choose for one adaptation: the ``personsearch adapt`` options and defaults
    (``pipelines.FinetuneConfig`` holds the training's own, the same for steps and lr)."""

    steps: int = 60
    lr: float = 1e-4
    max_crops: int = 2000
    merge: float = 0.0
    seed: int = 0


class AdaptationJob:
    """The state of the server's adaptation: ``idle``, ``running``, ``done``, ``failed`` or ``stopped``."""

    def __init__(self, index_path: Path, on_finished: Callable[[], None]) -> None:
        self.index_path = Path(index_path)
        self._on_finished = on_finished
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: dict[str, Any] = {"state": "idle", "stage": None, "done": 0, "total": 0, "started": None,
                                        "finished": None, "settings": None, "report": None, "error": None}

    @property
    def running(self) -> bool:
        with self._lock:
            return self._status["state"] == "running"

    def status(self) -> dict[str, Any]:
        """A copy of the job's state, as ``GET /api/adapt`` returns it."""
        with self._lock:
            return dict(self._status)

    def start(self, settings: AdaptSettings, check: Callable[[], None]) -> dict[str, Any]:
        """Start adapting in the background; ``check()`` raises ApiError when the index cannot be
        adapted. ApiError 409 if a job is running already."""
        with self._lock:
            if self._status["state"] == "running":
                raise ApiError(409, "an adaptation is running already (GET /api/adapt shows its progress; "
                                    "DELETE /api/adapt stops it)")
            check()
            self._stop.clear()
            self._status.update(state="running", stage="starting", done=0, total=0, started=time.time(),
                                finished=None, settings=asdict(settings), report=None, error=None)
            self._thread = threading.Thread(target=self._run, args=(settings,), name="personsearch-adapt",
                                            daemon=True)
            self._thread.start()
            return dict(self._status)

    def stop(self) -> dict[str, Any]:
        """Ask the running job to stop at its next step (it keeps its training state: starting again
        with the same settings resumes). ApiError 409 if none runs."""
        with self._lock:
            if self._status["state"] != "running":
                raise ApiError(409, f"no adaptation is running (it is {self._status['state']})")
            self._stop.set()
            return dict(self._status)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the job's thread ends (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _progress(self, stage: str, done: int, total: int) -> None:
        if self._stop.is_set():
            raise Stopped()
        with self._lock:
            self._status.update(stage=stage, done=done, total=total)

    def _run(self, settings: AdaptSettings) -> None:
        from ..index.adapt import adapt_index
        from ..pipelines import FinetuneConfig

        outcome: dict[str, Any]
        try:
            report = adapt_index(self.index_path, FinetuneConfig(steps=settings.steps, lr=settings.lr,
                                                                 seed=settings.seed),
                                 max_crops=settings.max_crops, merge=settings.merge, progress=False,
                                 on_progress=self._progress)
            outcome = {"state": "done", "report": asdict(report)}
        except Stopped:
            outcome = {"state": "stopped", "error": "stopped on request; start again with the same settings "
                                                    "to resume"}
        except Exception as err:  # noqa: BLE001 - reported to the client, never lost in a thread
            outcome = {"state": "failed", "error": without_folders(str(err) or type(err).__name__)}
        try:
            self._on_finished()
        finally:
            with self._lock:
                self._status.update(stage=None, finished=time.time(), **outcome)


__all__ = ["AdaptSettings", "AdaptationJob", "without_folders"]
