"""Exports and catalog in, clean lines and baskets out: the first half of every run.

``basket run`` continues from here to mining; ``basket validate`` stops here,
so an analyst can check an export and a config in seconds without mining.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from pipeline.baskets import Baskets, baskets_from_lines
from pipeline.catalog import products_missing, read_catalog
from pipeline.clean import CleanResult, clean_transactions
from pipeline.config import Config
from pipeline.errors import InputDataError
from pipeline.ingest import InputFile, file_sha256, read_transactions

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


@dataclass(frozen=True)
class PreparedInputs:
    """Everything read and cleaned, ready for mining.

    ``cleaned.lines`` is emptied (its columns kept) once the baskets are built:
    at 30 million lines it holds gigabytes that mining needs more, and nothing
    after the baskets reads it. ``baskets.lines`` keeps the count.
    """

    files: list[InputFile]
    cleaned: CleanResult
    catalog: pd.DataFrame | None
    baskets: Baskets
    missing_from_catalog: list[str]


def prepare_inputs(config: Config, stage: StageTimer | None = None) -> PreparedInputs:
    """Read and clean the exports, read the catalog, build the baskets.

    ``files`` lists every input with its content hash, the catalog included.
    Raises :class:`InputDataError` when no basket survives cleaning.
    """
    stage = stage or StageTimer()
    with stage("ingest") as done:
        raw, files = read_transactions(config.input)
        done["rows"] = len(raw)
    with stage("clean") as done:
        cleaned = clean_transactions(raw, config.clean, config.as_of, config.input.timestamp_format)
        done["rows kept"] = len(cleaned.lines)
    del raw
    with stage("catalog"):
        catalog = read_catalog(config.catalog, config.clean.id_case)
    if catalog is not None and config.catalog.path is not None:
        path = Path(config.catalog.path)
        files.append(InputFile(str(path), path.stat().st_size, file_sha256(path), len(catalog)))
    with stage("baskets") as done:
        baskets = baskets_from_lines(cleaned.lines)
        done["baskets"] = baskets.count
    cleaned = replace(cleaned, lines=cleaned.lines.head(0).copy())
    if baskets.count == 0:
        names = ", ".join(f.path for f in files[: len(files) - (catalog is not None)])
        if cleaned.rows_in == 0:
            raise InputDataError(f"{names}: no order lines (only a header?); check the export")
        rejected = ", ".join(f"{k} {v}" for k, v in cleaned.counts.items() if v)
        raise InputDataError(
            f"{names}: no baskets left after cleaning {cleaned.rows_in} rows (rejected: {rejected}); "
            "check the clean.* settings, as_of and the column mapping"
        )
    missing = [] if catalog is None else products_missing(baskets.items, catalog)
    if missing:
        log.warning(
            "%d sold product(s) are not in the catalog (catalog.missing = %s), e.g. %s",
            len(missing),
            config.catalog.missing,
            ", ".join(missing[:5]),
        )
    return PreparedInputs(files, cleaned, catalog, baskets, missing)
