"""Baskets in, each customer's buy-again list out: the products of most of their orders, in this process.

The follow-up e-mail's personal block (``buy_again.parquet``): on wholesale
and grocery data what a customer buys next is mostly what they bought before
(``docs/evaluation.md``). Per customer with an id, every product they bought
with the number of their orders that held it and the last time, ordered by
:data:`~pipeline.policy.offers.BUY_AGAIN_ORDER`; the first ``output.top_k``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import arrays
from pipeline.contract.schema import BUY_AGAIN, HISTORY, TEXT, to_table
from pipeline.local.baskets import Baskets
from pipeline.local.threads import on_threads
from pipeline.policy.offers import BUY_AGAIN_ORDER, shown

#: Basket entries ranked at a time by each thread (:mod:`pipeline.local.threads`): customers come
#: whole in each block.
BLOCK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class _Ranked:
    """Every (customer, product) a list can show, ranked within its customer: parallel int32 arrays."""

    customer: np.ndarray
    product: np.ndarray
    orders: np.ndarray
    #: The latest purchase, as the rank of its time among the baskets' distinct times.
    last_bought: np.ndarray
    rank: np.ndarray


def customer_lists(
    baskets: Baskets, names: pd.Series, top_k: int, depth: int, run_id: str
) -> tuple[pa.Table, pa.Table]:
    """Each customer's ``top_k`` most bought products as a ``buy_again.parquet`` table, and their
    ``depth`` most bought as a ``history.parquet`` table (0: an empty table), from one ranking.
    ``names`` names the products (product id -> name, :func:`pipeline.policy.names.described_products`).

    Customers and products are counted as integer codes (customers numbered in
    id order, products in id order by construction): grouping ten million
    lines by Python objects took seconds. Customers are ranked a block of
    about :data:`BLOCK_ENTRIES` basket entries at a time and only the rows a
    list can show are kept: every (customer, product) of 3 million baskets at
    once held more than a gigabyte, the run's peak. Two blocks of a million
    entries at a time, on threads, took 0.6-0.75x the time of one block of four
    million on one thread, in the same memory (3 M baskets, throwaway timing).
    """
    owner, customers = _customer_codes(baskets.order_info["customer_id"])
    # NaT is the smallest int64: the latest known time wins, NaT only where every basket lacks one.
    # In the timestamps' own unit: a year like 2263 does not fit in nanoseconds.
    stamps = pd.to_datetime(baskets.order_info["timestamp"]).to_numpy()
    # Each basket's time as its rank among the distinct times (NaT first): the ranking's keys fit one integer.
    times, when = np.unique(stamps.view(np.int64), return_inverse=True)
    by_customer = np.argsort(owner, kind="stable")
    by_customer = by_customer[owner[by_customer] >= 0]
    parts = on_threads(
        lambda block: _ranked(baskets, by_customer[block], owner, when, len(times), max(top_k, depth)),
        _blocks(owner[by_customer], np.diff(baskets.matrix.indptr)[by_customer]),
    )
    parts = parts or [_Ranked(*[np.empty(0, dtype=np.int32)] * len(fields(_Ranked)))]
    ranked = _Ranked(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_Ranked)))
    del parts
    # The text columns are taken in Arrow from the distinct ids and names: a history is tens of
    # products per customer, millions of rows as Python strings would cost gigabytes.
    ids = np.asarray(customers, dtype=object).astype(str), baskets.items.astype(str)

    def listed(k: int, schema: pa.Schema) -> pa.Table:
        pick = shown(ranked.rank, k)
        product = ranked.product[pick]
        frame = pd.DataFrame({"orders": ranked.orders[pick], "rank": ranked.rank[pick].astype(np.int32)})
        texts = {"customer_id": _taken(ids[0], ranked.customer[pick]), "product_id": _taken(ids[1], product)}
        if "run_id" in schema.names:
            frame["last_bought"] = times[ranked.last_bought[pick]].view(stamps.dtype)
            texts["product_name"] = _taken(names.reindex(baskets.items).to_numpy(dtype=object), product)
            texts["run_id"] = _taken(np.array([run_id], dtype=object), np.zeros(product.size, dtype=np.int64))
        return to_table(frame, schema, {n: texts[n] for n in schema.names if n in texts})

    return listed(top_k, BUY_AGAIN), listed(depth, HISTORY)


def _blocks(owners: np.ndarray, sizes: np.ndarray) -> list[slice]:
    """Runs of baskets (sorted by ``owners``) of about :data:`BLOCK_ENTRIES` entries (``sizes``), each
    customer's baskets in one run."""
    if not owners.size:
        return []
    ends = np.flatnonzero(np.r_[owners[1:] != owners[:-1], True]) + 1
    block = (np.cumsum(sizes)[ends - 1] - 1) // BLOCK_ENTRIES
    ends = ends[np.r_[block[1:] != block[:-1], True]]
    return [slice(start, end) for start, end in zip(np.r_[0, ends[:-1]], ends, strict=True)]


def _ranked(
    baskets: Baskets, rows: np.ndarray, owner: np.ndarray, when: np.ndarray, times: int, deepest: int
) -> _Ranked:
    """The first ``deepest`` products of each customer of the baskets ``rows`` (whole customers), ranked;
    ``when`` is each basket's time as a rank among ``times`` distinct times, and so is ``last_bought``."""
    matrix = baskets.matrix[rows].tocoo()
    width = max(len(baskets.items), 1)
    keys = owner[rows][matrix.row].astype(np.int64)
    keys *= width
    keys += matrix.col
    # Lines of one (customer, product) are counted and their latest time taken: their order among
    # themselves does not matter, so the fastest (unstable) sort.
    order = np.argsort(keys)
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    orders = np.diff(np.r_[starts, keys.size])
    last_bought = np.maximum.reduceat(when[rows][matrix.row[order]], starts)
    customer, product = np.divmod(keys[starts], width)
    del keys, order, matrix
    ranked = _in_list_order(customer, orders, last_bought, times)
    customer = customer[ranked]
    first = np.r_[True, customer[1:] != customer[:-1]]
    positions = np.arange(customer.size)
    rank = positions - np.maximum.accumulate(np.where(first, positions, 0)) + 1
    pick = shown(rank, deepest)
    chosen = ranked[pick]
    # Codes, counts and ranks below the number of baskets: 4 bytes each (a history of 3 M baskets
    # is 10 M rows, held with its text columns).
    return _Ranked(
        *(
            a.astype(np.int32)
            for a in (customer[pick], product[chosen], orders[chosen], last_bought[chosen], rank[pick])
        )
    )


def _in_list_order(customer: np.ndarray, orders: np.ndarray, latest: np.ndarray, times: int) -> np.ndarray:
    """Positions of the (customer, product) groups in :data:`BUY_AGAIN_ORDER` within each customer.

    The groups come in (customer, product) order, so a stable sort on
    (customer, orders descending, latest time descending) keeps the product
    order for ties. ``latest`` ranks the times (``times`` of them): the three
    keys fit one integer, and one stable argsort of it, which merges the
    customers' runs, took a tenth of a two-key ``np.lexsort``'s time.
    """
    assert BUY_AGAIN_ORDER == (("orders", False), ("last_bought", False), ("product_id", True))
    most = int(orders.max(initial=0))
    by_orders = customer * (most + 1) + (most - orders)
    newest_first = times - 1 - latest
    if (int(by_orders.max(initial=0)) + 1) * times < 2**arrays.KEY_BITS:
        return np.argsort(by_orders * times + newest_first, kind="stable")
    return np.lexsort([newest_first, by_orders])  # keys too wide for one integer: np.lexsort takes the last first


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
