"""Baskets in, each customer's buy-again list out: the products of most of their orders, in this process.

The follow-up e-mail's personal block (``buy_again.parquet``): on wholesale
and grocery data what a customer buys next is mostly what they bought before
(``docs/evaluation.md``). Per customer with an id, every product they bought
with the number of their orders that held it and the last time, ordered by
:data:`~pipeline.policy.offers.BUY_AGAIN_ORDER`; the first ``output.top_k``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.contract.schema import BUY_AGAIN, TEXT, text_column, to_table
from pipeline.local.baskets import Baskets
from pipeline.policy.offers import BUY_AGAIN_ORDER, shown


def buy_again_table(baskets: Baskets, catalog: pd.DataFrame | None, top_k: int, run_id: str) -> pa.Table:
    """Each customer's ``top_k`` most bought products as a ``buy_again.parquet`` table.

    Customers and products are counted as integer codes (customers numbered in
    id order, products in id order by construction), one sort of the
    (customer, product) keys: grouping ten million lines by Python objects
    took seconds.
    """
    customer = baskets.order_info["customer_id"]
    owner, customers = pd.factorize(customer.astype(object).where(customer.notna(), None).to_numpy(), sort=True)
    matrix = baskets.matrix.tocoo()
    held = owner[matrix.row] >= 0
    rows, columns = matrix.row[held], matrix.col[held]
    width = max(len(baskets.items), 1)
    keys = owner[rows].astype(np.int64) * width + columns
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.empty(0, dtype=np.int64)
    # NaT is the smallest int64: the latest known time wins, NaT only where every basket lacks one.
    # In the timestamps' own unit: a year like 2263 does not fit in nanoseconds.
    stamps = pd.to_datetime(baskets.order_info["timestamp"]).to_numpy()
    ticks = stamps.view(np.int64)[rows[order]]
    latest = np.maximum.reduceat(ticks, starts) if keys.size else np.empty(0, dtype=np.int64)
    grouped = pd.DataFrame(
        {
            "customer_id": keys[starts] // width,
            "product_id": keys[starts] % width,
            "orders": np.diff(np.r_[starts, keys.size]),
            "last_bought": latest.view(stamps.dtype),
        }
    )
    grouped = grouped.sort_values(
        ["customer_id", *(c for c, _ in BUY_AGAIN_ORDER)],
        ascending=[True, *(a for _, a in BUY_AGAIN_ORDER)],
        na_position="last",
        kind="stable",
        ignore_index=True,
    )
    grouped["rank"] = (grouped.groupby("customer_id", sort=False).cumcount() + 1).astype("int32")
    grouped = grouped[shown(grouped["rank"].to_numpy(), top_k)].reset_index(drop=True)
    product = baskets.items[grouped["product_id"].to_numpy()]
    names = catalog.set_index("product_id")["name"] if catalog is not None else pd.Series(dtype=object)
    return to_table(
        pd.DataFrame(
            {
                "customer_id": text_column(
                    np.asarray(customers, dtype=object)[grouped["customer_id"].to_numpy()].astype(str), len(grouped)
                ),
                "product_id": text_column(product.astype(str), len(grouped)),
                "product_name": pd.array(names.reindex(product).to_numpy(dtype=object), dtype=TEXT),
                "orders": grouped["orders"].to_numpy(dtype=np.int64),
                "last_bought": grouped["last_bought"].to_numpy(),
                "rank": grouped["rank"].to_numpy(),
                "run_id": text_column(run_id, len(grouped)),
            }
        ),
        BUY_AGAIN,
    )
