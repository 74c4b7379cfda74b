"""Order lines in, clean product lines out, and every rejected line kept with its reason.

Each rule is a step with a reason name; a line is rejected by the first step
that objects, and the step counts are what the manifest reports. Nothing is
dropped without a row in ``rejects``. The steps, in order:

===================== =========================================================
reason                rejects a line when
===================== =========================================================
repeated_header       the order and product ids are the header's names for those
                      columns: the header of another file, pasted in
unbalanced_quote      a quoted value of the line swallowed whole lines of the file
                      (a stray quote; :func:`pipeline.local.ingest.swallowed_lines`)
missing_order_id      the order id is empty (after trimming)
missing_product_id    the product id is empty (after trimming)
bad_quantity          the quantity is not a number
bad_unit_price        the unit price is not a number
bad_timestamp         the timestamp cannot be parsed
cancelled             the order id starts with a ``clean.cancel_prefixes`` entry
non_product           the id is in ``clean.non_product_ids`` or matches
                      ``clean.non_product_pattern`` (postage, fees, adjustments)
nonpositive_quantity  quantity <= 0 (returns, stock corrections)
negative_price        unit price < 0 (bad-debt adjustments)
zero_price            unit price == 0 (samples, damaged stock write-offs)
missing_timestamp     a date window applies and the line has no timestamp
after_as_of           the timestamp is later than ``as_of``
outside_window        the timestamp is older than ``as_of - clean.window_days``
duplicate_line        an exact copy of an earlier line
oversized_basket      its order has more than ``clean.max_basket_size`` products
===================== =========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import arrays
from pipeline.config import CANONICAL_COLUMNS, CleanConfig, InputConfig
from pipeline.contract.schema import TEXT
from pipeline.errors import InputDataError, quoted
from pipeline.local.rejects import REJECT_CHUNK, RejectsFile

log = logging.getLogger(__name__)

REASONS: tuple[str, ...] = (
    "repeated_header",
    "unbalanced_quote",
    "missing_order_id",
    "missing_product_id",
    "bad_quantity",
    "bad_unit_price",
    "bad_timestamp",
    "cancelled",
    "non_product",
    "nonpositive_quantity",
    "negative_price",
    "zero_price",
    "missing_timestamp",
    "after_as_of",
    "outside_window",
    "duplicate_line",
    "oversized_basket",
)
#: Lines compared at a time for exact copies: a chunk of 2^20 lines was cleaning's peak on 31.5 M
#: lines, 2^18 held 150 MB less in the same time.
DUPLICATE_CHUNK = 1 << 18
#: Ids cased by ``clean.id_case``; text columns trimmed (empty is missing).
ID_COLUMNS = ("order_id", "product_id")
TEXT_COLUMNS = ("order_id", "product_id", "customer_id", "segment", "product_name")


@dataclass(frozen=True)
class CleanResult:
    """Every line read (normalised) and which are kept, the rejected lines as read (in a file), and the
    count per reason.

    The kept lines are not copied out when cleaning ends: while the lines as
    read are still alive, that copy would be a third set of every line. The
    caller frees what it read, then takes them (:meth:`take_lines`).
    """

    normalised: pd.DataFrame
    kept: np.ndarray
    rejects: RejectsFile
    counts: dict[str, int]
    rows_in: int
    as_of: datetime | None = field(default=None)
    #: The cleaning funnel: orders with a line left after each step, in REASONS order ("read" first).
    orders_after: dict[str, int] = field(default_factory=dict)

    @property
    def lines(self) -> pd.DataFrame:
        """A copy of the kept lines."""
        return self.normalised[self.kept].reset_index(drop=True)

    def take_lines(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The kept lines, moved out of :attr:`normalised` a column at a time, which is left without columns:
        the rejected lines' memory is freed as each column is copied. With ``columns``, only those (the
        ones :attr:`normalised` has) are kept and the others dropped unselected."""
        moved = {}
        for column in list(self.normalised.columns):
            values = self.normalised.pop(column)
            if columns is None or column in columns:
                moved[column] = _selected(values, self.kept)
        return pd.DataFrame(moved, copy=False)

    def funnel(self) -> list[dict[str, int | str]]:
        """Rows and orders left after reading and after each cleaning step, in the order applied."""
        return cleaning_funnel(self.rows_in, self.counts, self.orders_after)


def _selected(values: pd.Series, mask: np.ndarray) -> pd.Series:
    """``values[mask]``, newly indexed from 0, through numpy where the values are numpy arrays or codes.

    pandas selects a category or datetime column by first making an 8-byte index of every
    selected line: at 30 million lines, half a gigabyte more than the selection itself.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()[mask]
        return pd.Series(pd.Categorical.from_codes(codes, dtype=values.dtype, validate=False), name=values.name)
    if isinstance(values.dtype, np.dtype):
        return pd.Series(values.to_numpy()[mask], name=values.name, copy=False)
    return values[mask].reset_index(drop=True)


def cleaning_funnel(rows_in: int, counts: dict[str, int], orders_after: dict[str, int]) -> list[dict[str, int | str]]:
    """Rows and orders left after reading and after each cleaning step, from the counts per reason."""
    rows = rows_in
    steps: list[dict[str, int | str]] = [{"step": "read", "rows": rows, "orders": orders_after.get("read", 0)}]
    for name in REASONS:
        rows -= counts.get(name, 0)
        steps.append({"step": name, "rows": rows, "orders": orders_after.get(name, 0)})
    return steps


def clean_transactions(
    raw: pd.DataFrame,
    config: CleanConfig,
    as_of: datetime | date | None = None,
    source: InputConfig | None = None,
    rejects_dir: Path | None = None,
) -> CleanResult:
    """Apply every cleaning step to the lines read by :mod:`pipeline.local.ingest`.

    ``as_of`` limits the data to lines at or before that instant (a date means
    the end of that day); by default it is the newest timestamp in the data,
    never the wall clock, so a rerun of an old export gives the same answer.
    ``source`` is how the lines were read (their header's names, the
    timestamp format). The rejected lines go to a file in ``rejects_dir``
    (default: the system's temporary directory; :mod:`pipeline.local.rejects`).
    The input frame is not modified.
    """
    source = source or InputConfig()
    lines = _normalised(raw, config)
    # One small integer per line: 0 = kept, i = rejected for REASONS[i - 1].
    verdict = np.zeros(len(raw), dtype=np.int8)

    def reject(name: str, mask: pd.Series | np.ndarray) -> None:
        hit = np.asarray(mask, dtype=bool) & (verdict == 0)
        verdict[hit] = REASONS.index(name) + 1

    header = source.header_names()
    if header is not None and _is_text(lines["order_id"]) and _is_text(lines["product_id"]):
        names = normalise_ids(pd.Series(header), config.id_case).tolist()
        header_line = (lines["order_id"] == names[0]) & (lines["product_id"] == names[1])
        reject("repeated_header", header_line.fillna(False))
    if "quote_error" in raw:
        reject("unbalanced_quote", raw["quote_error"].to_numpy(dtype=bool))
    reject("missing_order_id", lines["order_id"].isna())
    reject("missing_product_id", lines["product_id"].isna())
    parsers: dict[str, tuple[str, Callable[[pd.Series], pd.Series]]] = {
        "quantity": ("bad_quantity", _to_number),
        "unit_price": ("bad_unit_price", _to_number),
        "timestamp": ("bad_timestamp", lambda values: _to_timestamp(values, source.timestamp_format)),
    }
    for column, (name, parse) in parsers.items():
        parsed = per_category(lines[column], parse)
        invalid = parsed.isna().to_numpy() & lines[column].notna().to_numpy()
        _check_invalid_share(raw, column, invalid, config)
        reject(name, invalid)
        lines[column] = parsed
    timestamps = lines["timestamp"]

    if config.cancel_prefixes and _is_text(lines["order_id"]):
        prefixes = tuple(normalise_ids(pd.Series(config.cancel_prefixes), config.id_case))
        reject("cancelled", per_value(lines["order_id"], lambda ids: ids.str.startswith(prefixes).fillna(False)))
    reject("non_product", _non_product(lines["product_id"], config))
    quantity, price = lines["quantity"].to_numpy(), lines["unit_price"].to_numpy()
    with np.errstate(invalid="ignore"):
        if config.drop_nonpositive_quantity:
            reject("nonpositive_quantity", quantity <= 0)
        if config.drop_negative_price:
            reject("negative_price", price < 0)
        if config.drop_zero_price:
            reject("zero_price", price == 0)

    resolved_as_of = _resolve_as_of(as_of, timestamps[verdict == 0])
    if as_of is not None or config.window_days is not None:
        reject("missing_timestamp", timestamps.isna())
    if resolved_as_of is not None:
        reject("after_as_of", (timestamps > resolved_as_of).fillna(False))
        if config.window_days is not None:
            start = resolved_as_of - timedelta(days=config.window_days)
            reject("outside_window", (timestamps <= start).fillna(False))

    order, pairs, by_pair, width = _order_product_pairs(lines)
    if config.drop_duplicates:
        # Identical lines get identical verdicts from every step above, so the
        # first copy of a still-kept line is itself still kept.
        reject("duplicate_line", _duplicated(lines, pairs, by_pair))
    if config.max_basket_size is not None:
        reject("oversized_basket", _oversized(order, pairs, by_pair, width, verdict == 0, config.max_basket_size))
    orders_after = _orders_after(order, verdict)
    del order, pairs, by_pair

    rejected = verdict != 0
    per_reason = np.bincount(verdict, minlength=len(REASONS) + 1)
    counts = {name: int(per_reason[i + 1]) for i, name in enumerate(REASONS)}
    result = CleanResult(
        normalised=lines,
        kept=~rejected,
        rejects=_rejects(raw, verdict, rejects_dir),
        counts=counts,
        rows_in=len(raw),
        as_of=resolved_as_of,
        orders_after=orders_after,
    )
    log.info(
        "clean: %d rows in, %d kept, %d rejected (%s)",
        result.rows_in,
        result.rows_in - result.rejects.rows,
        result.rejects.rows,
        ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none",
    )
    return result


def _orders_after(order: np.ndarray, verdict: np.ndarray) -> dict[str, int]:
    """Orders that still have a line after each cleaning step (a line leaves at its verdict's step)."""
    # One byte a line: the step numbers fit (an int64 copy of 30 million lines was the stage's peak).
    leaves = np.where(verdict == 0, np.int8(len(REASONS) + 1), verdict)
    last = np.zeros(int(order.max(initial=-1)) + 1, dtype=np.int8)
    valid = order >= 0
    if valid.all():
        np.maximum.at(last, order, leaves)
    else:
        np.maximum.at(last, order[valid], leaves[valid])
    return orders_after_steps(np.bincount(last, minlength=len(REASONS) + 2))


def orders_after_steps(orders_by_last_step: np.ndarray) -> dict[str, int]:
    """The funnel's order counts from how many orders lose their last line at each step.

    ``orders_by_last_step[i]`` counts the orders whose last line leaves at step
    ``i`` (1 = ``REASONS[0]``, ..., ``len(REASONS) + 1`` = kept to the end).
    """
    counts = np.zeros(len(REASONS) + 2, dtype=np.int64)
    counts[: len(orders_by_last_step)] = orders_by_last_step
    # Orders whose last line leaves after step i, for i = 0 (read) .. len(REASONS).
    remaining = np.cumsum(counts[::-1])[::-1]
    return {"read": int(remaining[1]), **{name: int(remaining[i + 2]) for i, name in enumerate(REASONS)}}


def _is_text(values: pd.Series) -> bool:
    """Text ids: strings, or categories of strings (ids read dictionary-encoded)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return not pd.api.types.is_numeric_dtype(values.cat.categories)
    return isinstance(values.dtype, pd.StringDtype) or values.dtype == object


def _order_product_pairs(lines: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Each line's order code; the lines' (order, product) pairs, each one int64, ascending; the line
    each sorted pair comes from; the product count.

    One sort serves both pair checks: copies and basket sizes read adjacent
    entries of the sorted pairs (a hash table of 30 million keys is slower).
    """
    order, orders = _codes(lines["order_id"])
    product, products = _codes(lines["product_id"])
    width = max(products, 1)
    pairs = order.astype(np.int64)
    pairs *= width  # in place: no temporary copy of every line
    pairs += product
    del product
    line_bits = max(len(lines) - 1, 1).bit_length()
    # A missing id's code is -1: the pairs lie in [-width - 1, orders x width).
    if max(orders * width, width + 1).bit_length() + line_bits <= arrays.KEY_BITS:
        return order, pairs, _sorted_in_place(pairs, line_bits), width
    # Ties need no order: the checks compare copies in line order and count distinct pairs. The line
    # numbers are narrowed before the sorted pairs are gathered: three 8-byte arrays of every line
    # at once were cleaning's peak.
    by_pair = np.argsort(pairs)
    if len(lines) < 2**31:
        by_pair = by_pair.astype(np.int32)
    return order, pairs[by_pair], by_pair, width


def _sorted_in_place(keys: np.ndarray, bits: int) -> np.ndarray:
    """Sort ``keys`` in place, ties in position order, and return each sorted key's former position.

    Each position is packed into the low ``bits`` of its key, so one
    in-place sort of one array does it: no 8-byte index of every line beside
    the keys, and numpy's vectorised sort instead of a stable argsort (31.5 M
    lines: 0.2 s against 0.8 s, and no longer cleaning's peak).
    """
    keys <<= bits
    for start in range(0, keys.size, DUPLICATE_CHUNK):
        end = min(start + DUPLICATE_CHUNK, keys.size)
        keys[start:end] |= np.arange(start, end)
    keys.sort()
    at = np.empty(keys.size, dtype=np.int32 if keys.size < 2**31 else np.int64)
    np.bitwise_and(keys, (1 << bits) - 1, out=at, casting="unsafe")
    keys >>= bits
    return at


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of ``values`` (-1 for missing) and how many codes there are.

    Ids read dictionary-encoded already have their codes (4 bytes a line, not 8).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), len(values.cat.categories)
    codes, uniques = pd.factorize(values)
    return codes, len(uniques)


def _duplicated(lines: pd.DataFrame, sorted_pairs: np.ndarray, by_pair: np.ndarray) -> np.ndarray:
    """Exact copies of an earlier line.

    Copies share their (order, product) pair, so only lines whose pair occurs
    more than once are compared in full: a few percent of an export, taken
    :data:`DUPLICATE_CHUNK` lines at a time (whole pairs per chunk), because
    comparing millions of lines at once held several times their size.
    """
    same = np.flatnonzero(sorted_pairs[1:] == sorted_pairs[:-1])
    # Positions in pair order of the lines whose pair occurs more than once: copies are neighbours here.
    held = np.zeros(len(sorted_pairs), dtype=bool)
    held[same] = True
    held[same + 1] = True
    repeated, keys = by_pair[held], sorted_pairs[held]
    # Where each pair's lines start, and the end: a chunk ends at one of these, so a pair's copies meet.
    bounds = np.r_[np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]), repeated.size]
    duplicated = np.zeros(len(sorted_pairs), dtype=bool)
    start = 0
    while start < repeated.size:
        end = bounds[np.searchsorted(bounds, min(start + DUPLICATE_CHUNK, repeated.size))]
        part = np.sort(repeated[start:end])  # file order: the first copy is the one kept
        duplicated[part] = lines.iloc[part].duplicated(keep="first").to_numpy()
        start = end
    return duplicated


def _oversized(
    order: np.ndarray, sorted_pairs: np.ndarray, by_pair: np.ndarray, width: int, kept: np.ndarray, cap: int
) -> np.ndarray:
    """Lines of orders with more than ``cap`` distinct products among the kept lines.

    The sorted pairs are read :data:`DUPLICATE_CHUNK` x 4 at a time: selecting the kept ones of
    30 million at once held an 8-byte index of every line.
    """
    sizes = np.zeros(int(order.max(initial=-1)) + 1, dtype=np.int64)
    previous = -1  # the last kept pair of the chunks before: a pair continued across a chunk counts once
    step = DUPLICATE_CHUNK * 4
    for start in range(0, sorted_pairs.size, step):
        held = sorted_pairs[start : start + step][kept[by_pair[start : start + step]]]
        if held.size:
            first = np.r_[held[0] != previous, held[1:] != held[:-1]]
            sizes += np.bincount(held[first] // width, minlength=sizes.size)
            previous = held[-1]
    # A line without an order id (code -1, already rejected) belongs to no basket: the appended False.
    return np.append(sizes > cap, False)[order]


def _check_invalid_share(raw: pd.DataFrame, column: str, invalid: np.ndarray, config: CleanConfig) -> None:
    """Stop when too many values of a column do not parse: the file, not a row, is wrong."""
    bad = int(invalid.sum())
    if not bad or bad <= config.max_invalid_share * len(raw):
        return
    rows = raw.loc[invalid, ["source_file", "source_row", column]].head(5)
    raise invalid_share_error(
        column,
        bad,
        len(raw),
        rows["source_file"].astype(str).tolist(),
        rows["source_row"].tolist(),
        rows[column].astype(str).tolist(),
        config,
    )


def invalid_share_error(
    column: str, bad: int, total: int, files: list[str], rows: list[int], values: list[str], config: CleanConfig
) -> InputDataError:
    """The error for a column with more unparseable values than ``clean.max_invalid_share``.

    ``files``, ``rows`` and ``values`` describe the first few bad values.
    """
    hint = "input.timestamp_format" if column == "timestamp" else "input.delimiter and the number format"
    return InputDataError(
        f"{', '.join(dict.fromkeys(files))}: column {column!r} (input.columns.{column}): {bad:,} of {total:,} values "
        f"({bad / total:.1%}) cannot be parsed, more than clean.max_invalid_share = "
        f"{config.max_invalid_share:g}; first at rows {rows}: {[quoted(v, 40) for v in values]}. "
        f"Check {hint}, or raise the share to quarantine them"
    )


def _normalised(raw: pd.DataFrame, config: CleanConfig) -> pd.DataFrame:
    """A new frame with text trimmed (empty -> missing) and ids cased as configured.

    Ids that the file stores as integers stay integers: there is nothing to
    trim, and turning 30 million of them into text would cost more than mining.
    """
    lines = pd.DataFrame(index=raw.index)
    for column in CANONICAL_COLUMNS:
        values = raw[column]
        if column in TEXT_COLUMNS and not pd.api.types.is_integer_dtype(values.dtype):
            values = normalise_ids(values, config.id_case if column in ID_COLUMNS else "keep")
        lines[column] = values
    return lines


def normalise_ids(ids: pd.Series, id_case: str) -> pd.Series:
    """Ids as trimmed text, empty as missing, in ``id_case`` (upper, lower, keep).

    The catalog and every config id list go through this too, so that
    ``" 85123a"`` in an export matches ``85123A`` in the catalog.
    """
    if isinstance(ids.dtype, pd.CategoricalDtype):
        # Normalise the distinct values, not every line; categories that become
        # equal ("B2B " and "B2B") merge. They come out in id order, so that
        # sorting by the codes sorts by the ids, as for ids stored as text.
        categories = normalise_ids(pd.Series(ids.cat.categories), id_case)
        if _unchanged(categories, ids.cat.categories):
            return ids  # already trimmed, cased and in id order: no new codes for every line
        merged, names = pd.factorize(categories, sort=True)
        # Code -1 (missing) picks the appended -1: missing stays missing. The new codes keep the
        # old ones' width (there are no more of them): no 8-byte copy of every line.
        old = ids.cat.codes.to_numpy()
        codes = np.append(merged, -1).astype(old.dtype)[old]
        return pd.Series(pd.Categorical.from_codes(codes, categories=names), index=ids.index, name=ids.name)
    text = ids.astype(TEXT).str.strip()
    text = text.mask(text == "")
    if id_case == "upper":
        return text.str.upper()
    if id_case == "lower":
        return text.str.lower()
    return text


def _unchanged(normalised: pd.Series, categories: pd.Index) -> bool:
    """Whether normalising left every category as it was, present, distinct and ascending.

    Compared in Arrow: millions of order ids as Python strings took a second.
    """
    after = pa.array(normalised, type=pa.string(), from_pandas=True)
    if after.null_count or len(after) != len(categories):
        return False
    if not pc.all(pc.equal(after, pa.array(categories, type=pa.string(), from_pandas=True))).as_py():
        return False
    return len(after) < 2 or bool(pc.all(pc.less(after[:-1], after[1:])).as_py())


def per_value(values: pd.Series, test: Callable[[pd.Series], pd.Series]) -> np.ndarray:
    """``test`` (a boolean per value) for every line; on the categories only where the values are categories.

    pandas' text methods on a category column run over every category as a Python string.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _by_code(values, np.asarray(test(_categories(values)), dtype=bool), False)
    return np.asarray(test(values), dtype=bool)


def per_category(values: pd.Series, parse: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``parse`` (numbers or timestamps, missing where a value does not parse) of every line; of the
    categories only where the values are categories (text read dictionary-encoded).

    A CSV's timestamps repeat on every line of an order: 31.5 million lines hold 3 million distinct ones.
    """
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return parse(values)
    parsed = parse(_categories(values)).to_numpy()
    missing = np.nan if parsed.dtype.kind == "f" else np.datetime64("NaT")
    return pd.Series(_by_code(values, parsed, missing), index=values.index, name=values.name)


def _categories(values: pd.Series) -> pd.Series:
    """The categories of a category column, as text."""
    return pd.Series(values.cat.categories).astype(TEXT)


def _by_code(values: pd.Series, found: np.ndarray, missing: object) -> np.ndarray:
    """Each line's entry of ``found`` (one per category of ``values``); ``missing`` for a line without a value
    (code -1 picks the appended entry)."""
    return np.append(found, np.full(1, missing, dtype=found.dtype))[values.cat.codes.to_numpy()]


def _non_product(product_id: pd.Series, config: CleanConfig) -> np.ndarray:
    listed = normalise_ids(pd.Series(config.non_product_ids, dtype=TEXT), config.id_case).tolist()
    if not _is_text(product_id):
        # Integer ids: only listed ids that are integers can match; no pattern applies.
        numbers = [int(i) for i in listed if i.lstrip("-").isdigit()]
        return product_id.isin(numbers).to_numpy()
    pattern = config.non_product_pattern

    def listed_or_matching(ids: pd.Series) -> pd.Series:
        found = ids.isin(listed)
        return found | ids.str.fullmatch(pattern).fillna(False) if pattern else found

    return per_value(product_id, listed_or_matching)


def _to_number(values: pd.Series) -> pd.Series:
    """Numbers: floats (NaN for missing or unparseable); numbers stored as numbers pass through.

    Integers without missing values stay as stored (a float64 copy of 30 million quantities is
    250 MB beside the lines as read); integers with holes become floats (NaN for missing).
    """
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        return values
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    text = values.astype(TEXT).str.strip()
    strict = _arrow_cast(text, pa.float64())
    if strict is not None:
        return strict
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _to_timestamp(values: pd.Series, fmt: str | None) -> pd.Series:
    """Naive timestamps (NaT for missing or unparseable); aware ones in UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    text = values.astype(TEXT).str.strip()
    strict = None if fmt else _arrow_cast(text, pa.timestamp("us"))
    if strict is not None:
        return strict
    parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def _arrow_cast(text: pd.Series, to: pa.DataType) -> pd.Series | None:
    """Arrow's strict parser: ten times pandas' speed, but all or nothing.

    Returns None when any value does not parse; the caller then parses
    value by value, marking the bad ones.
    """
    try:
        parsed = pc.cast(pa.array(text, type=pa.string(), from_pandas=True), to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.Series(parsed.to_pandas(), index=text.index)


def _resolve_as_of(as_of: datetime | date | None, timestamps: pd.Series) -> datetime | None:
    if isinstance(as_of, datetime):
        return as_of
    if isinstance(as_of, date):
        return datetime.combine(as_of, time.max)
    newest = timestamps.max()
    return None if pd.isna(newest) else newest.to_pydatetime()


def _rejects(raw: pd.DataFrame, verdict: np.ndarray, directory: Path | None) -> RejectsFile:
    """The rejected lines, with every canonical value as read (as text) and the reason, written to a
    :class:`RejectsFile` in ``directory`` :data:`REJECT_CHUNK` lines at a time."""
    rejects = RejectsFile(directory)
    at = np.flatnonzero(verdict)
    for start in range(0, at.size, REJECT_CHUNK):
        lines = at[start : start + REJECT_CHUNK]
        rows = raw.iloc[lines]
        # Text stays in Arrow (TEXT): a million rejects as Python strings, column by column, took seconds.
        out = pd.DataFrame(
            {
                "source_file": rows["source_file"].astype(TEXT).array,
                "source_row": rows["source_row"].astype("int64").to_numpy(),
                "reason": pd.array(np.asarray(REASONS, dtype=object)[verdict[lines] - 1], dtype=TEXT),
            }
        )
        for column in CANONICAL_COLUMNS:
            out[column] = rows[column].astype(TEXT).array
        rejects.write(out)
    rejects.complete()
    return rejects
