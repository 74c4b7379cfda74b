"""Frequent itemsets and catalog in, bundles out: products to sell together at a price.

A bundle is a frequent itemset of 2 to ``bundles.max_size`` products (at most
``mine.max_len``) whose products are strongly tied *both ways*:
all-confidence, ``n(bundle) / max(n(p) for p in bundle)``, at least
``bundles.min_all_confidence``. Unlike one rule's confidence, it is high only
when every product of the bundle is usually bought with all the others, so a
best-seller does not drag unrelated products into bundles.

Price: the sum of the catalog prices less ``bundles.discount``, but never so
much that the bundle's margin rate falls below ``margin.min_margin_rate``
(0 when unset): the discount is capped at ``1 - cost / ((1 - rate) x price)``,
and an itemset whose products already earn less than that rate is no bundle.
Every product needs a catalog price and margin. Ranked per segment by
``support x bundle margin`` (the margin the bundle earns per basket); the best
``bundles.top_n`` are published in ``bundles.parquet``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.baskets import ItemsetLabels
from pipeline.config import Config
from pipeline.itemsets import Itemsets
from pipeline.schema import BUNDLES, TEXT, text_column, to_table

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
    product = (catalog if catalog is not None else pd.DataFrame(columns=["product_id", "name", "price", "margin"]))
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
    frame = frame.sort_values(["score", "bundle_key"], ascending=[False, True], kind="stable", ignore_index=True)
    frame = frame.head(config.bundles.top_n)
    frame["rank"] = np.arange(1, len(frame) + 1, dtype=np.int32)
    log.info("bundles (%s): %d of %d itemsets of 2-%d products", segment, len(frame), keep.size, config.bundles.max_size)
    chosen = pa.array(frame.pop("row").to_numpy(dtype=np.int64))
    return to_table(frame, BUNDLES, {"bundle": labels.lists.take(chosen)})


def price_bundles(
    count: np.ndarray,
    largest: np.ndarray,
    list_price: np.ndarray,
    list_margin: np.ndarray,
    priced: np.ndarray,
    baskets: int,
    config: Config,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which candidate itemsets are bundles, and their published numbers (for those only).

    Per candidate: its basket ``count``, the ``largest`` basket count of one of
    its products, the sums of its products' prices and margins, and whether
    every product has a price (``priced``). Both engines call this, so a bundle
    is priced the same wherever it was mined.
    """
    all_confidence = count / np.maximum(largest, 1)
    cost = list_price - list_margin
    rate = config.margin.min_margin_rate or 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        most = 1 - cost / ((1 - rate) * list_price)
    keep = (all_confidence >= config.bundles.min_all_confidence) & np.isfinite(most) & (most >= 0) & (list_price > 0)
    keep &= priced
    all_confidence, list_price, cost, most = all_confidence[keep], list_price[keep], cost[keep], most[keep]
    discount = np.minimum(config.bundles.discount, most)
    bundle_price = np.floor(list_price * (1 - discount) * 100 + 1e-9) / 100
    # Rounding the price down to the cent may cross the margin floor: round up instead there.
    short = bundle_price - cost < rate * bundle_price - 1e-12
    bundle_price = np.where(short, np.ceil(list_price * (1 - discount) * 100 - 1e-9) / 100, bundle_price)
    support = count[keep] / max(baskets, 1)
    bundle_margin = bundle_price - cost
    return keep, {
        "support": support,
        "all_confidence": all_confidence,
        "list_price": list_price,
        "discount": 1 - bundle_price / list_price,
        "bundle_price": bundle_price,
        "bundle_margin": bundle_margin,
        "bundle_margin_rate": bundle_margin / bundle_price,
        "score": support * bundle_margin,
    }
