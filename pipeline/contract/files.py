"""The files of an output directory, as the contract names them, and how a published table is written.

Layout (``docs/output.md``)::

    OUTPUT/
      latest -> runs/<run_id>          (a relative symlink; the storefront reads it)
      runs/<run_id>/recommendations.parquet, rules.parquet, itemsets.parquet, bundles.parquet,
                    products.parquet, rejects.parquet, manifest.json
      runs/.partial-<run_id>/          (a run being written; never read)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract.schema import SCHEMA_VERSION
from pipeline.errors import OutputError

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
