"""The policy's numpy kernels on the executors: Arrow batches in and out through ``mapInArrow``.

This is how the Spark engine follows :mod:`pipeline.policy` without restating
it: a kernel (a function of numpy columns) runs unchanged on every batch, so a
measure, a filter or a score is computed by the same code on both engines.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Output column types a kernel may produce: Arrow type and Spark SQL type name.
_TYPES = {"double": pa.float64(), "boolean": pa.bool_(), "byte": pa.int8(), "string": pa.string()}


def with_kernel(
    frame: DataFrame,
    kernel: Callable[..., Mapping[str, np.ndarray]],
    inputs: Sequence[str],
    outputs: Mapping[str, str],
) -> DataFrame:
    """``frame`` plus the columns ``kernel`` computes from the ``inputs`` columns, batch by batch.

    ``outputs`` names each new column and its type (``double``, ``boolean``,
    ``byte`` or ``string``); a NaN double becomes null, as the local tables publish it.
    Numeric inputs arrive as numpy arrays, nulls as NaN.
    """
    from pyspark.sql import types as T

    spark_types = {"double": T.DoubleType(), "boolean": T.BooleanType(), "byte": T.ByteType(), "string": T.StringType()}
    schema = T.StructType([*frame.schema.fields, *(T.StructField(n, spark_types[t]) for n, t in outputs.items())])

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            values = [batch.column(c).to_numpy(zero_copy_only=False) for c in inputs]
            found = kernel(*values)
            added = [pa.array(found[n], _TYPES[t], from_pandas=t == "double") for n, t in outputs.items()]
            yield pa.RecordBatch.from_arrays([*batch.columns, *added], names=[*batch.schema.names, *outputs])

    return map_in_arrow(frame, apply, schema)


def where_kernel(frame: DataFrame, predicate: Callable[..., np.ndarray], inputs: Sequence[str]) -> DataFrame:
    """The rows of ``frame`` for which a policy's ``predicate`` over the ``inputs`` columns holds."""

    def keep(*values: np.ndarray) -> dict[str, np.ndarray]:
        return {"_keep": predicate(*values)}

    return with_kernel(frame, keep, inputs, {"_keep": "boolean"}).where("_keep").drop("_keep")


def map_in_arrow(frame: DataFrame, function: object, schema: object) -> DataFrame:
    """``frame.mapInArrow``: Arrow batches in and out on the executors, no pandas involved.

    pyspark checks the pandas version before any Arrow UDF and warns that
    pandas 3 is not fully supported; this path never converts to pandas, so
    that warning does not apply here and is silenced for this call only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        return frame.mapInArrow(function, schema)  # type: ignore[arg-type]
