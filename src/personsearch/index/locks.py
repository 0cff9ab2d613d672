"""Who may touch an index when: one writer at a time (threads and processes), a connection per thread."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: only the in-process lock applies
    fcntl = None

LOCK_NAME = ".write.lock"


class WriterLock:
    """Serialises writers: a thread lock, plus an flock on ``folder/.write.lock`` across processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._thread_lock = threading.Lock()

    def _flock(self):
        """An open, exclusively locked lock file; None if another process holds it."""
        handle = open(self.folder / LOCK_NAME, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return None
        return handle

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Wait for other threads of this process; ValueError at once if another process writes."""
        with self._thread_lock:
            handle = self._flock()
            if handle is None:
                raise ValueError(f"index {self.folder} is being written by another process; "
                                 "try again when it has finished")
            try:
                yield
            finally:
                handle.close()  # releases the flock

    @contextlib.contextmanager
    def try_hold(self) -> Iterator[bool]:
        """Like ``hold``, but yields False instead of waiting or failing when someone else writes."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            handle = self._flock()
            try:
                yield handle is not None
            finally:
                if handle is not None:
                    handle.close()
        finally:
            self._thread_lock.release()


class ThreadConnections:
    """One SQLite connection per thread (made on first use), all closed by ``close``."""

    def __init__(self, factory: Callable[[], sqlite3.Connection]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._pid = os.getpid()

    def get(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._pid != os.getpid():
            conn = self._factory()
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection made so far."""
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
