"""The product catalog in, one row per product with its unit margin out.

The margin of a product is ``price - cost`` where the catalog has a cost, else
``price * margin_rate`` where it has only a rate; otherwise it is unknown
(null). A catalog is optional: basket-per-line data sets have none, and then
every margin column of the output is null and margin filters are skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import CatalogConfig
from pipeline.contract.schema import TEXT
from pipeline.errors import InputDataError, quoted, quoted_names
from pipeline.local.clean import normalise_ids
from pipeline.local.ingest import read_table_file
from pipeline.policy.variants import Keys, catalog_variant_keys

log = logging.getLogger(__name__)

CATALOG_COLUMNS: tuple[str, ...] = ("product_id", "name", "category", "price", "cost", "margin_rate", "variant_group")
_NUMBERS = ("price", "cost", "margin_rate")


def read_catalog(config: CatalogConfig, id_case: str) -> pd.DataFrame | None:
    """The catalog as ``product_id, name, category, price, cost, margin, margin_rate, variant_group``.

    ``id_case`` is the transactions' id normalisation (``clean.id_case``), so
    catalog ids match order-line ids. Returns ``None`` when no catalog is
    configured. Raises :class:`InputDataError` for a missing id column,
    unparseable numbers, negative prices or costs and duplicate product ids,
    naming the rows.
    """
    if config.path is None:
        return None
    path = Path(config.path)
    if not path.is_file():
        raise InputDataError(f"catalog file {path} does not exist")
    mapping: dict[str, str] = {}

    def wanted(header: list[str]) -> list[str]:
        for column in CATALOG_COLUMNS:
            name = getattr(config.columns, column)
            if name is not None and name not in header:
                raise InputDataError(
                    f"{path}: column {name!r} (catalog.columns.{column}) is not in the catalog; "
                    f"found {quoted_names(list(header))}"
                )
            if name is None and column in header:
                name = column
            if name is not None:
                mapping[column] = name
        if "product_id" not in mapping:
            raise InputDataError(
                f"{path}: the catalog has no 'product_id' column; found {quoted_names(list(header))}. "
                "Map it with catalog.columns.product_id"
            )
        return list(mapping.values())

    read = read_table_file(path, wanted, config.delimiter, config.encoding)
    # Indexed by the rows of the file, which the errors below name.
    raw = read.frame.set_axis(read.rows).rename(columns={source: canon for canon, source in mapping.items()})
    if read.quote_error.any():
        raise InputDataError(
            f"{path}: a quoted value swallowed the lines after it (a stray quote), first at rows "
            f"{_rows(pd.Series(read.quote_error, index=read.rows))}; fix the quoting of those rows"
        )
    catalog = pd.DataFrame({"product_id": normalise_ids(raw["product_id"], id_case)})
    for column in ("name", "category", "variant_group"):
        text = raw[column] if column in raw else pd.Series(pd.NA, index=raw.index)
        catalog[column] = text.astype(TEXT).str.strip()
    for column in _NUMBERS:
        catalog[column] = _numbers(raw, column, path)
    _check(catalog, path)
    margin = catalog["price"] - catalog["cost"]
    catalog["margin"] = margin.fillna(catalog["price"] * catalog["margin_rate"])
    catalog["margin_rate"] = (catalog["margin"] / catalog["price"]).where(catalog["price"] > 0)
    log.info(
        "catalog %s: %d products, %d with a known margin",
        path,
        len(catalog),
        int(catalog["margin"].notna().sum()),
    )
    columns = ["product_id", "name", "category", "price", "cost", "margin", "margin_rate", "variant_group"]
    return catalog[columns].reset_index(drop=True)


def known_margins(catalog: pd.DataFrame | None) -> int | None:
    """How many of ``catalog``'s products have a known margin; None without a catalog."""
    return None if catalog is None else int(catalog["margin"].notna().sum())


def knows_margins(catalog: pd.DataFrame | None) -> bool:
    """Whether ``catalog`` gives any product a margin.

    A catalog of names without prices, costs or margin rates gives none: the
    offers then score by their probability alone, as without a catalog, instead
    of every score being unknown (NaN). Both engines and ``evaluate`` decide by
    this; the cart lookup by the run's ``counts.catalog_margins``, the same count.
    """
    return bool(known_margins(catalog))


def _numbers(raw: pd.DataFrame, column: str, path: Path) -> pd.Series:
    if column not in raw:
        return pd.Series(np.nan, index=raw.index, dtype="float64")
    values = raw[column]
    parsed = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = parsed.isna() & values.notna() & (values.astype(TEXT).str.strip() != "")
    if bad.any():
        raise InputDataError(
            f"{path}: column {column!r} has {int(bad.sum())} value(s) that are not numbers, "
            f"first at rows {_rows(bad)}: {[quoted(v, 40) for v in values[bad].head(3)]}; fix or blank them"
        )
    return parsed


def _check(catalog: pd.DataFrame, path: Path) -> None:
    missing = catalog["product_id"].isna()
    if missing.any():
        raise InputDataError(
            f"{path}: {int(missing.sum())} catalog row(s) have no product_id, "
            f"first at rows {_rows(missing)}; fill or remove them"
        )
    duplicated = catalog["product_id"].duplicated(keep=False)
    if duplicated.any():
        ids = catalog.loc[duplicated, "product_id"].unique().tolist()
        raise InputDataError(
            f"{path}: column 'product_id' has {len(ids)} duplicated id(s) "
            f"(rows {_rows(duplicated)}), e.g. {[quoted(i, 40) for i in ids[:5]]}; keep one row per product"
        )
    for column in _NUMBERS:
        negative = (catalog[column] < 0).fillna(False)
        if negative.any():
            raise InputDataError(
                f"{path}: column {column!r} has {int(negative.sum())} negative value(s), "
                f"first at rows {_rows(negative)}; prices, costs and margin rates must be >= 0"
            )


def _rows(mask: pd.Series, limit: int = 5) -> list[int]:
    """The row numbers in the file (the index of ``mask``) of the first flagged rows."""
    return [int(i) for i in mask.index[mask.to_numpy(dtype=bool)][:limit]]


def product_variants(described: pd.DataFrame) -> dict[str, Keys]:
    """The variant keys (:mod:`pipeline.policy.variants`) of the products of
    :func:`pipeline.policy.names.described_products`."""
    return catalog_variant_keys(described["product_id"], described["name"], described["variant_group"])


def products_missing(product_ids: np.ndarray, catalog: pd.DataFrame) -> list[str]:
    """The product ids (sorted) that were sold but are not in the catalog."""
    known = set(catalog["product_id"].tolist())
    return sorted(str(p) for p in product_ids if p not in known)
