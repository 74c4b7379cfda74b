"""The files of an output directory, as the contract names them, and how a published table is written.

Layout (``docs/output.md``)::

    OUTPUT/
      latest -> runs/<run_id>          (a relative symlink; the storefront reads it)
      runs/<run_id>/recommendations.parquet, rules.parquet, itemsets.parquet, pairs.parquet, bundles.parquet,
                    products.parquet, rejects.parquet, manifest.json
      runs/.partial-<run_id>/          (a run being written; never read)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract.schema import SCHEMA_VERSION
from pipeline.errors import ConfigError, OutputError

#: A run id: start time (UTC, to the millisecond) and the fingerprint of inputs and config.
RUN_ID = re.compile(r"\d{8}T\d{9}Z-[0-9a-f]{8}")

RUNS = "runs"
LATEST = "latest"
PARTIAL_PREFIX = ".partial-"
MANIFEST = "manifest.json"
#: Small row groups let a reader skip most of a sorted table by its statistics.
ROW_GROUP_SIZE = 16_384

#: Writes one published table's Parquet file at a path (through :func:`parquet_writer`),
#: for tables that are not in this process's memory: the Spark engine's executors write them.
TableWriter = Callable[[Path, str], None]


def parquet_writer(path: Path | str, schema: pa.Schema, run_id: str) -> pq.ParquetWriter:
    """The writer of every published table: its schema stamped with the schema version and run id, zstd."""
    metadata = {**(schema.metadata or {}), b"schema_version": SCHEMA_VERSION.encode(), b"run_id": run_id.encode()}
    return pq.ParquetWriter(path, schema.with_metadata(metadata), compression="zstd")


def latest_run(output_dir: Path) -> Path:
    """The directory ``OUTPUT/latest`` points at; :class:`OutputError` when there is none."""
    link = Path(output_dir) / LATEST
    if not link.exists():
        raise OutputError(f"{output_dir} has no published run ({link} does not exist); run 'basket run' first")
    return link.resolve()


def run_directory(output_dir: Path, run_id: str) -> Path:
    """The complete run ``run_id`` inside ``OUTPUT/runs``; :class:`ConfigError` (a usage error) otherwise.

    A run id must have the documented form (``20111209T125000123Z-1a2b3c4d``),
    so a path (``../x``, ``/etc``), a partial run (``.partial-...``) or a typo
    never names a directory outside ``runs/``.
    """
    if not RUN_ID.fullmatch(run_id):
        raise ConfigError(
            f"{run_id!r} is not a run id (like 20111209T125000123Z-1a2b3c4d); see the runs in {Path(output_dir) / RUNS}"
        )
    runs = Path(output_dir) / RUNS
    target = runs / run_id
    if target.is_symlink() or not (target / MANIFEST).is_file():
        raise ConfigError(f"no complete run {run_id} in {runs}: it is not a complete run; see the runs there")
    return target


def check_latest(output_dir: Path) -> None:
    """Refuse, before any work, an ``OUTPUT/latest`` that is not the symlink the pipeline maintains."""
    link = Path(output_dir) / LATEST
    if (link.exists() or link.is_symlink()) and not link.is_symlink():
        kind = "a directory" if link.is_dir() else "a regular file"
        raise OutputError(
            f"{link} is {kind}, not the symbolic link to a run that the pipeline maintains; "
            "move it away (the runs are in runs/) and run again"
        )
