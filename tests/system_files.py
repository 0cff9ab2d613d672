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
