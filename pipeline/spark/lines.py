"""Exports in, clean order lines and rejected lines out, on Spark.

The same reading and the same cleaning steps, in the same order and with the
same reason names, as :mod:`pipeline.local.ingest` and :mod:`pipeline.local.clean`; this
module only says them in Spark's column expressions. Every line keeps its
``source_file`` and ``source_row`` (numbered as the local engine numbers them:
the header is row 1 of a CSV file), so a reject points at the same row; one
difference: in a CSV file with blank lines or line breaks inside quoted
values, the local engine numbers a record by the line it starts on, this one
by its position among the records (Spark's reader does not say where a record
starts).

Inputs are local paths and globs (hashed like the local engine's) or any URI
Spark's Hadoop layer reads (``hdfs://``, ``s3a://``, ``abfss://``, ``gs://``),
listed through Hadoop; for those the manifest fingerprints size and
modification time instead of content, which would mean reading every byte on
the driver. Excel files are not read here: export the sheet to CSV or Parquet.
"""

from __future__ import annotations

import hashlib
import logging
import operator
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.config import CANONICAL_COLUMNS, CleanConfig, Config, InputConfig
from pipeline.contract.manifest import InputFile
from pipeline.contract.schema import TEXT
from pipeline.errors import ConfigError, InputDataError
from pipeline.local.clean import (
    ID_COLUMNS,
    REASONS,
    TEXT_COLUMNS,
    invalid_share_error,
    normalise_ids,
    orders_after_steps,
)
from pipeline.local.ingest import (
    column_mapping,
    expand_paths,
    file_sha256,
    nested_column_error,
    quoted_split,
    swallowed_lines,
)
from pipeline.policy.names import most_frequent_names
from pipeline.spark.session import aggregate_row

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

_PARQUET = (".parquet", ".pq")
_EXCEL = (".xlsx", ".xlsm")
#: A plain decimal number, as Arrow's and pandas' parsers read it (Java's also takes "1.5d" and hex).
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^(?i)[+-]?inf(inity)?$"
#: Unicode white space at either end, as Python's and Arrow's ``strip`` remove it (Spark's trim removes spaces only).
_EDGE_SPACE = r"(?U)^\s+|\s+$"
#: strptime directives and the Java DateTimeFormatter patterns that read the same text.
_STRPTIME = {
    "%Y": "yyyy",
    "%y": "yy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%I": "hh",
    "%M": "mm",
    "%S": "ss",
    "%f": "SSSSSS",
    "%p": "a",
    "%b": "MMM",
    "%B": "MMMM",
    "%a": "EEE",
    "%A": "EEEE",
    "%z": "Z",
    "%%": "%",
}


@dataclass(frozen=True)
class SparkLines:
    """Every line read with its verdict; what the cleaning counted.

    ``lines`` has the normalised columns, ``reason`` (null for a kept line),
    the values as read (``raw_*``), ``source_file``, ``source_row`` and
    ``file_index``; it is persisted, since the rejects, the baskets and the
    counts all read it.
    """

    lines: DataFrame
    files: list[InputFile]
    rows_in: int
    counts: dict[str, int]
    orders_after: dict[str, int]
    as_of: datetime | None

    @property
    def kept(self) -> DataFrame:
        """The clean lines."""
        return self.lines.where("reason IS NULL")

    @property
    def rejects(self) -> DataFrame:
        """The rejected lines in the columns of ``rejects.parquet``, values as read."""
        from pyspark.sql import functions as F

        # Typed values (a Parquet file's numbers) written by Spark's own rendering, as pandas writes them
        # in the local engine (18.0 as "18.0"; Arrow, which writes the file, would say "18").
        raw = [F.col(f"raw_{c}").cast("string").alias(c) for c in CANONICAL_COLUMNS]
        return self.lines.where("reason IS NOT NULL").select("source_file", "source_row", "reason", *raw, "file_index")


def export_names(kept: DataFrame) -> pd.Series | None:
    """Product id -> its name as the clean lines describe it (:func:`pipeline.policy.names.most_frequent_names`);
    None when no line has one. Only (product, name) line counts come to the driver."""
    from pyspark.sql import functions as F

    counted = kept.where(F.col("product_name").isNotNull()).groupBy("product_id", "product_name").count().collect()
    if not counted:
        return None
    ids, names, lines = zip(*((r["product_id"], r["product_name"], r["count"]) for r in counted), strict=True)
    return most_frequent_names(np.array(ids, dtype=object), np.array(names, dtype=object), np.array(lines))


def clean_lines(spark: SparkSession, config: Config) -> SparkLines:
    """Read every export, apply every cleaning step; raise :class:`InputDataError` as the local engine does."""
    raw, files = read_lines(spark, config.input)
    return _cleaned(raw, files, config)


def read_lines(spark: SparkSession, config: InputConfig) -> tuple[DataFrame, list[InputFile]]:
    """All order lines of every input, with ``raw_*`` canonical columns and their source rows.

    Files are read one by one (each file's own header maps its columns) and
    put one after another; ``file_index`` keeps their order.
    """
    from pyspark.sql import functions as F

    found = _input_files(spark, config.paths)
    frames = []
    rows: dict[int, int] = {}
    for index, (path, _fingerprint, _size) in enumerate(found):
        if path.lower().endswith(_EXCEL):
            raise InputDataError(
                f"{path}: the spark engine reads CSV and Parquet, not Excel; export the sheet to CSV or "
                "Parquet, or set engine = 'local'"
            )
        if config.format == "baskets":
            frame = _read_baskets(spark, path, config)
        else:
            frame, rows[index] = _read_table(spark, path, config)
        frames.append(frame.withColumns({"source_file": F.lit(path), "file_index": F.lit(index)}))
    lines = frames[0]
    for frame in frames[1:]:
        lines = lines.unionByName(frame)
    if config.format == "baskets":  # a row per item: counted after splitting the lines
        rows = dict(lines.groupBy("file_index").count().collect())
    files = [
        InputFile(path, size, fingerprint, int(rows.get(i, 0))) for i, (path, fingerprint, size) in enumerate(found)
    ]
    for file in files:
        log.info("read %s: %d rows", file.path, file.rows)
    return lines, files


def _input_files(spark: SparkSession, patterns: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """(path, fingerprint, bytes) of each input file: local files hashed, URIs listed through Hadoop."""
    local = [p for p in patterns if "://" not in p]
    found = [(str(p), file_sha256(p), p.stat().st_size) for p in expand_paths(local)] if local else []
    if not patterns:
        expand_paths(patterns)  # raises the local engine's "no input given"
    jvm: Any = spark.sparkContext._jvm
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for pattern in (p for p in patterns if "://" in p):
        path = jvm.org.apache.hadoop.fs.Path(pattern)
        statuses = path.getFileSystem(hadoop).globStatus(path) or []
        matches = sorted((s for s in statuses if s.isFile()), key=lambda s: s.getPath().toString())
        if not matches:
            raise InputDataError(f"input {pattern!r} matches no file")
        for status in matches:
            name, size, modified = status.getPath().toString(), status.getLen(), status.getModificationTime()
            stamp = hashlib.sha256(f"{name}\0{size}\0{modified}".encode()).hexdigest()
            found.append((name, stamp, int(size)))
    return found


def _read_table(spark: SparkSession, path: str, config: InputConfig) -> tuple[DataFrame, int]:
    """A CSV (gzip too) or Parquet file with ``raw_*`` canonical columns and ``source_row``; its rows."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, BinaryType, MapType, NumericType, StringType, StructType

    if path.lower().endswith(_PARQUET):
        frame, first_row = spark.read.parquet(path), 1
        quote_error = F.lit(False)
    else:
        # Every field as text, an empty field as missing, RFC 4180 quoting, line breaks inside quotes.
        frame = spark.read.options(
            header=True,
            sep=config.delimiter,
            encoding=config.encoding,
            multiLine=True,
            quote='"',
            escape='"',
            inferSchema=False,
            mode="PERMISSIVE",
        ).csv(path)
        first_row = 2
        # Any value, read or not, that swallowed whole lines (a stray quote) rejects its record.
        swallowed = swallowed_lines(config.delimiter, len(frame.columns))
        tests = [F.coalesce(F.col(f"`{c}`").rlike(swallowed), F.lit(False)) for c in frame.columns]
        quote_error = reduce(operator.or_, tests) if len(frame.columns) > 1 else F.lit(False)
    mapping = column_mapping(frame.columns, config, Path(path))
    types = {f.name: f.dataType for f in frame.schema.fields}
    columns = {}
    for canon in CANONICAL_COLUMNS:
        source = mapping.get(canon)
        if source is not None and isinstance(types[source], ArrayType | MapType | StructType):
            raise nested_column_error(path, source, types[source].simpleString())
        if source is None:
            columns[f"raw_{canon}"] = F.lit(None).cast("string")
        elif canon in TEXT_COLUMNS and isinstance(types[source], NumericType):
            # Whole-number ids stored as floats (1234.0) are the id 1234, as in the local engine.
            value = F.col(f"`{source}`")
            whole = F.when((value == F.floor(value)) & (F.abs(value) < 2**53), value.cast("long").cast("string"))
            columns[f"raw_{canon}"] = whole.otherwise(value.cast("string"))
        elif canon in TEXT_COLUMNS or isinstance(types[source], StringType | BinaryType):
            columns[f"raw_{canon}"] = F.col(f"`{source}`").cast("string")
        else:
            columns[f"raw_{canon}"] = F.col(f"`{source}`")
    columns["quote_error"] = quote_error
    return _numbered(frame.select([value.alias(name) for name, value in columns.items()]), first_row)


def _read_baskets(spark: SparkSession, path: str, config: InputConfig) -> DataFrame:
    """One basket per line, read as :func:`pipeline.local.ingest.basket_items` reads it.

    Its number is the order id; each item trimmed on its own, unquoted, empty
    ones dropped; a line without items is one row with no product.
    """
    from pyspark.sql import functions as F

    lines, _ = _numbered(spark.read.option("encoding", config.encoding).text(path), 1)
    # A byte-order mark opening a line is not part of its first item.
    value = F.regexp_replace("value", "^\ufeff", "")
    # \\Q...\\E: the delimiter is a literal, not a regular expression.
    parts = F.split(value, f"\\Q{config.delimiter}\\E", -1)
    if config.delimiter != '"':
        parts = F.when(value.contains('"'), F.split(value, quoted_split(config.delimiter), -1)).otherwise(parts)

    def unquoted(part: Column) -> Column:
        item = F.regexp_replace(part, _EDGE_SPACE, "")
        if config.delimiter == '"':  # quotes delimit the items: nothing is quoted
            return item
        inner = F.regexp_replace(F.regexp_replace(item, '^"|"$', ""), '""', '"')
        quoted = (F.length(item) >= 2) & item.startswith('"') & item.endswith('"')
        return F.when(quoted, F.regexp_replace(inner, _EDGE_SPACE, "")).otherwise(item)

    found = F.filter(F.transform(parts, unquoted), lambda item: item != "")
    items = F.when(F.size(found) > 0, found).otherwise(F.array(F.lit(None).cast("string")))
    return lines.select("source_row", F.explode(items).alias("item")).select(
        F.col("source_row").cast("string").alias("raw_order_id"),
        F.col("item").alias("raw_product_id"),
        *(F.lit(None).cast("string").alias(f"raw_{c}") for c in CANONICAL_COLUMNS[2:]),
        F.lit(False).alias("quote_error"),
        "source_row",
    )


def _numbered(frame: DataFrame, first_row: int) -> tuple[DataFrame, int]:
    """``frame`` with ``source_row``: its position in the file, from ``first_row``; and its rows.

    Spark reads a file's splits in file order, one after another in partition
    order, so the position is the rows of earlier partitions plus the position
    inside this one. Counting them is one small aggregation; nothing comes to
    the driver but one number per partition, which also add up to the file's rows.
    """
    from pyspark.sql import functions as F

    frame = frame.withColumns({"_part": F.spark_partition_id(), "_id": F.monotonically_increasing_id()})
    sizes = frame.groupBy("_part").agg(F.count("*").alias("n"), F.min("_id").alias("first")).collect()
    offsets, total = [], first_row
    for row in sorted(sizes, key=lambda r: r["_part"]):
        offsets.append((row["_part"], total - row["first"]))
        total += row["n"]
    if not offsets:
        return frame.drop("_part", "_id").withColumn("source_row", F.lit(None).cast("long")), 0
    shift = F.create_map(*(F.lit(v) for pair in offsets for v in pair))
    numbered = frame.withColumn("source_row", (F.col("_id") + shift[F.col("_part")]).cast("long"))
    return numbered.drop("_part", "_id"), total - first_row


def _cleaned(raw: DataFrame, files: list[InputFile], config: Config) -> SparkLines:
    """Every cleaning step of :func:`pipeline.local.clean.clean_transactions`, in its order."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    clean = config.clean
    lines = raw.select(
        "*",
        *(_normalised(c, clean.id_case if c in ID_COLUMNS else "keep").alias(c) for c in TEXT_COLUMNS),
        _number(raw, "raw_quantity").alias("quantity"),
        _number(raw, "raw_unit_price").alias("unit_price"),
        _timestamp(raw, "raw_timestamp", config.input.timestamp_format).alias("timestamp"),
    )
    invalid = {
        "quantity": _unparsed("raw_quantity", "quantity"),
        "unit_price": _unparsed("raw_unit_price", "unit_price"),
        "timestamp": _unparsed("raw_timestamp", "timestamp"),
    }
    steps: list[tuple[str, Column]] = []
    header = config.input.header_names()
    if header is not None:
        names = _normalised_list(header, clean.id_case)
        steps.append(("repeated_header", (F.col("order_id") == names[0]) & (F.col("product_id") == names[1])))
    steps.append(("unbalanced_quote", F.col("quote_error")))
    steps += [
        ("missing_order_id", F.col("order_id").isNull()),
        ("missing_product_id", F.col("product_id").isNull()),
        ("bad_quantity", invalid["quantity"]),
        ("bad_unit_price", invalid["unit_price"]),
        ("bad_timestamp", invalid["timestamp"]),
    ]
    if clean.cancel_prefixes:
        prefixes = _normalised_list(clean.cancel_prefixes, clean.id_case)
        steps.append(("cancelled", _any(F.col("order_id").startswith(p) for p in prefixes)))
    steps.append(("non_product", _non_product(clean)))
    if clean.drop_nonpositive_quantity:
        steps.append(("nonpositive_quantity", F.col("quantity") <= 0))
    if clean.drop_negative_price:
        steps.append(("negative_price", F.col("unit_price") < 0))
    if clean.drop_zero_price:
        steps.append(("zero_price", F.col("unit_price") == 0))
    lines = lines.withColumn("reason", _first_reason(steps))
    # One pass over the input counts the lines, the values that do not parse and the newest timestamp of
    # the lines kept so far (the default as_of).
    totals = aggregate_row(
        lines.agg(
            F.count("*").alias("rows"),
            *(F.sum(v.cast("long")).alias(c) for c, v in invalid.items()),
            F.max(F.when(F.col("reason").isNull(), F.col("timestamp"))).alias("newest"),
        )
    )
    rows_in = int(totals["rows"])
    for column, test in invalid.items():
        _check_invalid_share(lines, column, test, int(totals[column] or 0), rows_in, clean)

    as_of = _resolve_as_of(config.as_of, totals["newest"])
    steps = []
    if config.as_of is not None or clean.window_days is not None:
        steps.append(("missing_timestamp", F.col("timestamp").isNull()))
    if as_of is not None:
        steps.append(("after_as_of", F.col("timestamp") > F.lit(as_of)))
        if clean.window_days is not None:
            start = F.lit(as_of) - F.expr(f"INTERVAL {clean.window_days} DAYS")
            steps.append(("outside_window", F.col("timestamp") <= start))
    lines = lines.withColumn("reason", F.coalesce("reason", _first_reason(steps)))
    kept = F.col("reason").isNull()
    if clean.drop_duplicates or clean.max_basket_size is not None:
        # Copies share their order, and a basket is an order: lines placed by order once serve both
        # windows below, the funnel's orders and the baskets' grouping without shuffling them again.
        lines = lines.repartition("order_id")
    if clean.drop_duplicates:
        # Copies share every canonical value, parsed (as the local engine compares them).
        same = Window.partitionBy(kept, *CANONICAL_COLUMNS).orderBy("file_index", "source_row")
        lines = lines.withColumn(
            "reason", F.coalesce("reason", F.when(F.row_number().over(same) > 1, "duplicate_line"))
        )
    if clean.max_basket_size is not None:
        order = Window.partitionBy(kept, "order_id")
        size = F.size(F.collect_set("product_id").over(order))
        lines = lines.withColumn(
            "reason", F.coalesce("reason", F.when(kept & (size > clean.max_basket_size), "oversized_basket"))
        )
    lines = lines.persist(StorageLevel.MEMORY_AND_DISK)
    per_reason: dict[str, int] = dict(lines.where("reason IS NOT NULL").groupBy("reason").count().collect())
    counts = {name: int(per_reason.get(name, 0)) for name in REASONS}
    result = SparkLines(lines, files, rows_in, counts, _orders_after(lines), as_of)
    log.info(
        "clean: %d rows in, %d kept, %d rejected (%s)",
        rows_in,
        rows_in - sum(counts.values()),
        sum(counts.values()),
        ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none",
    )
    return result


def _normalised(column: str, id_case: str) -> Column:
    """Trimmed text, empty as missing, cased: :func:`pipeline.local.clean.normalise_ids`."""
    from pyspark.sql import functions as F

    text = F.regexp_replace(f"raw_{column}", _EDGE_SPACE, "")
    text = F.when(text != "", text)
    return F.upper(text) if id_case == "upper" else F.lower(text) if id_case == "lower" else text


def _normalised_list(ids: tuple[str, ...], id_case: str) -> list[str]:
    """Config ids as the lines' ids are normalised (:func:`pipeline.local.clean.normalise_ids`); empty ones dropped."""
    found = normalise_ids(pd.Series(ids, dtype=TEXT), id_case)
    return [str(i) for i in found.dropna()]


def _number(raw: DataFrame, column: str) -> Column:
    """A double, or null for missing and unparseable text.

    A column the file stores as numbers (Parquet) is cast as it is: rendering it as text to match it
    with a pattern and parse it back cost several seconds per scan of 3 million lines.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    if isinstance(raw.schema[column].dataType, NumericType):
        return F.col(column).cast("double")
    text = F.regexp_replace(F.col(column).cast("string"), _EDGE_SPACE, "")
    return F.when(text.rlike(_NUMBER), text.try_cast("double"))


def _timestamp(raw: DataFrame, column: str, fmt: str | None) -> Column:
    """A timestamp (UTC), or null for missing and unparseable text; ``fmt`` is a strptime format.

    A column the file stores as timestamps or dates is cast as it is (the session's time zone is UTC).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    if isinstance(raw.schema[column].dataType, TimestampType | TimestampNTZType | DateType):
        return F.col(column).cast("timestamp")
    text = F.regexp_replace(F.col(column).cast("string"), _EDGE_SPACE, "")
    if fmt is None:
        return text.try_cast("timestamp")
    return F.try_to_timestamp(text, F.lit(java_datetime_pattern(fmt)))


def java_datetime_pattern(fmt: str) -> str:
    """The Java DateTimeFormatter pattern of a strptime format; :class:`ConfigError` for a directive it lacks."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i : i + 2]
            if directive not in _STRPTIME:
                raise ConfigError(
                    f"input.timestamp_format: {directive!r} has no equivalent on the spark engine; "
                    f"use {', '.join(sorted(_STRPTIME))}"
                )
            out.append(_STRPTIME[directive])
            i += 2
        else:
            literal = fmt[i]
            out.append(f"'{literal}'" if literal.isalpha() else "''" if literal == "'" else literal)
            i += 1
    return "".join(out)


def _unparsed(raw: str, parsed: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(raw).isNotNull() & F.col(parsed).isNull()


def _check_invalid_share(
    lines: DataFrame, column: str, invalid: Column, bad: int, total: int, config: CleanConfig
) -> None:
    """Stop when too many values of a column do not parse (:func:`pipeline.local.clean.invalid_share_error`)."""
    if not bad or bad <= config.max_invalid_share * total:
        return
    first = (
        lines.where(invalid)
        .orderBy("file_index", "source_row")
        .select("source_file", "source_row", f"raw_{column}")
        .limit(5)
        .collect()
    )
    raise invalid_share_error(
        column, bad, total, [r[0] for r in first], [int(r[1]) for r in first], [str(r[2]) for r in first], config
    )


def _non_product(config: CleanConfig) -> Column:
    from pyspark.sql import functions as F

    product = F.col("product_id")
    listed = _normalised_list(config.non_product_ids, config.id_case)
    test = product.isin(listed) if listed else F.lit(False)
    if config.non_product_pattern:
        test = test | product.rlike(f"^(?:{config.non_product_pattern})$")
    return test


def _any(tests: object) -> Column:
    from pyspark.sql import functions as F

    result = F.lit(False)
    for test in tests:  # type: ignore[attr-defined]
        result = result | test
    return result


def _first_reason(steps: list[tuple[str, Column]]) -> Column:
    """The name of the first step whose test is true, else null (a null test is not true)."""
    from pyspark.sql import functions as F

    if not steps:
        return F.lit(None).cast("string")
    return F.coalesce(*(F.when(test, name) for name, test in steps))


def _resolve_as_of(as_of: datetime | date | None, newest: datetime | None) -> datetime | None:
    """``as_of`` as an instant; by default ``newest``, the newest timestamp of the lines kept so far."""
    if isinstance(as_of, datetime):
        return as_of
    if isinstance(as_of, date):
        return datetime.combine(as_of, time.max)
    return None if newest is None else newest.replace(tzinfo=None)


def _orders_after(lines: DataFrame) -> dict[str, int]:
    """The funnel's orders after each step: the step at which each order loses its last line."""
    from pyspark.sql import functions as F

    step = F.coalesce(
        F.array_position(F.array(*(F.lit(r) for r in REASONS)), F.col("reason")).cast("int"),
        F.lit(len(REASONS) + 1),
    )
    last = lines.where("order_id IS NOT NULL").groupBy("order_id").agg(F.max(step).alias("last"))
    histogram: dict[int, int] = dict(last.groupBy("last").count().collect())
    counts = np.zeros(len(REASONS) + 2, dtype=np.int64)
    for index, n in histogram.items():
        counts[int(index)] = n
    return orders_after_steps(counts)
