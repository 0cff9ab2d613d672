"""Logging for the command line: one handler on the ``personsearch`` logger, its level set by -v / -q."""

from __future__ import annotations

import logging
import sys

from ..utils.progress import set_progress

_HANDLER_NAME = "personsearch-cli"


class _CurrentStderr(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when each message is logged, not when the handler was made:
    a caller that swaps stderr (a test capturing it, a wrapper) and closes its stream breaks nothing."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """INFO by default, DEBUG with ``-v``, WARNING (and no progress reports) with ``-q``.

    Messages go to stderr as ``HH:MM:SS name: message``; results (tables, JSON) stay on stdout.
    Calling it again replaces the handler rather than adding a second one.
    """
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logger = logging.getLogger("personsearch")
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = _CurrentStderr()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    set_progress(not quiet)
