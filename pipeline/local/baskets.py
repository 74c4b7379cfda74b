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

from pipeline.arrays import ragged_arange
from pipeline.policy.names import most_frequent_names

log = logging.getLogger(__name__)


#: Lines read at a time for each order's first line.
FIRST_LINE_BLOCK = 1 << 22
#: Order-level columns kept beside the matrix, from each order's first line.
ORDER_COLUMNS = ("customer_id", "timestamp", "segment")
#: The line columns the baskets are built from: quantities and prices are not read past cleaning.
BASKET_COLUMNS = ("order_id", "product_id", "product_name", *ORDER_COLUMNS)


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
    #: Product id -> its name as the export's lines describe it (:func:`export_names`); None when no line
    #: has one (no ``product_name`` column).
    names: pd.Series | None = None

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
            names=self.names,
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
    order_codes, orders = _sorted_codes(lines["order_id"])
    item_codes, items = _codes_in_text_order(lines["product_id"])
    data = np.ones(len(lines), dtype=bool)
    matrix = sp.csr_matrix((data, (order_codes, item_codes)), shape=(len(orders), len(items)), dtype=bool)
    matrix.sum_duplicates()
    first_line = _first_lines(order_codes, len(orders))
    baskets = Baskets(
        orders=orders,
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
        names=export_names(item_codes, items, lines["product_name"]) if "product_name" in lines else None,
    )
    log.info(
        "baskets: %d baskets of %d products from %d lines (%d repeated product lines merged)",
        baskets.count,
        len(items),
        len(lines),
        len(lines) - matrix.nnz,
    )
    return baskets


def export_names(item_codes: np.ndarray, items: np.ndarray, names: pd.Series) -> pd.Series | None:
    """Each product's name as its lines describe it (:func:`pipeline.policy.names.most_frequent_names`),
    by product id; None when no line has a name. ``names`` is aligned with ``item_codes``."""
    if isinstance(names.dtype, pd.CategoricalDtype):
        codes, distinct = names.cat.codes.to_numpy(), names.cat.categories
    else:
        codes, distinct = pd.factorize(names)
    named = codes >= 0
    if not named.any():
        return None
    keys, counts = np.unique(item_codes[named].astype(np.int64) * len(distinct) + codes[named], return_counts=True)
    text = np.asarray(pd.Index(distinct).astype(str), dtype=object)
    return most_frequent_names(items[keys // len(distinct)], text[keys % len(distinct)], counts)


def _codes_in_text_order(product_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Product codes and the product ids as text, codes numbered in text order.

    Integer ids are numbered by their text ("10" before "9"), so that sorted
    codes are always sorted ids, whatever type the export stored them as.
    """
    codes, uniques = _sorted_codes(product_ids)
    text = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    order = np.argsort(text, kind="stable")
    if (order == np.arange(order.size)).all():
        return codes, text  # text ids: sorted already
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[codes], text[order]


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each value's code and the distinct values, ascending (codes in their order).

    Ids read dictionary-encoded come with their categories in id order (cleaning
    sorts them): their 4-byte codes are renumbered over the categories in use,
    where factorising 30 million lines made 8-byte codes and a hash table.
    """
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.is_monotonic_increasing:
        codes = values.cat.codes.to_numpy()
        if codes.min(initial=0) >= 0:
            used = np.bincount(codes, minlength=len(values.cat.categories)) > 0
            renumbered = (np.cumsum(used) - 1).astype(codes.dtype)
            return renumbered[codes], np.asarray(values.cat.categories[used], dtype=object)
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques, dtype=object)


def _first_lines(codes: np.ndarray, count: int) -> np.ndarray:
    """The first line of each of ``count`` codes, a block of lines at a time (no index of every line)."""
    first = np.full(count, codes.size, dtype=np.int64)
    for start in range(0, codes.size, FIRST_LINE_BLOCK):
        block = codes[start : start + FIRST_LINE_BLOCK]
        np.minimum.at(first, block, np.arange(start, start + block.size))
    return first


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


#: Matrix entries examined at a time when counting the rows shared by pairs: about 40 bytes each.
SHARED_BLOCK = 8_000_000


def owner_codes(baskets: Baskets) -> np.ndarray:
    """Each basket's customer as a code; a basket without customer is its own customer."""
    customer = baskets.order_info["customer_id"]
    ids = pd.factorize(customer.astype(object).where(customer.notna(), None).to_numpy(), use_na_sentinel=True)[0]
    anonymous = ids < 0
    ids[anonymous] = ids.max(initial=-1) + 1 + np.arange(int(anonymous.sum()))
    return ids.astype(np.int64)


def customer_owners(baskets: Baskets) -> sp.csr_matrix:
    """Customers x baskets, 1 where the customer placed the basket; a basket without customer is its own."""
    ids = owner_codes(baskets)
    return sp.csr_matrix(
        (np.ones(ids.size, dtype=np.int32), (ids, np.arange(ids.size))), shape=(int(ids.max(initial=-1)) + 1, ids.size)
    )


def customer_products(baskets: Baskets) -> sp.csr_matrix:
    """Customers x products, 1 where the customer bought the product (in any basket)."""
    return ((customer_owners(baskets) @ baskets.matrix.astype(np.int32)) > 0).astype(np.int32).tocsr()


def shared_rows(
    matrix: sp.csr_matrix,
    a: np.ndarray,
    c: np.ndarray,
    groups: np.ndarray | None = None,
    together: np.ndarray | None = None,
) -> np.ndarray:
    """For each pair, the rows of ``matrix`` (baskets or customers) holding both ``a`` and ``c``.

    With ``groups`` (a code per row), the distinct groups of those rows instead.
    Exact, and bounded whatever the products' popularity: the rows holding
    each first product ``a`` are read once for all its pairs, in blocks of
    about :data:`SHARED_BLOCK` matrix entries; each entry is looked up among
    the pairs (a hash index of their keys) and the (pair, group) hits counted once.
    The work is the sum of the squared row sizes, not the pairs times the
    first products' popularity (a pair-by-pair column product ran out of
    memory, or crashed scipy, on a popular product's thousands of pairs).

    Only a group with several rows holding the same first product can count
    twice for a pair. With ``together`` (each pair's rows holding both, as the
    pair counting found them) only those rows are read, and each pair's groups
    are ``together`` less its repeats: a fraction of the work.
    """
    rows_of = matrix.tocsc()
    width = matrix.shape[1]
    # Each distinct pair once (a pair may be asked for twice).
    sorted_keys, asked = np.unique(a.astype(np.int64) * width + c.astype(np.int64), return_inverse=True)
    holding = np.diff(rows_of.indptr)
    # Entries read for a first product: the sizes of the rows holding it.
    per_entry = np.append(np.diff(matrix.indptr)[rows_of.indices], 0)
    cost = np.where(holding > 0, np.add.reduceat(per_entry, rows_of.indptr[:-1]), 0) if width else holding
    firsts = np.unique(a)
    span = int(groups.max(initial=0)) + 1 if groups is not None else matrix.shape[0]
    shared = np.zeros(sorted_keys.size, dtype=np.int64)
    lookup = pd.Index(sorted_keys)  # a hash table: one probe per entry, not a binary search
    block = np.cumsum(cost[firsts]) // SHARED_BLOCK
    for number in np.unique(block):
        part = firsts[block == number]
        sizes = holding[part]
        rows = rows_of.indices[np.repeat(rows_of.indptr[part], sizes) + ragged_arange(sizes)]
        first = np.repeat(part, sizes).astype(np.int64)
        if groups is None:
            shared += np.bincount(_pairs_held(matrix, rows, first, lookup)[0], minlength=sorted_keys.size)
            continue
        owner = groups[rows]
        first_owner = np.repeat(np.arange(part.size, dtype=np.int64), sizes) * span + owner
        _, row_key, rows_per_key = np.unique(first_owner, return_inverse=True, return_counts=True)
        again_row = rows_per_key[row_key] > 1
        if together is not None:
            rows, first, owner, again_row = rows[again_row], first[again_row], owner[again_row], again_row[again_row]
        pair, held_by = _pairs_held(matrix, rows, first, lookup)
        again = again_row[held_by]
        distinct, copies = np.unique(pair[again] * span + owner[held_by[again]], return_counts=True)
        if together is None:
            shared += np.bincount(pair[~again], minlength=sorted_keys.size)
            shared += np.bincount(distinct // span, minlength=sorted_keys.size)
        else:
            # Each (pair, group) met in n of the group's rows was counted n times in together: n - 1 too many.
            shared += np.bincount(distinct // span, weights=copies - 1, minlength=sorted_keys.size).astype(np.int64)
    if together is not None:
        return np.asarray(together, dtype=np.int64) - shared[asked]
    return shared[asked]


def _pairs_held(
    matrix: sp.csr_matrix, rows: np.ndarray, first: np.ndarray, lookup: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """The asked pairs (positions in ``lookup``) that row ``rows[i]`` holds with its first product
    ``first[i]``, and the ``i`` holding each."""
    sub = matrix[rows]
    entry = np.repeat(np.arange(rows.size), np.diff(sub.indptr))
    found = lookup.get_indexer(first[entry] * matrix.shape[1] + sub.indices)
    hit = found >= 0
    return found[hit].astype(np.int64), entry[hit]


def pair_customers(baskets: Baskets, a: np.ndarray, c: np.ndarray, together: np.ndarray | None = None) -> np.ndarray:
    """For each pair, the distinct customers with a basket holding both ``a`` and ``c``.

    A pair bought together in twelve orders of one customer is that customer's
    habit: it counts once here. ``together``: each pair's baskets holding both,
    when known (the rules' ``pair_count``), which spares reading most baskets.
    """
    return shared_rows(baskets.matrix.tocsr(), a, c, owner_codes(baskets), together)
