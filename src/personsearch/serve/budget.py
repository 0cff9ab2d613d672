"""The server's bound on decoded pixels: requests reserve their images' declared pixels before
decoding them, and wait (then get a 503) while the images of other requests use the budget up.

Memory held by a request grows with the pixels it decodes (the RGB array, its float copies in the
searcher), so bounding the pixels decoded at once bounds the server's memory; see the README's
"Limits and guarantees" for the bytes per pixel measured.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
import time
from typing import Iterator

from .uploads import ApiError

DEFAULT_PIXEL_BUDGET = 2 * 4096 * 4096  # two images at the default per-image cap
DEFAULT_WAIT_S = 30.0


def _load_malloc_trim():
    """glibc's ``malloc_trim`` (gives freed heap pages back to the system), or None elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_memory() -> None:
    """Hand memory freed by finished requests back to the operating system (glibc keeps it in its
    arenas otherwise, so a burst of large images would stay in the server's resident size)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class PixelBudget:
    """A counting semaphore over decoded pixels, shared by every request of one server.

    ``reserve(pixels)`` blocks while other reservations leave less than ``pixels`` free, for at most
    ``wait_s`` seconds (then ApiError 503); a reservation above ``total`` can never be met (413).
    When the last reservation is released, freed memory is handed back to the system.
    """

    def __init__(self, total: int = DEFAULT_PIXEL_BUDGET, wait_s: float = DEFAULT_WAIT_S) -> None:
        if total < 1:
            raise ValueError(f"the pixel budget must be positive, got {total}")
        self.total = int(total)
        self.wait_s = float(wait_s)
        self.in_use = 0
        self.peak = 0  # the most pixels ever reserved at once (tests and /api/stats)
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, pixels: int, field: str = "image") -> Iterator[None]:
        """Hold ``pixels`` of the budget for the duration of the ``with`` block."""
        pixels = max(0, int(pixels))
        if pixels > self.total:
            raise ApiError(413, f"{field}: {pixels / 1e6:.3g} megapixels in one request is more than the server's "
                                f"budget of {self.total / 1e6:.3g} megapixels (--pixel-budget-mp); send fewer or "
                                "smaller images")
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self.in_use + pixels > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiError(503, f"{field}: the server is busy decoding other images; try again shortly")
                self._cond.wait(left)
            self.in_use += pixels
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= pixels
                idle = self.in_use == 0
                self._cond.notify_all()
            if idle and pixels:
                release_memory()
