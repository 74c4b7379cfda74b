"""Order lines in, clean product lines out, and every rejected line kept with its reason.

Each rule is a step with a reason name; a line is rejected by the first step
that objects, and the step counts are what the manifest reports. Nothing is
dropped without a row in ``rejects``. The steps, in order:

===================== =========================================================
reason                rejects a line when
===================== =========================================================
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from pipeline.config import CANONICAL_COLUMNS, CleanConfig
from pipeline.errors import InputDataError
from pipeline.schema import REJECTS, TEXT

log = logging.getLogger(__name__)

REASONS: tuple[str, ...] = (
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
_ID_COLUMNS = ("order_id", "product_id")
_TEXT_COLUMNS = ("order_id", "product_id", "customer_id", "segment")


@dataclass(frozen=True)
class CleanResult:
    """Clean lines, the rejected lines as read, and the count per reason."""

    lines: pd.DataFrame
    rejects: pd.DataFrame
    counts: dict[str, int]
    rows_in: int
    as_of: datetime | None = field(default=None)


def clean_transactions(
    raw: pd.DataFrame,
    config: CleanConfig,
    as_of: datetime | date | None = None,
    timestamp_format: str | None = None,
) -> CleanResult:
    """Apply every cleaning step to the lines read by :mod:`pipeline.ingest`.

    ``as_of`` limits the data to lines at or before that instant (a date means
    the end of that day); by default it is the newest timestamp in the data,
    never the wall clock, so a rerun of an old export gives the same answer.
    The input frame is not modified.
    """
    lines = _normalised(raw, config)
    reason = pd.Series(pd.NA, index=raw.index, dtype=TEXT)

    def reject(name: str, mask: pd.Series | np.ndarray) -> None:
        reason[np.asarray(mask, dtype=bool) & reason.isna().to_numpy()] = name

    reject("missing_order_id", lines["order_id"].isna())
    reject("missing_product_id", lines["product_id"].isna())
    parsers: dict[str, tuple[str, Callable[[pd.Series], pd.Series]]] = {
        "quantity": ("bad_quantity", _to_number),
        "unit_price": ("bad_unit_price", _to_number),
        "timestamp": ("bad_timestamp", lambda values: _to_timestamp(values, timestamp_format)),
    }
    for column, (name, parse) in parsers.items():
        parsed = parse(lines[column])
        invalid = parsed.isna() & lines[column].notna()
        _check_invalid_share(raw, column, invalid, config)
        reject(name, invalid)
        lines[column] = parsed
    timestamps = lines["timestamp"]

    if config.cancel_prefixes:
        prefixes = tuple(normalise_ids(pd.Series(config.cancel_prefixes), config.id_case))
        reject("cancelled", lines["order_id"].str.startswith(prefixes).fillna(False))
    reject("non_product", _non_product(lines["product_id"], config))
    quantity, price = lines["quantity"], lines["unit_price"]
    if config.drop_nonpositive_quantity:
        reject("nonpositive_quantity", (quantity <= 0).fillna(False))
    if config.drop_negative_price:
        reject("negative_price", (price < 0).fillna(False))
    if config.drop_zero_price:
        reject("zero_price", (price == 0).fillna(False))

    resolved_as_of = _resolve_as_of(as_of, timestamps[reason.isna()])
    if as_of is not None or config.window_days is not None:
        reject("missing_timestamp", timestamps.isna())
    if resolved_as_of is not None:
        reject("after_as_of", (timestamps > resolved_as_of).fillna(False))
        if config.window_days is not None:
            start = resolved_as_of - timedelta(days=config.window_days)
            reject("outside_window", (timestamps <= start).fillna(False))

    if config.drop_duplicates:
        kept = reason.isna()
        duplicated = lines.loc[kept, list(CANONICAL_COLUMNS)].duplicated(keep="first")
        reject("duplicate_line", duplicated.reindex(raw.index, fill_value=False))
    if config.max_basket_size is not None:
        kept = lines[reason.isna()]
        sizes = kept.groupby("order_id", sort=False, observed=True)["product_id"].nunique()
        oversized = sizes.index[sizes > config.max_basket_size]
        reject("oversized_basket", lines["order_id"].isin(oversized) & reason.isna())

    rejected = reason.notna()
    counts = {name: int(n) for name, n in reason[rejected].value_counts().items()}
    counts = {name: counts.get(name, 0) for name in REASONS}
    result = CleanResult(
        lines=lines.loc[~rejected, list(CANONICAL_COLUMNS)].reset_index(drop=True),
        rejects=_rejects(raw, reason, rejected),
        counts=counts,
        rows_in=len(raw),
        as_of=resolved_as_of,
    )
    log.info(
        "clean: %d rows in, %d kept, %d rejected (%s)",
        result.rows_in,
        len(result.lines),
        len(result.rejects),
        ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none",
    )
    return result


def _check_invalid_share(raw: pd.DataFrame, column: str, invalid: pd.Series, config: CleanConfig) -> None:
    """Stop when too many values of a column do not parse: the file, not a row, is wrong."""
    bad = int(invalid.sum())
    if not bad or bad <= config.max_invalid_share * len(raw):
        return
    rows = raw.loc[invalid, ["source_file", "source_row", column]].head(5)
    files = ", ".join(dict.fromkeys(rows["source_file"].astype(str)))
    hint = "input.timestamp_format" if column == "timestamp" else "input.delimiter and the number format"
    raise InputDataError(
        f"{files}: column {column!r} (input.columns.{column}): {bad:,} of {len(raw):,} values "
        f"({bad / len(raw):.1%}) cannot be parsed, more than clean.max_invalid_share = "
        f"{config.max_invalid_share:g}; first at rows {rows['source_row'].tolist()}: "
        f"{rows[column].astype(str).tolist()}. Check {hint}, or raise the share to quarantine them"
    )


def _normalised(raw: pd.DataFrame, config: CleanConfig) -> pd.DataFrame:
    """A copy with text trimmed (empty -> missing) and ids cased as configured."""
    lines = raw[list(CANONICAL_COLUMNS)].copy()
    for column in _TEXT_COLUMNS:
        case = config.id_case if column in _ID_COLUMNS else "keep"
        lines[column] = normalise_ids(lines[column], case)
    return lines


def normalise_ids(ids: pd.Series, id_case: str) -> pd.Series:
    """Ids as trimmed text, empty as missing, in ``id_case`` (upper, lower, keep).

    The catalog and every config id list go through this too, so that
    ``" 85123a"`` in an export matches ``85123A`` in the catalog.
    """
    text = ids.astype(TEXT).str.strip()
    text = text.mask(text == "")
    if id_case == "upper":
        return text.str.upper()
    if id_case == "lower":
        return text.str.lower()
    return text


def _non_product(product_id: pd.Series, config: CleanConfig) -> pd.Series:
    listed = normalise_ids(pd.Series(config.non_product_ids, dtype=TEXT), config.id_case)
    mask = product_id.isin(listed.tolist())
    if config.non_product_pattern:
        mask |= product_id.str.fullmatch(config.non_product_pattern).fillna(False)
    return mask


def _to_number(values: pd.Series) -> pd.Series:
    """Floats (NaN for missing or unparseable); numbers stored as numbers pass through."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    text = values.astype(TEXT).str.strip()
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _to_timestamp(values: pd.Series, fmt: str | None) -> pd.Series:
    """Naive timestamps (NaT for missing or unparseable); aware ones in UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    text = values.astype(TEXT).str.strip()
    parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def _resolve_as_of(as_of: datetime | date | None, timestamps: pd.Series) -> datetime | None:
    if isinstance(as_of, datetime):
        return as_of
    if isinstance(as_of, date):
        return datetime.combine(as_of, time.max)
    newest = timestamps.max()
    return None if pd.isna(newest) else newest.to_pydatetime()


def _rejects(raw: pd.DataFrame, reason: pd.Series, rejected: pd.Series) -> pd.DataFrame:
    """Rejected lines with every canonical value as read (as text) and the reason."""
    rows = raw.loc[rejected]
    out = pd.DataFrame(
        {
            "source_file": rows["source_file"].astype(TEXT),
            "source_row": rows["source_row"].astype("int64"),
            "reason": reason[rejected],
        }
    )
    for column in CANONICAL_COLUMNS:
        out[column] = rows[column].astype(TEXT)
    return out[REJECTS.names].reset_index(drop=True)
