"""Tables in, a complete run directory out, and ``latest`` switched to it atomically.

The layout of an output directory is :mod:`pipeline.contract.files`. A run
is written under a ``.partial-`` name, flushed to disk, renamed into place,
and only then does ``latest`` switch, by renaming a new symlink over the old
one (atomic on POSIX). A reader therefore sees the previous run or the
new one, never a mix; a failed or killed run leaves ``latest`` as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.contract.files import (
    LATEST,
    MANIFEST,
    PARTIAL_PREFIX,
    ROW_GROUP_SIZE,
    RUNS,
    TableWriter,
    latest_run,
    parquet_writer,
    run_directory,
)
from pipeline.contract.manifest import Manifest, read_manifest
from pipeline.errors import OutputError
from pipeline.flow.lock import run_lock

log = logging.getLogger(__name__)


def new_run_id(started: datetime, fingerprint: str) -> str:
    """``20111209T125000123Z-1a2b3c4d``: start time (UTC, ms) and input+config fingerprint."""
    return f"{started.strftime('%Y%m%dT%H%M%S')}{started.microsecond // 1000:03d}Z-{fingerprint[:8]}"


def write_run(
    output_dir: Path, run_id: str, tables: Mapping[str, pa.Table | TableWriter], manifest: Mapping[str, Any]
) -> Path:
    """Write every table and the manifest into ``runs/<run_id>``; return that directory.

    A table is an Arrow table, or a :data:`TableWriter` that writes it.
    Raises :class:`OutputError` when the directory cannot be written.
    """
    runs = output_dir / RUNS
    partial = runs / f"{PARTIAL_PREFIX}{run_id}"
    final = runs / run_id
    try:
        partial.mkdir(parents=True, exist_ok=False)
        for name, table in tables.items():
            path = partial / f"{name}.parquet"
            if isinstance(table, pa.Table):
                with parquet_writer(path, table.schema, run_id) as writer:
                    writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
            else:
                table(path, run_id)
            fsync_path(path)
            log.debug("wrote %s", path)
        manifest_path = partial / MANIFEST
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
        fsync_path(manifest_path)
        fsync_path(partial)
        log.debug("run %s complete, renaming into place", run_id)
        partial.rename(final)
        fsync_path(runs)
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
        fsync_path(output_dir)
    except OSError as exc:
        raise OutputError(f"cannot switch {link} to {target}: {exc.strerror or exc}") from None
    log.info("published %s -> %s", link, target)


def fsync_path(path: Path) -> None:
    """Flush a file or directory entry to disk, so a crash cannot publish a torn file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_partial_runs(output_dir: Path) -> list[str]:
    """Delete the ``.partial-`` directories of runs that died; call only under the run lock."""
    runs = output_dir / RUNS
    removed = sorted(p.name for p in runs.glob(f"{PARTIAL_PREFIX}*")) if runs.is_dir() else []
    for name in removed:
        shutil.rmtree(runs / name, ignore_errors=True)
        log.warning("removed %s, left by a run that did not finish", runs / name)
    return removed


def published_manifest(output_dir: Path) -> Manifest | None:
    """The manifest of the run ``latest`` points at, or None before the first publish."""
    link = output_dir / LATEST
    if not link.exists():
        return None
    return read_manifest(link.resolve() / MANIFEST)


def run_ids(output_dir: Path) -> list[str]:
    """Complete run directories, oldest first (run ids sort by start time)."""
    runs = output_dir / RUNS
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))


def prune_runs(output_dir: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` publishable runs and the newest ``keep`` held-back ones, never
    the one ``latest`` points at.

    Counted apart, so that nights held back by a gate never push out the good
    runs that ``rollback`` goes back to.
    """
    current = (output_dir / LATEST).resolve().name if (output_dir / LATEST).exists() else None
    ids = run_ids(output_dir)
    good = [r for r in ids if _publishable(output_dir / RUNS / r)]
    held = [r for r in ids if r not in set(good)]
    old = sorted(r for r in (*good[:-keep], *held[:-keep]) if r != current)
    for run_id in old:
        shutil.rmtree(output_dir / RUNS / run_id, ignore_errors=True)
    if old:
        log.info("retention (output.keep_runs = %d): deleted %d old run(s)", keep, len(old))
    return old


def rollback(output_dir: Path, run_id: str | None = None) -> Path:
    """Point ``latest`` at ``run_id``, or at the newest publishable run before the current one.

    A run held back by a quality gate is a target only when named explicitly.
    Holds the run lock: a rollback never races a run's own switch of ``latest``
    or its pruning of old runs (:class:`~pipeline.errors.RunLockedError` while a run writes).
    """
    with run_lock(output_dir):
        current = latest_run(output_dir).name
        if run_id is None:
            run_id = previous_run(output_dir, current)
            if run_id is None:
                raise OutputError(f"no run before {current} to roll back to in {output_dir / RUNS}")
        target = run_directory(output_dir, run_id)
        publish(output_dir, target)
    return target


def previous_run(output_dir: Path, run_id: str) -> str | None:
    """The newest publishable (passed or forced) run older than ``run_id``, if any."""
    earlier = [r for r in run_ids(output_dir) if r < run_id and _publishable(output_dir / RUNS / r)]
    return earlier[-1] if earlier else None


def _publishable(run_dir: Path) -> bool:
    try:
        gates = json.loads((run_dir / MANIFEST).read_text()).get("gates", {})
    except (OSError, ValueError):
        return False
    return bool(gates.get("passed") or gates.get("forced"))
