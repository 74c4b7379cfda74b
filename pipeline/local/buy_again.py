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

from pipeline.contract.schema import BUY_AGAIN, HISTORY, TEXT, to_table
from pipeline.local.baskets import Baskets
from pipeline.policy.offers import BUY_AGAIN_ORDER, shown


def customer_lists(
    baskets: Baskets, names: pd.Series, top_k: int, depth: int, run_id: str
) -> tuple[pa.Table, pa.Table]:
    """Each customer's ``top_k`` most bought products as a ``buy_again.parquet`` table, and their
    ``depth`` most bought as a ``history.parquet`` table (0: an empty table), from one ranking.
    ``names`` names the products (product id -> name, :func:`pipeline.policy.names.described_products`).

    Customers and products are counted as integer codes (customers numbered in
    id order, products in id order by construction), one sort of the
    (customer, product) keys: grouping ten million lines by Python objects
    took seconds. The groups are ranked in numpy and only the shown ones
    gathered: a frame of every (customer, product) sorted by pandas held
    about twice the memory of the baskets.
    """
    owner, customers = _customer_codes(baskets.order_info["customer_id"])
    matrix = baskets.matrix.tocoo()
    held = owner[matrix.row] >= 0
    rows, columns = matrix.row[held], matrix.col[held]
    del matrix, held
    width = max(len(baskets.items), 1)
    keys = owner[rows].astype(np.int64) * width + columns
    del columns
    # Lines of one (customer, product) are counted and their latest time taken: their order among
    # themselves does not matter, so the fastest (unstable) sort.
    order = np.argsort(keys)
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.empty(0, dtype=np.int64)
    # NaT is the smallest int64: the latest known time wins, NaT only where every basket lacks one.
    # In the timestamps' own unit: a year like 2263 does not fit in nanoseconds.
    stamps = pd.to_datetime(baskets.order_info["timestamp"]).to_numpy()
    ticks = stamps.view(np.int64)[rows[order]]
    del rows, order
    groups = {
        "orders": np.diff(np.r_[starts, keys.size]),
        "last_bought": np.maximum.reduceat(ticks, starts) if keys.size else np.empty(0, dtype=np.int64),
        "product_id": keys[starts] % width,
    }
    customer = keys[starts] // width
    del keys, ticks, starts
    # Within each customer, BUY_AGAIN_ORDER. The groups come in (customer, product) order, so a stable
    # sort on (customer, orders descending) then the latest time keeps the product order for ties:
    # two keys, not four (np.lexsort is stable and takes its last key first).
    assert BUY_AGAIN_ORDER == (("orders", False), ("last_bought", False), ("product_id", True))
    most = int(groups["orders"].max(initial=0))
    by_orders = customer * (most + 1) + (most - groups["orders"])
    ranked = np.lexsort([_sort_key(groups["last_bought"], False), by_orders])
    customer = customer[ranked]
    first = np.r_[True, customer[1:] != customer[:-1]] if customer.size else np.empty(0, dtype=bool)
    positions = np.arange(customer.size)
    rank = positions - np.maximum.accumulate(np.where(first, positions, 0)) + 1
    # The text columns are taken in Arrow from the distinct ids and names: a history is tens of
    # products per customer, millions of rows as Python strings would cost gigabytes.
    ids = np.asarray(customers, dtype=object).astype(str), baskets.items.astype(str)

    def listed(k: int, schema: pa.Schema) -> pa.Table:
        pick = shown(rank, k)
        chosen = ranked[pick]
        product = groups["product_id"][chosen]
        frame = pd.DataFrame({"orders": groups["orders"][chosen].astype(np.int64), "rank": rank[pick].astype(np.int32)})
        texts = {"customer_id": _taken(ids[0], customer[pick]), "product_id": _taken(ids[1], product)}
        if "run_id" in schema.names:
            frame["last_bought"] = groups["last_bought"][chosen].view(stamps.dtype)
            texts["product_name"] = _taken(names.reindex(baskets.items).to_numpy(dtype=object), product)
            texts["run_id"] = _taken(np.array([run_id], dtype=object), np.zeros(chosen.size, dtype=np.int64))
        return to_table(frame, schema, {n: texts[n] for n in schema.names if n in texts})

    return listed(top_k, BUY_AGAIN), listed(depth, HISTORY)


def _taken(values: np.ndarray, index: np.ndarray) -> pa.Array:
    """``values[index]`` as an Arrow text column (missing values null), each distinct value converted once."""
    return pa.array(values, type=pa.string(), from_pandas=True).take(pa.array(index, type=pa.int64()))


def _customer_codes(customer: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each basket's customer code (-1: no customer id), customers numbered in id order, and the ids.

    The order is the ids' text order, as the table is sorted (and the Spark engine sorts): customer 10
    before customer 9 where the export stores them as numbers. Ids read dictionary-encoded are
    factorized by their codes, not as Python objects.
    """
    if not isinstance(customer.dtype, pd.CategoricalDtype):
        customer = customer.astype(TEXT)
    codes, uniques = pd.factorize(customer, sort=True)
    return codes, np.asarray(uniques, dtype=object)


def _sort_key(values: np.ndarray, ascending: bool) -> np.ndarray:
    """``values`` (integers) as an ascending sort key; descending as their bitwise complement, which
    reverses the order without overflow and puts NaT (the smallest int64) last."""
    return values if ascending else ~values
