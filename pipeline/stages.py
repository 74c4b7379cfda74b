"""How long each stage took, in the log and on a progress display: one timer for every engine and command."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


#: Told of each stage as it starts (elapsed None) and ends (seconds, and what it produced).
StageListener = Callable[[str, float | None, str], None]


@dataclass
class StageTimer:
    """Times each stage of a run (summed over segments), logs one INFO line per stage, tells a listener.

    ``with stage("clean") as done:`` yields a dict the stage may fill with
    counts (``done["rows kept"] = n``); they go into the log line and to the
    listener (the command line's progress display).
    """

    timings: dict[str, float] = field(default_factory=dict)
    listener: StageListener | None = None

    @contextmanager
    def __call__(self, name: str) -> Iterator[dict[str, int]]:
        if self.listener:
            self.listener(name, None, "")
        done: dict[str, int] = {}
        start = time.perf_counter()
        yield done
        elapsed = time.perf_counter() - start
        # A stage run once per segment adds up.
        self.timings[name] = self.timings.get(name, 0.0) + elapsed
        detail = ", ".join(f"{value:,} {key}" for key, value in done.items())
        log.info("stage %s done in %.2f s%s", name, elapsed, f": {detail}" if detail else "")
        if self.listener:
            self.listener(name, elapsed, detail)
