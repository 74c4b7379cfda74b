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
    """Each customer's ``top_k`` most bought products as a ``buy_again.parquet`` table."""
    customer = baskets.order_info["customer_id"].astype(object)
    known = customer.notna().to_numpy()
    matrix = baskets.matrix.tocoo()
    held = known[matrix.row]
    frame = pd.DataFrame(
        {
            "customer_id": customer.to_numpy()[matrix.row[held]],
            "product_id": baskets.items[matrix.col[held]],
            "last_bought": pd.to_datetime(baskets.order_info["timestamp"]).to_numpy()[matrix.row[held]],
        }
    )
    grouped = frame.groupby(["customer_id", "product_id"], sort=False).agg(
        orders=("last_bought", "size"), last_bought=("last_bought", "max")
    )
    grouped = grouped.reset_index().sort_values(
        ["customer_id", *(c for c, _ in BUY_AGAIN_ORDER)],
        ascending=[True, *(a for _, a in BUY_AGAIN_ORDER)],
        na_position="last",
        kind="stable",
        ignore_index=True,
    )
    grouped["rank"] = (grouped.groupby("customer_id", sort=False).cumcount() + 1).astype("int32")
    grouped = grouped[shown(grouped["rank"].to_numpy(), top_k)].reset_index(drop=True)
    names = catalog.set_index("product_id")["name"] if catalog is not None else pd.Series(dtype=object)
    return to_table(
        pd.DataFrame(
            {
                "customer_id": text_column(grouped["customer_id"].astype(str).to_numpy(), len(grouped)),
                "product_id": text_column(grouped["product_id"].astype(str).to_numpy(), len(grouped)),
                "product_name": pd.array(names.reindex(grouped["product_id"]).to_numpy(dtype=object), dtype=TEXT),
                "orders": grouped["orders"].to_numpy(dtype=np.int64),
                "last_bought": grouped["last_bought"].to_numpy(),
                "rank": grouped["rank"].to_numpy(),
                "run_id": text_column(run_id, len(grouped)),
            }
        ),
        BUY_AGAIN,
    )
