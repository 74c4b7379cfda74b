"""Transaction exports in, one frame of order lines out (canonical column names).

Reads CSV (any delimiter, any encoding, gzip), Parquet, Excel ``.xlsx`` and
basket-per-line files, several files or globs at once. Only reading and
renaming happen here; parsing numbers and dates, and rejecting rows, is
:mod:`pipeline.local.clean`'s job, so that a rejected row can be kept as it was read.

Every line carries ``source_file`` and ``source_row`` (the row number a
spreadsheet would show: the header is row 1 of a CSV or Excel file, the first
line of a basket file or the first record of a Parquet file is row 1) so that
errors and rejects can point at it.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import logging
import os
import re
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pipeline.config import CANONICAL_COLUMNS, MANDATORY_COLUMNS, InputConfig
from pipeline.contract.manifest import InputFile
from pipeline.contract.schema import TEXT
from pipeline.errors import ConfigError, InputDataError, quoted, quoted_names

log = logging.getLogger(__name__)

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
#: A header line longer than this is not a header (a file of one huge line, a wrong delimiter).
MAX_HEADER_BYTES = 1 << 20
#: Memory a text export needs per byte of (decompressed) text: the local engine peaks at about 245 bytes
#: per order line of about 85 bytes (Online Retail, string ids), with a margin.
MEMORY_PER_TEXT_BYTE = 4
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Arrow text columns become pandas text columns backed by the same Arrow memory.
_ARROW_TYPES = {pa.string(): TEXT, pa.large_string(): TEXT}
#: Where a line of a basket file ends: what Hadoop's line reader (the Spark engine) splits on.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: Text read dictionary-encoded when the file stores it as text: each line repeats its order's id, its
#: product's id and description, its segment, its order's customer and time; quantities and prices
#: take a few thousand values. Cleaning trims, cases and parses each distinct value once.
_ENCODED = ("order_id", "product_id", "segment", "product_name", "customer_id", "timestamp", "quantity", "unit_price")
#: Columns held as pandas categories, read or not: a few distinct values (segments, product names) on
#: every line, one code a line where text is tens of bytes (a column the file lacks: one byte a line).
_CATEGORIES = ("segment", "product_name")
#: A UTF-8 byte-order mark, as text.
_BOM = "\ufeff"
#: Only an empty field is missing: "NA", "null" or "None" may be real ids.
_NA_VALUES = [""]


def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Files named by paths and globs, sorted within each pattern, duplicates once."""
    if not patterns:
        raise ConfigError("no input given: set input.paths in the config or pass --input")
    found: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputDataError(f"input glob {pattern!r} matches no file")
        else:
            path = Path(pattern)
            if not path.is_file():
                what = (
                    "is a directory, not a file"
                    if path.is_dir()
                    else "is not a regular file (a FIFO or a device?)"
                    if path.exists()
                    else "does not exist"
                )
                raise InputDataError(f"input file {pattern} {what}")
            matches = [path]
        found.extend(m for m in matches if m not in found)
    return found


def read_transactions(config: InputConfig) -> tuple[pd.DataFrame, list[InputFile]]:
    """All order lines of every input file, in file order, with their source rows.

    Columns: the canonical columns (ids and text as ``TEXT``; numbers and
    timestamps as the file stores them, text for CSV and Excel), then
    ``source_file`` and ``source_row``.
    """
    frames: list[pd.DataFrame] = []
    files: list[InputFile] = []
    for group in _parquet_runs(expand_paths(config.paths), config):
        frame, rows = _read_group(group, config)
        frames.append(frame)
        for path, count in zip(group, rows, strict=True):
            files.append(InputFile(str(path), path.stat().st_size, file_sha256(path), int(count)))
            log.info("read %s: %d rows", path, count)
    if len(frames) > 1:
        paths = [str(f.path) for f in files]
        for frame in frames:
            frame["source_file"] = frame["source_file"].cat.set_categories(paths)
        return _concatenated(frames), files
    return frames[0], files


def _concatenated(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The files' lines as one frame, built a column at a time, each file's column freed once joined.

    Categories (ids read dictionary-encoded) are joined as categories over the union of the files'
    values: ``pd.concat`` turns categories that differ between files into a Python string per line
    (a day-partitioned export of 31 million lines in 12 files peaked 1.7 GB higher, at twice the time).
    """
    joined: dict[str, pd.Series] = {}
    for name in list(frames[0].columns):
        parts = [frame.pop(name) for frame in frames]
        joined[name] = _joined(parts)
        del parts
    return pd.DataFrame(joined, copy=False)


def _joined(parts: list[pd.Series]) -> pd.Series:
    """One column of every file, in file order."""
    if any(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
        # A file where the column is empty on every line has no dictionary: no categories either.
        parts = [_absent_as_category(part) for part in parts]
    if all(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
        try:
            return _joined_categories(parts)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # categories of different types (text here, numbers there)
            pass
    return pd.concat(parts, ignore_index=True)


def _absent_as_category(part: pd.Series) -> pd.Series:
    """``part`` as a category column without categories when every value is missing; else as it is."""
    if isinstance(part.dtype, pd.CategoricalDtype) or not part.isna().all():
        return part
    return pd.Series(
        pd.Categorical.from_codes(np.full(len(part), -1, dtype=np.int8), categories=pd.Index([], dtype=str)),
        name=part.name,
    )


def _joined_categories(parts: list[pd.Series]) -> pd.Series:
    """Category columns joined over the sorted union of their categories, each file's codes mapped in Arrow.

    pandas' ``union_categoricals`` looked every file's categories up as Python strings (5 s for
    3 million order ids in 12 files); one Arrow dictionary encoding of all of them does it in one pass.
    """
    distinct = [pa.array(part.cat.categories, from_pandas=True) for part in parts]
    kind = next((values.type for values in distinct if len(values)), pa.string())
    encoded = pc.dictionary_encode(pa.concat_arrays([values.cast(kind) for values in distinct]))
    union = encoded.dictionary
    # Each distinct value's position in the sorted union.
    ascending = pc.sort_indices(union)
    position = np.empty(len(union), dtype=np.int32 if len(union) < 2**31 else np.int64)
    position[ascending.to_numpy()] = np.arange(len(union))
    indices = encoded.indices.to_numpy()
    codes = np.empty(sum(len(part) for part in parts), dtype=position.dtype)
    at, seen = 0, 0
    for part in parts:
        # This file's category i is value indices[seen + i] of the union; code -1 (missing) picks the appended -1.
        width = len(part.cat.categories)
        mapping = np.append(position[indices[seen : seen + width]], np.array([-1], dtype=position.dtype))
        codes[at : at + len(part)] = mapping[part.cat.codes.to_numpy()]
        at, seen = at + len(part), seen + width
    categories = pd.Index(union.take(ascending).to_pandas(), dtype=parts[0].cat.categories.dtype)
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories, validate=False), name=parts[0].name)


def _parquet_runs(paths: list[Path], config: InputConfig) -> list[list[Path]]:
    """The files in order, consecutive Parquet files with one schema together (a day-partitioned export):
    read as one table, a column at a time across the files, they cost what one file of their lines costs."""
    runs: list[list[Path]] = []
    schema: pa.Schema | None = None
    for path in paths:
        parquet = config.format == "lines" and path.name.lower().endswith(PARQUET_SUFFIXES)
        found = _schema(path) if parquet else None
        if found is not None and schema is not None and found.equals(schema):
            runs[-1].append(path)
        else:
            runs.append([path])
        schema = found
    return runs


def _schema(path: Path) -> pa.Schema | None:
    """A Parquet file's schema, or None when its footer cannot be read (reading it alone says why)."""
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None


def _read_group(paths: list[Path], config: InputConfig) -> tuple[pd.DataFrame, list[int]]:
    """One file, or a run of Parquet files read as one table, and the rows of each file. When the run
    cannot be read, its files are read one by one, so that the error names the file at fault."""
    try:
        return _read_one(paths, config)
    except InputDataError:
        if len(paths) > 1:
            for path in paths:
                _read_one([path], config)
        raise


def _read_one(paths: list[Path], config: InputConfig) -> tuple[pd.DataFrame, list[int]]:
    """The lines of ``paths`` (one file, or Parquet files of one schema) and the rows of each file."""
    if config.format == "baskets":
        frame = _read_baskets(paths[0], config)
        rows = [len(frame)]
    else:
        frame, rows = _read_table(paths, config)
    if "quote_error" not in frame:
        frame["quote_error"] = False
    # One category per file: a text column would repeat the path on every line.
    codes = np.repeat(np.arange(len(paths), dtype=np.int32), rows)
    frame["source_file"] = pd.Categorical.from_codes(codes, pd.Index([str(path) for path in paths]))
    return frame, rows


def _read_table(paths: list[Path], config: InputConfig) -> tuple[pd.DataFrame, list[int]]:
    """A CSV, Parquet or Excel file (or a run of Parquet files of one schema), mapped to canonical columns,
    and the rows read from each file."""
    mapping: dict[str, str] = {}
    path = paths[0]

    def wanted(header: list[str]) -> list[str]:
        mapping.update(column_mapping(header, config, path))
        return list(mapping.values())

    def encoded() -> list[str]:
        return [mapping[c] for c in _ENCODED if c in mapping]

    read = read_table_file(path, wanted, config.delimiter, config.encoding, config.sheet, encoded, paths[1:])
    frame = read.frame.rename(columns={source: canon for canon, source in mapping.items()})
    for column in CANONICAL_COLUMNS:
        if column not in frame.columns:
            frame[column] = _absent(column, frame.index)
        elif column in _CATEGORIES:
            frame[column] = as_ids(frame[column]).astype("category")
        elif column in ("order_id", "product_id", "customer_id"):
            frame[column] = as_ids(frame[column])
    frame = frame[list(CANONICAL_COLUMNS)]
    frame["source_row"] = read.rows
    frame["quote_error"] = read.quote_error
    return frame, read.counts


def _absent(column: str, index: pd.Index) -> pd.Series:
    """A column the file does not have: every value missing."""
    if column in _CATEGORIES:
        codes = np.full(len(index), -1, dtype=np.int8)
        return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index([], dtype=object)), index=index)
    return pd.Series(pd.NA, index=index, dtype=TEXT)


@dataclass(frozen=True)
class TableFile:
    """The columns read from a CSV, Parquet or Excel file, and where each row is in the file."""

    frame: pd.DataFrame
    #: Each row's number as a spreadsheet shows it: a CSV or Excel header is row 1, a Parquet file's first
    #: record is row 1. In a CSV, the line the record starts on (blank lines and line breaks inside quoted
    #: values count).
    rows: np.ndarray
    #: Rows where a quoted value swallowed whole lines of the file (:func:`swallowed_lines`).
    quote_error: np.ndarray
    #: Rows read from each file: the one file, or ``path`` and every file of ``more``.
    counts: list[int]


def read_table_file(
    path: Path,
    columns: Callable[[list[str]], list[str]],
    delimiter: str = ",",
    encoding: str = "utf-8",
    sheet: str | int = 0,
    encoded: Callable[[], list[str]] = list,
    more: Sequence[Path] = (),
) -> TableFile:
    """Read the columns ``columns(header)`` names from a CSV, Parquet or Excel file.

    The text columns ``encoded()`` names (asked after ``columns``) are read
    dictionary-encoded, as pandas categories: an order id repeated on each of
    its lines is stored once, and cleaning normalises each distinct id once.
    ``more`` are further Parquet files of ``path``'s schema, read with it as
    one table (their rows numbered from 1 in each file).

    The format follows the file name (``.parquet``/``.pq``, ``.xlsx``/``.xlsm``,
    anything else is CSV, gzip-compressed when it ends in ``.gz``). Text files
    are read as text only (ids keep their leading zeros; only an empty field is
    missing). Every way a file can fail to read becomes an
    :class:`InputDataError` that names the file and says what to do.
    """
    name = path.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES) or name.endswith(EXCEL_SUFFIXES):
            frame = _read_binary_file([path, *more], columns, sheet, encoded)
            if more:
                counts = [pq.ParquetFile(p).metadata.num_rows for p in (path, *more)]
                rows = np.concatenate([row_numbers(1, count) for count in counts])
            else:
                counts = [len(frame)]
                rows = row_numbers(1 if name.endswith(PARQUET_SUFFIXES) else 2, len(frame))
            return TableFile(frame, rows, np.zeros(len(frame), dtype=bool), counts)
        options: dict[str, Any] = {
            "sep": delimiter,
            "encoding": encoding,
            "dtype": TEXT,
            "keep_default_na": False,
            "na_values": _NA_VALUES,
            "compression": "infer",
        }
        line_breaks = _check_text_size(path)
        header = [str(h) for h in pd.read_csv(path, nrows=0, **options).columns]
        frame = _read_csv_body(path, columns(header), delimiter, encoding, encoded())
        rows, quote_error = _csv_layout(path, delimiter, encoding, len(frame), len(header), line_breaks)
        return TableFile(frame, rows, quote_error, [len(frame)])
    except InputDataError:
        raise
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise InputDataError(
                f"{path}: cannot decode the file as {encoding} ({quoted(exc)}); set the encoding option "
                f"to the file's encoding (e.g. 'latin-1', 'cp1252')"
            ) from None
        raise InputDataError(f"{path}: cannot read the file (ArrowInvalid: {quoted(exc)})") from None
    except UnicodeDecodeError as exc:
        raise InputDataError(
            f"{path}: cannot decode the file as {encoding} ({exc.reason} at byte "
            f"{exc.start}); set the encoding option to the file's encoding "
            f"(e.g. 'latin-1', 'cp1252')"
        ) from None
    except pd.errors.EmptyDataError:
        raise InputDataError(f"{path}: the file is empty (no header, no rows)") from None
    except (OSError, EOFError, zipfile.BadZipFile, pa.ArrowException, ValueError, csv.Error) as exc:
        raise InputDataError(f"{path}: cannot read the file ({type(exc).__name__}: {quoted(exc)})") from None


def _read_binary_file(
    paths: list[Path], columns: Callable[[list[str]], list[str]], sheet: str | int, encoded: Callable[[], list[str]]
) -> pd.DataFrame:
    """The named columns of a Parquet or Excel file, or of Parquet files of one schema read as one table
    (text columns as text; ``encoded()`` as categories)."""
    path = paths[0]
    if path.name.lower().endswith(EXCEL_SUFFIXES):
        sheet_header = pd.read_excel(path, sheet_name=sheet, nrows=0).columns
        frame = pd.read_excel(
            path,
            sheet_name=sheet,
            usecols=columns([str(h) for h in sheet_header]),
            dtype=TEXT,
            keep_default_na=False,
            na_values=_NA_VALUES,
        )
        return frame.astype(dict.fromkeys(encoded(), "category"))
    schema = pq.read_schema(path)
    wanted = columns(list(schema.names))
    for field in (schema.field(n) for n in wanted):
        if pa.types.is_nested(field.type):
            raise nested_column_error(path, field.name, str(field.type))
    text = [n for n in encoded() if schema.field(n).type in (pa.string(), pa.large_string())]
    single = pq.ParquetFile(path, read_dictionary=text) if len(paths) == 1 else None

    def read(name: str) -> pa.Table:
        if single is not None:
            return single.read(columns=[name])
        return pq.read_table([str(p) for p in paths], columns=[name], read_dictionary=text, partitioning=None)

    # One column at a time, each converted and its Arrow memory freed before the next is read: the whole
    # table as Arrow and as pandas at once was the read's peak (twice the frame).
    return pd.DataFrame({name: _parquet_column(read(name), name) for name in wanted}, copy=False)


def _parquet_column(table: pa.Table, name: str) -> pd.Series:
    """The one column of ``table``, read from Parquet, as pandas (``read_dictionary`` text as categories)."""
    # Text written as raw bytes (no UTF-8 annotation) is text; invalid UTF-8 fails as a decoding error.
    table = table.cast(pa.schema([_unbinary(f) for f in table.schema]))
    # Integers with missing values come out of Arrow as floats: they are integers again below, so that a
    # rejected line shows its quantity 1 as "1", as the file (and the Spark engine) has it, not "1.0".
    holed = pa.types.is_integer(table.schema.field(0).type) and table.column(0).null_count > 0
    values = table.to_pandas(split_blocks=True, self_destruct=True, types_mapper=_ARROW_TYPES.get)[name]
    return values.astype("Int64") if holed else values


def nested_column_error(path: Path | str, column: str, type_name: str) -> InputDataError:
    """A column of lists, maps or records: an order line holds one value per column."""
    return InputDataError(
        f"{path}: column {column!r} holds {quoted(type_name)} values (lists or records), not one value per row; "
        "export one order line per row, one product id in each"
    )


def _unbinary(field: pa.Field) -> pa.Field:
    """``field`` with a binary type read as text."""
    binary = pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
    return field.with_type(pa.string()) if binary else field


def _check_text_size(path: Path) -> int:
    """Refuse, before parsing, a text file whose first line is not a header or whose text cannot fit;
    return its number of lines.

    The first line must end within :data:`MAX_HEADER_BYTES`. A gzip file is
    decompressed once without keeping anything (a few seconds a gigabyte) and
    refused when its text would need more memory than the machine has free:
    a small ``.csv.gz`` may expand to many gigabytes. The lines (``\n``
    ends one; a last line without it counts) are counted on the way, so that
    :func:`_csv_layout` knows whether every record is one line.
    """
    compressed = path.name.lower().endswith(".gz")
    budget = available_memory() // MEMORY_PER_TEXT_BYTE
    with gzip.open(path, "rb") if compressed else path.open("rb") as handle:
        first = handle.read(MAX_HEADER_BYTES)
        if len(first) == MAX_HEADER_BYTES and b"\n" not in first:
            raise InputDataError(
                f"{path}: the first line is longer than {MAX_HEADER_BYTES // 1024} KiB: not a header line; "
                "check that this is the export and that input.delimiter is right"
            )
        size = len(first) if compressed else path.stat().st_size
        lines, last = first.count(b"\n"), first[-1:]
        while size <= budget and (chunk := handle.read(1 << 24)):
            size += len(chunk) if compressed else 0
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    if size > budget:
        raise InputDataError(
            f"{path}: {'the file expands to ' if compressed else ''}more than {budget / 2**30:.1f} GiB of text, "
            f"more than this machine's free memory can read ({MEMORY_PER_TEXT_BYTE} bytes per byte of text); "
            'split the export into several files read by a glob, or run on Spark (engine = "spark")'
        )
    return lines + (last not in (b"", b"\n"))


def _csv_layout(
    path: Path, delimiter: str, encoding: str, records: int, width: int, lines: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each record's first line in the file (header = 1) and whether a quoted value in it swallowed lines.

    When the file has one line per record (the header, then ``records``
    lines), record i starts on line i + 2 and no value spans lines: nothing
    more is read. Otherwise (blank lines, which are not records, or values
    with line breaks) the file is read once more with Python's ``csv`` reader
    (the same dialect) to number the records by their first line and to find
    values that swallowed whole lines (:func:`swallowed_lines`).
    """
    if lines == records + 1:
        return row_numbers(2, records), np.zeros(records, dtype=bool)
    starts = np.empty(records + 1, dtype=_row_type(lines + 1))
    quote_error = np.zeros(records + 1, dtype=bool)
    swallowed = re.compile(swallowed_lines(delimiter, width)) if width > 1 else None
    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 1 << 40))
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
            found, previous = 0, 0
            for fields in reader:
                start, previous = previous + 1, reader.line_num
                if not fields:  # a blank line: not a record
                    continue
                # Records past Arrow's count are counted, not stored: the disagreement is caught below.
                if found <= records:
                    starts[found] = start
                    if swallowed is not None and reader.line_num > start:
                        quote_error[found] = any(swallowed.search(f) for f in fields if "\n" in f or "\r" in f)
                found += 1
    finally:
        csv.field_size_limit(limit)
    if found != records + 1:
        log.warning(
            "%s: %d records as Python's csv reader sees it, %d as Arrow's: source_row counts records, not lines",
            path,
            found - 1,
            records,
        )
        return row_numbers(2, records), np.zeros(records, dtype=bool)
    return starts[1:], quote_error[1:]


def row_numbers(first: int, count: int) -> np.ndarray:
    """``count`` row numbers from ``first``."""
    return np.arange(first, first + count, dtype=_row_type(first + count))


def _row_type(last: int) -> type[np.signedinteger]:
    """Row numbers up to ``last`` take 4 bytes each where they fit (a file of under 2 billion rows)."""
    return np.int32 if last < 2**31 else np.int64


def swallowed_lines(delimiter: str, width: int) -> str:
    """A regular expression (Python's and Java's) for a value that swallowed whole lines of its file.

    A stray quote opens a value that the next quote, lines later, closes:
    every line between becomes part of that value, and the record looks
    whole. A value holding a line break followed by a line with a whole
    record's worth of delimiters (``width - 1``) is such a value; a quoted
    address or note with line breaks is not. Both engines reject its record
    as ``unbalanced_quote``.
    """
    return f"[\\r\\n](?:[^\\r\\n]*{re.escape(delimiter)}){{{width - 1}}}"


def available_memory() -> int:
    """Bytes of memory free for this run (Linux's MemAvailable; the physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _read_csv_body(path: Path, names: list[str], delimiter: str, encoding: str, encoded: list[str]) -> pd.DataFrame:
    """The named columns of a CSV file, as text, with Arrow's multi-threaded reader.

    Three times faster than pandas' C reader on a 500,000-line export. Every
    column is text (ids keep their zeros); only an empty field is missing;
    quoted fields may hold delimiters and line breaks, a Windows line break
    inside a value reading as ``\n`` (as Spark's CSV reader gives it: the
    engines publish the same rejects). The ``encoded`` columns become
    dictionary-encoded (pandas categories).
    """
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(encoding=encoding),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            include_columns=names,
            column_types={name: pa.string() for name in names},
            null_values=_NA_VALUES,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    for index, name in enumerate(table.column_names):
        if pc.any(pc.match_substring(table[name], "\r\n")).as_py():
            table = table.set_column(index, name, pc.replace_substring(table[name], "\r\n", "\n"))
    for name in encoded:
        table = table.set_column(table.schema.get_field_index(name), name, pc.dictionary_encode(table[name]))
    return table.to_pandas(split_blocks=True, self_destruct=True, types_mapper=_ARROW_TYPES.get)


def column_mapping(header: list[str], config: InputConfig, path: Path) -> dict[str, str]:
    """Canonical column -> file column, for the canonical columns the file has."""
    names = [str(h) for h in header]
    mapping: dict[str, str] = {}
    for canon in CANONICAL_COLUMNS:
        wanted = getattr(config.columns, canon)
        if wanted is not None:
            if wanted not in names:
                raise InputDataError(
                    f"{path}: column {wanted!r} (input.columns.{canon}) is not in the file; "
                    f"found {quoted_names(names)}{_delimiter_hint(names, config)}"
                )
            mapping[canon] = wanted
        elif canon in names:
            mapping[canon] = canon
        elif canon in MANDATORY_COLUMNS:
            raise InputDataError(
                f"{path}: mandatory column {canon!r} not found; found {quoted_names(names)}. "
                f'Map it with input.columns.{canon} = "<name in the file>"'
                f"{_delimiter_hint(names, config)}"
            )
    return mapping


def _delimiter_hint(names: list[str], config: InputConfig) -> str:
    """When the header is one column, the delimiter is most likely wrong."""
    if len(names) != 1:
        return ""
    for candidate in (",", ";", "\t", "|"):
        if candidate != config.delimiter and candidate in names[0]:
            return (
                f". The header was read as one column: the file looks {candidate!r}-delimited; "
                f"set input.delimiter = {candidate!r}"
            )
    return ""


def as_ids(column: pd.Series) -> pd.Series:
    """An id column as text, or as integers where the file stores whole numbers.

    Integer ids stay integers (30 million of them are far cheaper to group than
    text); they become text only at the edges: product ids in the baskets'
    item list, any id in ``rejects``. Floats that are whole numbers (1234.0, as
    Parquet and Excel writers often store ids) become integers too; in a column
    that also holds fractions, each whole number is written as an integer
    ("2", not "2.0", as the Spark engine writes it) and a fraction as it is.
    """
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.na_value is pd.NA:
        return column
    if isinstance(column.dtype, pd.CategoricalDtype) and not pd.api.types.is_numeric_dtype(column.cat.categories):
        return column  # text ids read dictionary-encoded
    if pd.api.types.is_integer_dtype(column.dtype):
        return column
    if pd.api.types.is_float_dtype(column.dtype):
        # Beyond 2**53 a float is not an exact integer id; it stays as written.
        whole = ((column % 1) == 0) & (column.abs() < 2**53)
        if whole[column.notna()].all():
            return column.astype("Int64")
        return column.astype(TEXT).mask(whole, column.where(whole).astype("Int64").astype(TEXT))
    return column.astype(TEXT)


def _read_baskets(path: Path, config: InputConfig) -> pd.DataFrame:
    """One basket per line, items separated by ``input.delimiter``.

    The line number becomes the order id. Each item is trimmed on its own
    (trimming whole lines would split "cream cheese " from "cream cheese"),
    and empty items (a trailing delimiter) are not items. An item may be
    quoted as in CSV (``"cheese, low fat"``, ``""`` for a quote inside). A
    line without any item (an empty line) is an empty basket: one line with
    no product id, which cleaning rejects (``missing_product_id``), so that it
    is counted and kept, not dropped unseen. Lines end at ``\n``, ``\r\n``
    or ``\r`` only, as Hadoop's reader (the Spark engine) splits them: a
    U+2028, U+0085 or form feed inside a line is part of an item. A
    byte-order mark opening a line is not part of its first item.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=config.encoding, newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise InputDataError(
            f"{path}: cannot decode the file as {config.encoding} ({exc.reason} at byte "
            f"{exc.start}); set input.encoding to the file's encoding"
        ) from None
    except (OSError, EOFError) as exc:
        raise InputDataError(f"{path}: cannot read the file ({type(exc).__name__}: {quoted(exc)})") from None
    if not text.strip():
        raise InputDataError(f"{path}: the file is empty (no baskets)")
    lines = pd.Series(_LINE_BREAK.split(text.removesuffix("\n").removesuffix("\r")), dtype=TEXT)
    lines = lines.str.removeprefix(_BOM)
    items = basket_items(lines, config.delimiter)
    # An empty basket keeps one row with no product, to be rejected and counted.
    empty = pd.Series(pd.NA, index=lines.index.difference(items.index), dtype=TEXT)
    items = pd.concat([items, empty]).sort_index(kind="stable")
    line_numbers = items.index.to_numpy(dtype="int64") + 1
    frame = pd.DataFrame(
        {
            "order_id": pd.array(line_numbers.astype(str), dtype=TEXT),
            "product_id": items.to_numpy(),
        }
    ).astype({"product_id": TEXT})
    for column in CANONICAL_COLUMNS[2:]:
        frame[column] = _absent(column, frame.index)
    frame["source_row"] = line_numbers
    return frame


def quoted_split(delimiter: str) -> str:
    """A regular expression matching ``delimiter`` outside double quotes (an even count of them follows)."""
    return f'{re.escape(delimiter)}(?=(?:[^"]*"[^"]*")*[^"]*$)'


def basket_items(lines: pd.Series, delimiter: str) -> pd.Series:
    """Each line's items (indexed by its line), trimmed, unquoted, empty ones left out.

    Only lines that hold a quote are split by :func:`quoted_split`'s slower
    expression; the Spark engine splits and unquotes by the same expressions.
    """
    if delimiter == '"':
        items = lines.str.split(delimiter, regex=False).explode().astype(TEXT).str.strip()
        return items[items.notna() & (items != "")]
    quoted_line = lines.str.contains('"', regex=False).fillna(False)
    plain = lines[~quoted_line].str.split(delimiter, regex=False)
    split = lines[quoted_line].str.split(quoted_split(delimiter), regex=True)
    exploded = pd.concat([plain, split]).sort_index(kind="stable").explode()
    # Positions, not line labels (a line's items share its label), while quoted items are replaced.
    items = exploded.reset_index(drop=True).astype(TEXT).str.strip()
    quoted_item = ((items.str.len() >= 2) & items.str.startswith('"') & items.str.endswith('"')).fillna(False)
    items[quoted_item] = items[quoted_item].str.slice(1, -1).str.replace('""', '"', regex=False).str.strip()
    items.index = exploded.index
    return items[items.notna() & (items != "")]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
