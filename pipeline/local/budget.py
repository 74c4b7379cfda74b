"""The memory budget: how many order lines the exports hold, found before they are read, and what they need.

A run that would need more memory than the machine gives is killed by the
kernel half-way, after minutes of work. With ``memory_budget`` set, the local
engine counts the lines first, cheaply (a Parquet file's metadata; the first
megabyte of a text file, scaled by its size), estimates its peak from the
bytes per line measured on this machine, with a margin (Parquet and CSV
exports of 3 and 10 million baskets with text ids, ``docs/performance.md``),
plus the dense item model's matrices, which on a small export with many
products are most of the peak, and refuses up front, with advice, when the
estimate passes the budget.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.config import Config, InputConfig
from pipeline.local.ingest import EXCEL_SUFFIXES, PARQUET_SUFFIXES, expand_paths
from pipeline.policy.guards import check_memory_budget
from pipeline.policy.model import STRONGEST_BLOCK_CELLS

log = logging.getLogger(__name__)

#: Peak resident bytes per order line of a whole ``basket run``, with a margin (measured: 80-89 from
#: Parquet at 31.5 and 105 million lines, 106 from CSV at 31.5 million, text ids), and the process's own
#: footprint before any data.
PEAK_BYTES_PER_LINE = 130
BASE_BYTES = 400 * 1024 * 1024
#: A dense item model at its peak: the Gram matrix and its inverse, 8 bytes a cell each, on
#: ``model.max_items`` squared cells (the products are not known before reading: counted at the most),
#: and the blocks its strongest weights are picked from (:data:`pipeline.policy.model.STRONGEST_BLOCK_CELLS`).
MODEL_BYTES_PER_CELL = 16
MODEL_BLOCK_BYTES = 3 * 8 * STRONGEST_BLOCK_CELLS
#: What is read of a text file to learn its bytes per line.
SAMPLE_BYTES = 1 << 20
#: An Excel sheet has at most this many rows.
EXCEL_ROWS = 1_048_576


def check_budget(config: Config, references: int = 0) -> None:
    """Refuse (:class:`ConfigError`) a run whose exports need more than ``memory_budget``; log the estimate.

    ``references``: dense models held at once besides the item model (``basket evaluate``'s
    item-kNN and SAR, fitted one after the other: one).
    """
    if config.memory_budget is None:
        return
    lines = estimated_lines(config.input)
    peak = estimated_peak(lines, config, references)
    log.info("memory: about %d order lines, an estimated peak of %.1f GB", lines, peak / 1e9)
    check_memory_budget(lines, peak, config.memory_budget, ", ".join(config.input.paths))


def estimated_lines(config: InputConfig) -> int:
    """About how many lines the exports hold (exact for Parquet and for text files under a megabyte)."""
    return sum(_lines_in(path) for path in expand_paths(config.paths))


def estimated_peak(lines: int, config: Config, references: int = 0) -> int:
    """The local engine's estimated peak resident bytes for ``lines`` order lines: the process, the
    lines, and the dense models (the item model under ``rank.by = "model_margin"``, and ``references``)."""
    models = int(config.rank.by == "model_margin") + references
    model = MODEL_BYTES_PER_CELL * config.model.max_items**2 + MODEL_BLOCK_BYTES
    return BASE_BYTES + models * model + lines * PEAK_BYTES_PER_LINE


def _lines_in(path: Path) -> int:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return int(pq.ParquetFile(path).metadata.num_rows)
    if name.endswith(EXCEL_SUFFIXES):
        return EXCEL_ROWS
    size = path.stat().st_size
    with path.open("rb") as raw:
        if name.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw) as text:
                sample = text.read(SAMPLE_BYTES)
                # Compressed bytes read for the sample: the scale from the sample to the whole file.
                consumed = max(raw.tell(), 1)
        else:
            sample = raw.read(SAMPLE_BYTES)
            consumed = len(sample)
    lines = sample.count(b"\n") + (not sample.endswith(b"\n") and len(sample) > 0)
    if consumed >= size:
        return lines
    return int(lines * size / consumed)
