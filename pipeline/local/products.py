"""Baskets and catalog in, ``products.parquet`` rows out: every product sold, by category.

The storefront's cart block falls back to the best sellers of the cart's
categories (:mod:`pipeline.read.lookup`); this table holds them, ranked within
each category by the baskets that hold them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.contract.schema import PRODUCTS, TEXT, text_column, to_table
from pipeline.local.baskets import Baskets


def product_table(baskets: Baskets, described: pd.DataFrame, segment: str) -> pa.Table:
    """Every product sold in the segment with its name, category and basket count, ranked within its category.

    ``described`` names the products (:func:`pipeline.policy.names.described_products`).
    """
    counts = baskets.item_counts()
    sold = np.flatnonzero(counts > 0)
    info = described.set_index("product_id").reindex(baskets.items[sold])
    frame = pd.DataFrame(
        {
            "segment": text_column(segment, sold.size),
            "product_id": text_column(baskets.items[sold], sold.size),
            "name": info["name"].astype(TEXT).to_numpy(),
            "category": info["category"].astype(TEXT).to_numpy(),
            "baskets": counts[sold],
            "variant_group": info["variant_group"].astype(TEXT).to_numpy(),
        }
    )
    frame = frame.sort_values(["category", "baskets", "product_id"], ascending=[True, False, True], kind="stable")
    frame["category_rank"] = (frame.groupby("category", dropna=False, sort=False).cumcount() + 1).astype("int32")
    return to_table(frame.reset_index(drop=True), PRODUCTS)
