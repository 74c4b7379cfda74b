"""Does a table keep the contract? Declared schemas and finite metrics, checked before a run is published."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract.schema import TABLES

#: The metric columns that must be finite (or null), in the tables that have them.
METRICS = ("support", "confidence", "lift", "leverage", "expected_margin", "score", "consequent_margin")
#: The tables whose metrics are checked.
METRIC_TABLES = ("recommendations", "rules")


def table_problems(tables: Mapping[str, pa.Table]) -> list[str]:
    """Non-finite metrics and tables that do not match their declared schema."""
    bad = {}
    for name in METRIC_TABLES:
        table = tables[name]
        for column in METRICS:
            if column in table.column_names and table.num_rows:
                values = pc.drop_null(table[column])
                bad[name, column] = len(values) - pc.sum(pc.is_finite(values)).as_py() if len(values) else 0
    return metric_problems(bad) + [
        f"schema: {name}.parquet does not match the declared schema"
        for name, table in tables.items()
        if not table.schema.remove_metadata().equals(TABLES[name])
    ]


def metric_problems(non_finite: Mapping[tuple[str, str], int]) -> list[str]:
    """One failure per (table, column) with non-finite values, from their counts."""
    return [f"metrics: {n} non-finite value(s) in {name}.{column}" for (name, column), n in non_finite.items() if n]
