"""Exports and catalog in, clean lines and baskets out: the first half of every run.

``basket run`` continues from here to mining; ``basket validate`` stops here,
so an analyst can check an export and a config in seconds without mining.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.contract.manifest import InputFile
from pipeline.local.baskets import BASKET_COLUMNS, Baskets, baskets_from_lines
from pipeline.local.budget import check_budget
from pipeline.local.catalog import products_missing, read_catalog
from pipeline.local.clean import CleanResult, clean_transactions
from pipeline.local.ingest import file_sha256, read_transactions
from pipeline.policy.guards import no_baskets_error
from pipeline.stages import StageTimer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedInputs:
    """Everything read and cleaned, ready for mining.

    The kept lines are taken out of ``cleaned`` (:meth:`CleanResult.take_lines`), only the columns the
    baskets are built from (no quantities or prices), and dropped: at 30 million lines they hold
    gigabytes that mining needs more, and nothing after the baskets reads them. ``baskets.lines`` keeps
    the count.
    """

    files: list[InputFile]
    cleaned: CleanResult
    catalog: pd.DataFrame | None
    baskets: Baskets
    missing_from_catalog: list[str]


def prepare_inputs(config: Config, stage: StageTimer | None = None, rejects_dir: Path | None = None) -> PreparedInputs:
    """Read and clean the exports, read the catalog, build the baskets.

    ``files`` lists every input with its content hash, the catalog included.
    The rejected lines are written to a file in ``rejects_dir`` (:mod:`pipeline.local.rejects`).
    Raises :class:`InputDataError` when no basket survives cleaning.
    """
    stage = stage or StageTimer()
    check_budget(config)
    with stage("ingest") as done:
        raw, files = read_transactions(config.input)
        done["rows"] = len(raw)
    with stage("clean") as done:
        cleaned = clean_transactions(raw, config.clean, config.as_of, config.input, rejects_dir)
        done["rows kept"] = int(cleaned.kept.sum())
    del raw
    with stage("catalog"):
        catalog = read_catalog(config.catalog, config.clean.id_case)
    if catalog is not None and config.catalog.path is not None:
        path = Path(config.catalog.path)
        files.append(InputFile(str(path), path.stat().st_size, file_sha256(path), len(catalog)))
    with stage("baskets") as done:
        baskets = baskets_from_lines(cleaned.take_lines(BASKET_COLUMNS))
        done["baskets"] = baskets.count
    if baskets.count == 0:
        raise no_baskets_error(
            ", ".join(f.path for f in files[: len(files) - (catalog is not None)]), cleaned.rows_in, cleaned.counts
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
