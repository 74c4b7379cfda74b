"""Tables in, a complete run directory out, and ``latest`` switched to it atomically.

Layout of an output directory::

    OUTPUT/
      latest -> runs/<run_id>          (a relative symlink; the storefront reads it)
      runs/<run_id>/recommendations.parquet, rules.parquet, itemsets.parquet,
                    rejects.parquet, manifest.json
      runs/.partial-<run_id>/          (a run being written; never read)

A run is written under a ``.partial-`` name, flushed to disk, renamed into
place, and only then does ``latest`` switch, by renaming a new symlink over
the old one (atomic on POSIX). A reader therefore sees the previous run or the
new one, never a mix; a failed or killed run leaves ``latest`` as it was.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import OutputError
from pipeline.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

RUNS = "runs"
LATEST = "latest"
PARTIAL_PREFIX = ".partial-"
MANIFEST = "manifest.json"
#: Small row groups let a reader skip most of a sorted table by its statistics.
ROW_GROUP_SIZE = 16_384


def new_run_id(started: datetime, fingerprint: str) -> str:
    """``20111209T125000123Z-1a2b3c4d``: start time (UTC, ms) and input+config fingerprint."""
    return f"{started.strftime('%Y%m%dT%H%M%S')}{started.microsecond // 1000:03d}Z-{fingerprint[:8]}"


def write_run(
    output_dir: Path, run_id: str, tables: Mapping[str, pa.Table], manifest: Mapping[str, Any]
) -> Path:
    """Write every table and the manifest into ``runs/<run_id>``; return that directory.

    Raises :class:`OutputError` when the directory cannot be written.
    """
    runs = output_dir / RUNS
    partial = runs / f"{PARTIAL_PREFIX}{run_id}"
    final = runs / run_id
    try:
        partial.mkdir(parents=True, exist_ok=False)
        for name, table in tables.items():
            metadata = {
                **(table.schema.metadata or {}),
                b"schema_version": SCHEMA_VERSION.encode(),
                b"run_id": run_id.encode(),
            }
            path = partial / f"{name}.parquet"
            pq.write_table(
                table.replace_schema_metadata(metadata),
                path,
                row_group_size=ROW_GROUP_SIZE,
                compression="zstd",
            )
            _fsync(path)
        manifest_path = partial / MANIFEST
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
        _fsync(manifest_path)
        _fsync(partial)
        partial.rename(final)
        _fsync(runs)
    except OSError as exc:
        raise OutputError(f"cannot write the run to {partial}: {exc.strerror or exc}") from None
    return final


def publish(output_dir: Path, run_dir: Path) -> None:
    """Point ``OUTPUT/latest`` at ``run_dir`` in one atomic rename."""
    link = output_dir / LATEST
    temporary = output_dir / f".{LATEST}.{os.getpid()}"
    target = os.path.relpath(run_dir, output_dir)
    try:
        if temporary.is_symlink() or temporary.exists():
            temporary.unlink()
        temporary.symlink_to(target, target_is_directory=True)
        os.replace(temporary, link)
        _fsync(output_dir)
    except OSError as exc:
        raise OutputError(f"cannot switch {link} to {target}: {exc.strerror or exc}") from None
    log.info("published %s -> %s", link, target)


def latest_run(output_dir: Path) -> Path:
    """The directory ``OUTPUT/latest`` points at; :class:`OutputError` when there is none."""
    link = Path(output_dir) / LATEST
    if not link.exists():
        raise OutputError(
            f"{output_dir} has no published run ({link} does not exist); run 'basket run' first"
        )
    return link.resolve()


def _fsync(path: Path) -> None:
    """Flush a file or directory entry to disk, so a crash cannot publish a torn file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
