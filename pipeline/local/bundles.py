"""Frequent itemsets and catalog in, ``bundles.parquet`` rows out, in this process.

Which itemsets are bundles and their prices are :mod:`pipeline.policy.bundles`;
this module gathers each candidate's counts, prices and margins from the
itemsets and the catalog, and orders the bundles by :data:`~pipeline.policy.bundles.BUNDLE_ORDER`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.config import Config
from pipeline.contract.schema import BUNDLES, TEXT, text_column, to_table
from pipeline.local.baskets import ItemsetLabels
from pipeline.local.itemsets import Itemsets
from pipeline.policy.bundles import BUNDLE_ORDER, price_bundles

log = logging.getLogger(__name__)


def bundle_table(
    itemsets: Itemsets,
    labels: ItemsetLabels,
    items: np.ndarray,
    catalog: pd.DataFrame | None,
    config: Config,
    segment: str,
) -> pa.Table:
    """The bundles of one segment's itemsets as a ``bundles.parquet`` table."""
    rows = np.flatnonzero((itemsets.length >= 2) & (itemsets.length <= config.bundles.max_size))
    if catalog is None:
        rows = rows[:0]
    product = catalog if catalog is not None else pd.DataFrame(columns=["product_id", "name", "price", "margin"])
    product = product.set_index("product_id").reindex(items)
    # PAD (-1) reads the 0 appended to each array.
    price = np.append(product["price"].to_numpy(dtype=np.float64), 0.0)
    margin = np.append(product["margin"].to_numpy(dtype=np.float64), 0.0)
    single = np.zeros(len(items) + 1, dtype=np.int64)
    ones = itemsets.length == 1
    single[itemsets.codes[ones, 0]] = itemsets.count[ones]
    codes = itemsets.codes[rows]
    keep, priced = price_bundles(
        itemsets.count[rows],
        single[codes].max(axis=1),
        price[codes].sum(axis=1),
        margin[codes].sum(axis=1),
        ~np.isnan(price[codes]).any(axis=1),
        itemsets.baskets,
        config,
    )
    rows = rows[keep]
    frame = pd.DataFrame(
        {
            "segment": text_column(segment, rows.size),
            "bundle_key": pd.array(labels.keys.take(pa.array(rows)).to_numpy(zero_copy_only=False), dtype=TEXT),
            "size": itemsets.length[rows].astype(np.int32),
            "count": itemsets.count[rows],
            **priced,
            "row": rows,
        }
    )
    frame = frame.sort_values(
        [c for c, _ in BUNDLE_ORDER], ascending=[a for _, a in BUNDLE_ORDER], kind="stable", ignore_index=True
    )
    frame = frame.head(config.bundles.top_n)
    frame["rank"] = np.arange(1, len(frame) + 1, dtype=np.int32)
    log.info(
        "bundles (%s): %d of %d itemsets of 2-%d products", segment, len(frame), keep.size, config.bundles.max_size
    )
    chosen = pa.array(frame.pop("row").to_numpy(dtype=np.int64))
    return to_table(frame, BUNDLES, {"bundle": labels.lists.take(chosen)})
