"""Progress on long work: a tqdm bar on a terminal, periodic log lines when stderr is a file.

    bar = progress(total=len(items), desc="extract", enabled=True)
    for item in items:
        ...
        bar.update(1)
    bar.close()

A training run whose stderr goes to a log file thus still says where it is every ``interval``
seconds (logger ``personsearch.progress``, level INFO) instead of printing nothing for minutes;
the default interval, 30 s, can be set with the environment variable PERSONSEARCH_PROGRESS_INTERVAL.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from tqdm import tqdm

LOG = logging.getLogger("personsearch.progress")
DEFAULT_INTERVAL = float(os.environ.get("PERSONSEARCH_PROGRESS_INTERVAL", 30))  # s between log lines off a terminal
_switch = {"enabled": True}


def set_progress(enabled: bool) -> None:
    """Turn every progress report of the process on or off (the CLI's ``-q`` turns them off)."""
    _switch["enabled"] = bool(enabled)


class LogProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close`` interface, writing a log line every ``interval`` s."""

    def __init__(self, total: int | None, desc: str, interval: float = DEFAULT_INTERVAL, unit: str = "it") -> None:
        self.total, self.desc, self.interval, self.unit = total, desc, interval, unit
        self.n = 0
        self.postfix = ""
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            LOG.info(self._line(now))

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def _line(self, now: float) -> str:
        elapsed = now - self.start
        done = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        eta = ""
        if self.total and self.n:
            eta = f", ~{elapsed * (self.total - self.n) / self.n:.0f} s left"
        rate = f"{self.n / elapsed:.2f} {self.unit}/s" if elapsed > 0 else ""
        extra = f" [{self.postfix}]" if self.postfix else ""
        return f"{self.desc}: {done} ({elapsed:.0f} s, {rate}{eta}){extra}"

    def close(self) -> None:
        if self.n and time.monotonic() - self.start >= self.interval:
            LOG.info(self._line(time.monotonic()) + " done")

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Silent(LogProgress):
    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass


def progress(total: int | None, desc: str, enabled: bool = True, unit: str = "it",
             interval: float | None = None, leave: bool = False) -> Any:
    """A tqdm bar when ``enabled`` and stderr is a terminal, periodic log lines when it is not, or
    nothing at all when not ``enabled``. The result has ``update``, ``set_postfix`` and ``close``."""
    interval = DEFAULT_INTERVAL if interval is None else interval
    if not (enabled and _switch["enabled"]):
        return _Silent(total, desc, interval, unit)
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)
    return LogProgress(total, desc, interval, unit)


def iterate(items, desc: str, enabled: bool = True, total: int | None = None, unit: str = "it"):
    """Yield from ``items`` while reporting progress like :func:`progress`."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    bar = progress(total, desc, enabled, unit)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()
