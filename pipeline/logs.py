"""Logging set-up for the command line; the library itself only calls ``logging.getLogger``.

On a terminal, log lines are coloured and timed by rich; under cron (no TTY)
they are plain, one line each, with an ISO-8601 UTC timestamp, on stderr.
``json`` writes one JSON object per line instead, for log shippers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int = logging.INFO, log_format: str = "auto") -> None:
    """Send the ``pipeline`` loggers to stderr at ``level``.

    ``log_format``: ``auto`` (rich on a TTY, plain otherwise), ``plain``, ``json``.
    """
    use_rich = log_format == "auto" and sys.stderr.isatty()
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif use_rich:
        handler = rich_handler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        formatter = logging.Formatter(PLAIN_FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    logger = logging.getLogger("pipeline")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def rich_handler(console: Console | None = None) -> logging.Handler:
    """Coloured, timed log lines for a terminal, on stderr or through ``console``.

    ``console``: a live display's console, so that lines print above the display.
    Without one, a stderr console: rich's default prints to stdout, where the
    log would mix into a command's output (``--json`` piped on).
    """
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(console=console or Console(stderr=True), show_path=False, markup=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
