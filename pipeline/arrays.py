"""Small vectorised helpers shared by the stages."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
