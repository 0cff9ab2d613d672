"""System files some tests need: Debian's real pedestrian video and Debian's Chromium.

`make test` installs both (tools/system_deps.sh); when one is missing the tests that need it FAIL
with the command to install it, rather than skipping and hiding what was not tested.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def require_vtest() -> Path:
    """The path of vtest.avi, or a test failure naming the package."""
    if not VTEST.is_file():
        pytest.fail(f"{VTEST} is missing: apt-get install opencv-doc (tools/system_deps.sh test does it as root)")
    return VTEST


def require_chromium() -> str:
    """The Chromium binary, or a test failure naming the package."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (tools/system_deps.sh test does it as root)")
    return CHROMIUM


def vtest_frames(frame_ids) -> list:
    """RGB uint8 frames ``frame_ids`` (ascending) of vtest.avi, or a test failure naming the package."""
    import cv2  # opencv-python-headless
    import numpy as np

    require_vtest()
    cap = cv2.VideoCapture(str(VTEST))
    out, i = [], 0
    try:
        while len(out) < len(frame_ids):
            ok, bgr = cap.read()
            assert ok, f"could not decode frame {i} of {VTEST}"
            if i in frame_ids:
                out.append(np.ascontiguousarray(bgr[:, :, ::-1]))
            i += 1
    finally:
        cap.release()
    assert out[0].shape == (576, 768, 3) and out[0].dtype == np.uint8
    return out
