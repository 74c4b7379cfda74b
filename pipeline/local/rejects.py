"""Rejected lines on disk from the moment cleaning settles them, never held whole in memory.

Cleaning settles every line's verdict in one pass of vectorised steps, then
writes the rejected lines, in source order, a chunk of :data:`REJECT_CHUNK`
at a time, to a temporary Parquet file of the published ``rejects.parquet``
layout. The run publishes that file by copying it a row group at a time with
the run's stamp (:meth:`RejectsFile.publish`): an export whose lines are half
rejects (returns, copies, fees) costs the run a chunk of them, not all of them,
for the rest of its stages.

The temporary file lives in a directory named ``.partial-rejects-...``: under
the output's ``runs/`` for ``basket run`` (the same disk as the run; a run
killed before it ends leaves it to the next run's clean-up of partial runs),
else in the system's temporary directory. It is removed when its
:class:`RejectsFile` is closed or collected.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract.files import PARTIAL_PREFIX, ROW_GROUP_SIZE, parquet_writer
from pipeline.contract.schema import REJECTS, TEXT, to_table
from pipeline.errors import OutputError

#: Rejected lines converted and written at a time.
REJECT_CHUNK = 1 << 20


class RejectsFile:
    """The rejected lines of one cleaning, appended in source order; ``rows`` counts them."""

    def __init__(self, directory: Path | None = None) -> None:
        """Raises :class:`OutputError` when ``directory`` cannot hold the file."""
        try:
            if directory is not None:
                directory.mkdir(parents=True, exist_ok=True)
            self._directory = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}rejects-", dir=directory))
            self._removal = weakref.finalize(self, shutil.rmtree, self._directory, ignore_errors=True)
            self.path = self._directory / "rejects.parquet"
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, REJECTS, compression="zstd")
        except OSError as exc:
            raise OutputError(f"cannot write the rejected lines in {directory}: {exc.strerror or exc}") from None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Append rejected lines (the columns of ``REJECTS``); :class:`OutputError` when the disk refuses."""
        if self._writer is None:
            raise ValueError("the rejects file is complete: no more lines can be written")
        try:
            self._writer.write_table(to_table(frame, REJECTS), row_group_size=ROW_GROUP_SIZE)
        except OSError as exc:
            raise OutputError(f"cannot write the rejected lines to {self.path}: {exc.strerror or exc}") from None
        self.rows += len(frame)

    def complete(self) -> None:
        """Write the file's footer: every rejected line is in."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def table(self) -> pa.Table:
        """Every rejected line, read back whole: for a look from Python; the pipeline only copies the file."""
        self.complete()
        return pq.read_table(self.path, schema=REJECTS)

    def frame(self) -> pd.DataFrame:
        """:meth:`table` as a frame, text as :data:`~pipeline.contract.schema.TEXT`."""
        return self.table().to_pandas(types_mapper={pa.string(): TEXT}.get)

    def publish(self, path: Path, run_id: str) -> None:
        """Write the published ``rejects.parquet`` at ``path``, stamped with ``run_id``, a row group at a
        time (a :data:`~pipeline.contract.files.TableWriter`)."""
        self.complete()
        source = pq.ParquetFile(self.path)
        with parquet_writer(path, REJECTS, run_id) as writer:
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group), row_group_size=ROW_GROUP_SIZE)
            if not source.num_row_groups:
                writer.write_table(REJECTS.empty_table())

    def close(self) -> None:
        """Remove the file."""
        self.complete()
        self._removal()
