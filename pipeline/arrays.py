"""Small vectorised helpers shared by the stages."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Bits of one sortable integer key (int64, its sign bit left alone): several keys are packed into one,
#: and sorted in one pass, where they fit; otherwise sorted as they are (tests set 0 to take that path).
KEY_BITS = 63


def ragged_arange(sizes: np.ndarray) -> np.ndarray:
    """0..n-1 for each n in ``sizes``, concatenated: positions inside variable-length groups.

    ``ragged_arange([2, 0, 3])`` is ``[0, 1, 0, 1, 2]``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def positions(index: pd.Index, products: np.ndarray | pd.Categorical) -> np.ndarray:
    """Each product id's position in ``index`` (-1 outside it), ids compared as text.

    A categorical (``basket evaluate``'s many carts) has its categories looked up once, then its codes mapped.
    """
    if isinstance(products, pd.Categorical):
        at = positions(index, np.asarray(products.categories, dtype=object))
        return np.where(products.codes >= 0, at[products.codes], -1)
    return index.get_indexer(pd.Index(np.asarray(products, dtype=object).astype(str)))


def lexicographic_order(keys: list[np.ndarray]) -> np.ndarray:
    """The stable order of rows by ``keys[0]``, ties by ``keys[1]``, and so on; NaN last in each key.

    numpy's ``lexsort`` takes one stable pass per key; here only the first two
    keys are sorted over every row, the others over the rows those two leave
    tied (few, where the second key is a float score): the cart block's sort of
    millions of offers by six keys, several times cheaper than pandas'.
    """
    if _ascending(keys):
        return np.arange(keys[0].size)
    order = np.lexsort(keys[:2][::-1])
    if len(keys) <= 2 or order.size < 2:
        return order
    tied_next = np.ones(order.size - 1, dtype=bool)
    for key in keys[:2]:
        ranked = key[order]
        tied_next &= _same(ranked[1:], ranked[:-1])
    tied = np.zeros(order.size, dtype=bool)
    tied[1:] = tied_next
    tied[:-1] |= tied_next
    at = np.flatnonzero(tied)
    if at.size:
        # The tied rows keep their places among the others: the first two keys order those places already.
        rows = order[at]
        order[at] = rows[np.lexsort([key[rows] for key in keys[::-1]])]
    return order


def _ascending(keys: list[np.ndarray]) -> bool:
    """Whether the rows are in order already (one pass over adjacent rows: far cheaper than a sort)."""
    undecided = np.ones(max(keys[0].size - 1, 0), dtype=bool)
    for key in keys:
        after, before = key[1:], key[:-1]
        backwards = after < before
        if key.dtype.kind == "f":
            backwards |= np.isnan(before) & ~np.isnan(after)  # NaN sorts last
        if (undecided & backwards).any():
            return False
        undecided &= _same(after, before)
        if not undecided.any():
            return True
    return True


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality, NaN equal to NaN."""
    same = a == b
    if a.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    return same
