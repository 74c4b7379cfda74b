"""A Spark DataFrame in, one Parquet file of the output contract out, written by an executor.

Spark's own writer makes a directory of part files with Spark's schema; the
storefront reads single files with the declared schema, the schema version and
the run id in their metadata. So each table is sorted into one partition and
that partition's executor writes it through the same
:func:`pipeline.flow.publish.parquet_writer` as the local engine, in row groups of
the same size, casting to the declared schema (NaN as null, as
``pyarrow.Table.from_pandas`` publishes it). The data goes from executor to
file, never through the driver; the file's folder must be reachable from the
executors (shared storage on a cluster, ``docs/spark.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract.files import ROW_GROUP_SIZE, TableWriter, parquet_writer
from pipeline.spark.kernels import map_in_arrow

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def table_writer(frame: DataFrame, schema: pa.Schema, order: Sequence[str | Column]) -> TableWriter:
    """A writer of ``frame``'s rows in ``order`` as a file of ``schema`` (extra columns are left out)."""

    def write(path: Path, run_id: str) -> None:
        ordered = frame.select(*schema.names).repartition(1).sortWithinPartitions(*order)
        map_in_arrow(ordered, _file_writer(str(path), schema, run_id), "rows long").collect()
        if not path.exists():
            # An empty frame may have no partition at all, so no task wrote the file.
            with parquet_writer(path, schema, run_id) as writer:
                writer.write_table(schema.empty_table())

    return write


def _file_writer(path: str, schema: pa.Schema, run_id: str):  # type: ignore[no-untyped-def]
    """The function an executor runs over the one partition: write it, report its row count."""

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows, pending = 0, []
        with parquet_writer(path, schema, run_id) as writer:
            for batch in batches:
                pending.append(as_published(batch, schema))
                rows += batch.num_rows
                if sum(len(t) for t in pending) >= ROW_GROUP_SIZE:
                    table = pa.concat_tables(pending)
                    full = len(table) // ROW_GROUP_SIZE * ROW_GROUP_SIZE
                    writer.write_table(table.slice(0, full), row_group_size=ROW_GROUP_SIZE)
                    pending = [table.slice(full)]
            if pending or not rows:
                writer.write_table(
                    pa.concat_tables(pending) if pending else schema.empty_table(), row_group_size=ROW_GROUP_SIZE
                )
        yield pa.RecordBatch.from_pydict({"rows": [rows]})

    return write


def as_published(batch: pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """A batch from Spark in the declared schema: its columns, types and nulls."""
    columns = []
    for field in schema:
        column = batch.column(field.name)
        if pa.types.is_floating(column.type):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)
