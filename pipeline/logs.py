"""Logging set-up for the command line; the library itself only calls ``logging.getLogger``.

On a terminal, log lines are coloured and timed by rich; under cron (no TTY)
they are plain, one line each, with an ISO-8601 UTC timestamp, on stderr.
"""

from __future__ import annotations

import logging
import sys
import time

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO, rich: bool | None = None) -> None:
    """Send the ``pipeline`` loggers to stderr at ``level`` (rich on a TTY by default)."""
    use_rich = sys.stderr.isatty() if rich is None else rich
    handler: logging.Handler
    if use_rich:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        formatter = logging.Formatter(PLAIN_FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    logger = logging.getLogger("pipeline")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
