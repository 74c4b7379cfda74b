"""Clean order lines in, baskets out: one row per order, one column per product.

A basket is the set of distinct products of one order: a product bought on
three lines of the same order (or in quantity 12) counts once. Inside the
pipeline products are integer codes into :attr:`Baskets.items` (sorted product
ids, so sorted codes are sorted ids); strings come back only at the edges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

log = logging.getLogger(__name__)


#: Order-level columns kept beside the matrix, from each order's first line.
ORDER_COLUMNS = ("customer_id", "timestamp", "segment")


@dataclass(frozen=True)
class Baskets:
    """A sparse boolean baskets x products matrix and the labels of its axes.

    ``order_info`` has one row per basket (``customer_id``, ``timestamp``,
    ``segment`` of the order's first line) for segments and post-purchase
    rules, which need orders but not lines.
    """

    orders: np.ndarray
    items: np.ndarray
    matrix: sp.csr_matrix
    lines: int
    order_info: pd.DataFrame

    def size_histogram(self, cap: int = 100) -> dict[str, int]:
        """Baskets per number of distinct products; sizes above ``cap`` share the key ``">cap"``."""
        sizes = np.diff(self.matrix.indptr)
        counts = np.bincount(np.minimum(sizes, cap + 1), minlength=cap + 2)
        found = {str(k): int(n) for k, n in enumerate(counts[: cap + 1]) if n}
        if counts[cap + 1]:
            found[f">{cap}"] = int(counts[cap + 1])
        return found

    def subset(self, rows: np.ndarray) -> Baskets:
        """The baskets at ``rows`` (a boolean mask or positions), with every product code kept."""
        matrix = self.matrix[rows]
        return Baskets(
            orders=self.orders[rows],
            items=self.items,
            matrix=matrix,
            lines=int(matrix.nnz),
            order_info=self.order_info[rows].reset_index(drop=True),
        )

    @property
    def count(self) -> int:
        """Number of baskets: the denominator of every support."""
        return self.matrix.shape[0]

    def item_counts(self) -> np.ndarray:
        """Number of baskets holding each product, by product code."""
        return np.asarray(self.matrix.sum(axis=0)).ravel().astype(np.int64)


def baskets_from_lines(lines: pd.DataFrame) -> Baskets:
    """Group clean lines (``order_id``, ``product_id``) into baskets of distinct products."""
    order_codes, orders = pd.factorize(lines["order_id"], sort=True)
    item_codes, items = _codes_in_text_order(lines["product_id"])
    data = np.ones(len(lines), dtype=bool)
    matrix = sp.csr_matrix((data, (order_codes, item_codes)), shape=(len(orders), len(items)), dtype=bool)
    matrix.sum_duplicates()
    first_line = np.full(len(orders), len(lines), dtype=np.int64)
    np.minimum.at(first_line, order_codes, np.arange(len(lines)))
    baskets = Baskets(
        orders=np.asarray(orders, dtype=object),
        items=items,
        matrix=matrix,
        lines=len(lines),
        order_info=pd.DataFrame(
            {
                c: lines[c].iloc[first_line].reset_index(drop=True) if c in lines.columns else pd.NA
                for c in ORDER_COLUMNS
            },
            index=pd.RangeIndex(len(orders)),
        ),
    )
    log.info(
        "baskets: %d baskets of %d products from %d lines (%d repeated product lines merged)",
        baskets.count,
        len(items),
        len(lines),
        len(lines) - matrix.nnz,
    )
    return baskets


def _codes_in_text_order(product_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Product codes and the product ids as text, codes numbered in text order.

    Integer ids are numbered by their text ("10" before "9"), so that sorted
    codes are always sorted ids, whatever type the export stored them as.
    """
    codes, uniques = pd.factorize(product_ids)
    text = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    order = np.argsort(text, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[codes], text[order]


@dataclass(frozen=True)
class ItemsetLabels:
    """Itemsets as product ids: one list and one ``|``-joined key per itemset row."""

    lists: pa.ListArray
    keys: pa.Array


def itemset_labels(codes: np.ndarray, length: np.ndarray, items: np.ndarray) -> ItemsetLabels:
    """Label padded rows of product codes with product ids, vectorised in Arrow.

    ``codes[i, :length[i]]`` are ascending codes, so each list is sorted by
    product id and each key is the sorted ids joined with ``|``.
    """
    present = np.arange(codes.shape[1]) < length[:, None]
    values = pa.array(items, pa.string()).take(pa.array(codes[present].astype(np.int64)))
    offsets = np.concatenate([[0], np.cumsum(length, dtype=np.int64)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), values)
    return ItemsetLabels(lists=lists, keys=pc.binary_join(lists, "|"))


#: Pairs of products whose shared baskets or customers are counted this many at a time.
PAIR_CHUNK = 100_000


def customer_owners(baskets: Baskets) -> sp.csr_matrix:
    """Customers x baskets, 1 where the customer placed the basket; a basket without customer is its own."""
    customer = baskets.order_info["customer_id"]
    ids = pd.factorize(customer.astype(object).where(customer.notna(), None).to_numpy(), use_na_sentinel=True)[0]
    anonymous = ids < 0
    ids[anonymous] = ids.max(initial=-1) + 1 + np.arange(int(anonymous.sum()))
    return sp.csr_matrix(
        (np.ones(ids.size, dtype=np.int32), (ids, np.arange(ids.size))), shape=(int(ids.max(initial=-1)) + 1, ids.size)
    )


def customer_products(baskets: Baskets) -> sp.csr_matrix:
    """Customers x products, 1 where the customer bought the product (in any basket)."""
    return ((customer_owners(baskets) @ baskets.matrix.astype(np.int32)) > 0).astype(np.int32).tocsr()


def shared_rows(columns: sp.csc_matrix, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """For each pair, the rows (baskets or customers) holding both ``a`` and ``c``."""
    shared = np.zeros(a.size, dtype=np.int64)
    for start in range(0, a.size, PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        shared[part] = np.asarray(columns[:, a[part]].multiply(columns[:, c[part]]).sum(axis=0)).ravel()
    return shared


def pair_customers(baskets: Baskets, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """For each pair, the distinct customers with a basket holding both ``a`` and ``c``.

    A pair bought together in twelve orders of one customer is that customer's
    habit: it counts once here.
    """
    owners = customer_owners(baskets)
    columns = baskets.matrix.astype(np.int32).tocsc()
    customers = np.zeros(a.size, dtype=np.int64)
    for start in range(0, a.size, PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        both = columns[:, a[part]].multiply(columns[:, c[part]])
        customers[part] = np.asarray(((owners @ both) > 0).sum(axis=0)).ravel()
    return customers
