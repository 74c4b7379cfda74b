"""The item model behind the offers' order: EASE weights over the whole co-occurrence matrix.

A rule sees two products at a time; a shopper's cart holds many. EASE
(Steck, "Embarrassingly Shallow Autoencoders", WWW 2019) learns one weight
per ordered pair of products from every product's co-occurrence with every
other at once: the ridge regression of each product's column of the basket
matrix ``X`` on all the other columns, in closed form from the Gram matrix
``G = X'X``::

    P = (G + l2 * I)^-1        W[i, j] = -P[i, j] / P[j, j]   (W[j, j] = 0)

``W[i, j]`` is how much having ``i`` in the basket predicts ``j`` when the
rest of the basket is accounted for: a product bought next to ``j`` only
because both come with a third one gets little or negative weight, so the
cart is scored as a whole (:meth:`ItemModel.cart_weights`). Measured on the
full Online Retail export (``docs/evaluation.md``), it ranks the rules'
candidates better than any single-rule measure.

The rules stay what is published and explained: the model only orders the
offers the rules allow (``rank.by = "model_margin"``: weight x
margin^``rank.margin_power``), and a rule's weight is the sum of its
antecedent's weights towards its consequent.

Memory: the dense inverse covers the ``model.max_items`` products in the
most baskets (``G`` and its inverse, which becomes the weights in place,
and blocks of rows to pick the strongest from: about ``16 x max_items^2``
bytes and 0.1 GB, 0.5 GB at 5,000; ``memory_budget`` counts them). Beyond
them (Instacart's 50,000 products) a product has no weight: its offers rank
after the weighted ones of their page by their rule measures. Each product
keeps its ``model.neighbours`` strongest weights (by absolute value),
published in ``neighbours.parquet`` for the storefront's cart block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.linalg import lapack

from pipeline.arrays import positions, ragged_arange
from pipeline.config import ModelConfig
from pipeline.contract.vocabulary import KEY_SEPARATOR
from pipeline.policy.measures import jaccard

#: A Gram matrix (baskets holding both products) and the product ids of its rows and columns.
Gram = tuple[np.ndarray, np.ndarray]

#: Cells of one dense block of summed cart weights (carts x model products, 8 bytes each): 128 MB.
DENSE_BLOCK_CELLS = 1 << 24
#: Cells of one block of rows whose strongest weights are picked (:meth:`ItemModel.strongest`): three
#: arrays of 8 bytes a cell, 100 MB.
STRONGEST_BLOCK_CELLS = 1 << 22
#: Decimals of a weight's strength that rank a product's neighbours: beyond them, rounding noise.
STRENGTH_DECIMALS = 12


def model_products(products: np.ndarray, baskets: np.ndarray, config: ModelConfig) -> np.ndarray:
    """The positions of the products the model covers: the ``max_items`` in the most baskets.

    Ties go to the smaller product id, so every engine picks the same products
    in the same order (the order of the Gram matrix's rows).
    """
    sold = np.flatnonzero(np.asarray(baskets) > 0)
    order = np.lexsort([np.asarray(products, dtype=object)[sold].astype(str), -np.asarray(baskets)[sold]])
    return sold[order[: config.max_items]]


def ease_weights(gram: np.ndarray, l2: float, popularity_power: float = 0.0, overwrite: bool = False) -> np.ndarray:
    """EASE's weight matrix of a Gram matrix (products in its row order), zero on the diagonal.

    With ``popularity_power`` (beta) the regression runs on the basket matrix
    whose column ``j`` is scaled by ``n_j ** -beta`` (``n_j = G[j, j]``, the
    product's basket count): ``G[i, j] / (n_i n_j) ** beta``. The weights are
    used as they come out, item to item: a co-occurrence with a best-seller
    explains less, so a cart's weights favour the products specifically bought
    with it over those bought with everything.

    With ``overwrite`` a float64 ``gram`` is regularised in place (its values
    are lost) instead of in a copy; LAPACK factors and inverts a copy of its
    own either way, which becomes the weights in place.
    """
    owned = overwrite and gram.dtype == np.float64 and gram.flags.c_contiguous and gram.flags.writeable
    regularised = gram if owned else np.array(gram, dtype=np.float64)
    if popularity_power:
        scale = np.power(np.maximum(np.diag(regularised), 1.0), -popularity_power)
        regularised *= scale[:, None]
        regularised *= scale[None, :]
    regularised[np.diag_indices_from(regularised)] += l2
    weights = symmetric_inverse(regularised)
    weights /= -np.diag(weights).copy()[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def symmetric_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix (a Gram matrix plus a ridge), overwriting it.

    From its Cholesky factor (LAPACK ``potrf`` and ``potri``): 2.5 s against a
    general inverse's 4.0 s at 5,000 products, the same values to rounding.
    """
    factor, info = lapack.dpotrf(matrix, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"the regularised Gram matrix is not positive definite (LAPACK info {info})")
    # potri fills the upper triangle only: mirrored a block of rows at a time, in place.
    for start in range(0, len(inverse), 512):
        rows = slice(start, start + 512)
        inverse[rows, :start] = inverse[:start, rows].T
        corner = np.triu(inverse[rows, rows])
        inverse[rows, rows] = corner + np.triu(corner, 1).T
    return inverse


def _strength(weights: np.ndarray) -> np.ndarray:
    """What ranks a product's neighbours, strongest first: minus the weight's absolute value, to
    :data:`STRENGTH_DECIMALS` decimals. Weights equal in exact arithmetic (products always bought
    together) differ in their last bits by how the inverse rounded: they tie, and go by product."""
    strength = np.abs(weights)
    np.round(strength, STRENGTH_DECIMALS, out=strength)
    return np.negative(strength, out=strength)


def cosine_weights(gram: np.ndarray) -> np.ndarray:
    """Item-kNN's similarity of a Gram matrix: ``G[i, j] / sqrt(n_i n_j)``, zero on the diagonal."""
    counts = np.sqrt(np.maximum(np.diag(gram).astype(np.float64), 1.0))
    weights = np.array(gram, dtype=np.float64)
    weights /= counts[:, None]
    weights /= counts[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def jaccard_weights(gram: np.ndarray) -> np.ndarray:
    """SAR's item similarity of a Gram matrix: ``G[i, j] / (n_i + n_j - G[i, j])``, zero on the diagonal."""
    counts = np.diag(gram).astype(np.float64)
    weights = jaccard(counts[:, None], counts[None, :], gram)
    np.fill_diagonal(weights, 0.0)
    return weights


@dataclass(frozen=True)
class ItemModel:
    """Each model product's strongest weights: ``weights[i, j]`` from ``products[i]`` to ``products[j]``.

    ``products`` are sorted, so the published table and every lookup agree on the positions.
    """

    products: pd.Index
    weights: sp.csr_matrix

    def __post_init__(self) -> None:
        # Canonical form (sorted column indices, no duplicates): what the binary search of _entries needs.
        self.weights.sum_duplicates()

    @classmethod
    def fit(cls, gram: np.ndarray, products: np.ndarray, config: ModelConfig, overwrite: bool = False) -> ItemModel:
        """The model of a Gram matrix whose rows and columns are ``products``; with ``overwrite``, ``gram``
        serves as working memory (a float64 matrix the caller no longer needs: its values are lost)."""
        weights = ease_weights(gram, config.l2, config.popularity_power, overwrite)
        return cls.strongest(weights, products, config.neighbours)

    @classmethod
    def strongest(cls, dense: np.ndarray, products: np.ndarray, neighbours: int) -> ItemModel:
        """The model keeping each row's ``neighbours`` strongest weights (by absolute value) of ``dense``.

        Rows and columns are taken in product-id order, :data:`STRONGEST_BLOCK_CELLS` cells of rows at
        a time: each row's choice depends on that row alone, so blocks give what the whole matrix
        would, without three more matrices of its size (reordered, strengths, partition).
        """
        n = len(products)
        keep = min(neighbours, max(n - 1, 0))
        order = np.argsort(np.asarray(products, dtype=object).astype(str), kind="stable")
        ordered = pd.Index(np.asarray(products, dtype=object)[order])
        if keep == 0:
            return cls(ordered, sp.csr_matrix((n, n)))
        cols = np.empty((n, keep), dtype=np.int64)
        values = np.empty((n, keep), dtype=np.float64)
        step = max(1, STRONGEST_BLOCK_CELLS // n)
        for start in range(0, n, step):
            block = dense[order[start : start + step]][:, order]
            # The strongest weights of each row: a partial sort, then the kept ones by strength and column.
            strength = _strength(block)
            strongest = np.argpartition(strength, keep - 1, axis=1)[:, :keep]
            strongest.sort(axis=1)
            order_in_row = np.argsort(np.take_along_axis(strength, strongest, axis=1), axis=1, kind="stable")
            strongest = np.take_along_axis(strongest, order_in_row, axis=1)
            cols[start : start + step] = strongest
            values[start : start + step] = np.take_along_axis(block, strongest, axis=1)
        rows = np.repeat(np.arange(n), keep)
        nonzero = values.ravel() != 0
        weights = sp.csr_matrix((values.ravel()[nonzero], (rows[nonzero], cols.ravel()[nonzero])), shape=(n, n))
        return cls(ordered, weights)

    @classmethod
    def from_table(cls, rows: Any) -> ItemModel:
        """The model of published ``neighbours.parquet`` rows (one segment's, or a cart's products' part):
        an Arrow table or a pandas frame with the columns ``product_id``, ``neighbour`` and ``weight``."""
        product, neighbour, weight = (np.asarray(rows[c]) for c in ("product_id", "neighbour", "weight"))
        products = pd.Index(np.unique(np.concatenate([product, neighbour]).astype(str)).astype(object))
        n = len(products)
        matrix = sp.csr_matrix(
            (np.asarray(weight, dtype=np.float64), (products.get_indexer(product), products.get_indexer(neighbour))),
            shape=(n, n),
        )
        return cls(products, matrix)

    def table(self) -> pd.DataFrame:
        """The published rows: (product_id, neighbour, weight), by product, strongest first."""
        coo = self.weights.tocoo()
        frame = pd.DataFrame(
            {
                "product_id": self.products.to_numpy()[coo.row],
                "neighbour": self.products.to_numpy()[coo.col],
                "weight": coo.data,
                "_row": coo.row,
                "_strength": _strength(coo.data),
                "_col": coo.col,
            }
        )
        frame = frame.sort_values(["_row", "_strength", "_col"], kind="stable", ignore_index=True)
        return frame[["product_id", "neighbour", "weight"]]

    def rule_weights(self, antecedent_keys: np.ndarray, consequents: np.ndarray) -> np.ndarray:
        """Each rule's weight: the sum of its antecedent products' weights towards its consequent.

        NaN where the consequent, or every product of the antecedent, is outside the model.
        """
        keys = pd.Series(np.asarray(antecedent_keys, dtype=object)).str.split(KEY_SEPARATOR, regex=False)
        members = keys.explode()
        rule = members.index.to_numpy(dtype=np.int64)
        at = self._positions(members.to_numpy(dtype=object))
        offered = self._positions(consequents)
        known = at >= 0
        rule, at = rule[known], at[known]
        # An antecedent is a handful of products: one lookup per (rule, product) pair.
        inside = offered[rule] >= 0
        weight = _entries(self.weights, at[inside], offered[rule[inside]])
        summed = np.bincount(rule[inside], weights=weight, minlength=offered.size)
        scored = (offered >= 0) & (np.bincount(rule, minlength=offered.size) > 0)
        return np.where(scored, summed, np.nan)

    def cart_weights(
        self,
        case: np.ndarray,
        product: np.ndarray | pd.Categorical,
        offer_case: np.ndarray,
        offer: np.ndarray | pd.Categorical,
    ) -> np.ndarray:
        """Each offer's weight for its cart: the sum over the cart's products of their weights towards it.

        The cart of offer ``i`` holds ``product[case == offer_case[i]]`` (a product counted once); NaN
        where the offered product, or every product of the cart, is outside the model. Product ids
        come as arrays or, cheaper for many carts, as categoricals.
        """
        n = len(self.products)
        at = self._positions(product)
        known = at >= 0
        offer_case = np.asarray(offer_case, dtype=np.int64)
        offered = self._positions(offer)
        result = np.full(offered.size, np.nan)
        if n == 0 or offered.size == 0:
            return result
        # A cart holds tens of products and each offer is scored against all of them: one sparse
        # product (carts x products) @ weights over the carts that have an offer, then one lookup per offer.
        needed, row = np.unique(offer_case, return_inverse=True)
        index = np.searchsorted(needed, np.asarray(case, dtype=np.int64)[known])
        inside = (index < needed.size) & (needed[np.minimum(index, needed.size - 1)] == np.asarray(case)[known])
        cart_row, held = index[inside], at[known][inside]
        scored = np.flatnonzero((offered >= 0) & (np.bincount(cart_row, minlength=needed.size)[row] > 0))
        # Offers are looked up block by block of carts, in the order of their carts.
        scored = scored[np.argsort(row[scored], kind="stable")]
        for start, block, sums in self._cart_sums(cart_row, held, needed.size, np.float64):
            first, last = np.searchsorted(row[scored], [start, start + block.shape[0]])
            pick = scored[first:last]
            result[pick] = sums[row[pick] - start, offered[pick]]
        return result

    def cart_top(self, case: np.ndarray, product: np.ndarray | pd.Categorical, k: int) -> pd.DataFrame:
        """Each cart's ``k`` products of highest positive summed weight, over every product of the model
        and none of the cart: the model alone, without rules (``basket evaluate``'s reference).

        The cart of case ``c`` holds ``product[case == c]``. Returns (case, product_id, position).
        """
        at = self._positions(product)
        known = at >= 0
        case = np.asarray(case, dtype=np.int64)[known]
        cases = int(case.max(initial=-1)) + 1
        found: list[pd.DataFrame] = []
        depth = min(k, len(self.products))
        # Every product ranked for every cart: single precision halves the dense blocks.
        for start, block, sums in self._cart_sums(case, at[known], cases if depth else 0, np.float32):
            sums[block.nonzero()] = -np.inf  # never the cart's own products
            # Every product scoring at least each cart's k-th best (a partition alone would pick among
            # ties at the k-th place at random), then best first, ties to the product that sorts first.
            np.negative(sums, out=sums)  # in place: the smallest first, without a copy of the block
            kth = -np.partition(sums, depth - 1, axis=1)[:, depth - 1]
            np.negative(sums, out=sums)
            floor = np.maximum(kth, np.finfo(sums.dtype).tiny)  # positive sums only
            row, column = np.nonzero(sums >= floor[:, None])
            score = sums[row, column]
            order = np.lexsort((column, -score, row))
            row, column = row[order], column[order]
            position = ragged_arange(np.bincount(row, minlength=block.shape[0])) + 1
            kept = position <= depth
            found.append(
                pd.DataFrame(
                    {
                        "case": row[kept] + start,
                        "product_id": self.products.to_numpy()[column[kept]],
                        "position": position[kept],
                    }
                )
            )
        if not found:
            return pd.DataFrame({"case": [], "product_id": [], "position": []})
        return pd.concat(found, ignore_index=True)

    def _cart_sums(
        self, cart: np.ndarray, held: np.ndarray, carts: int, dtype: type[np.floating[Any]]
    ) -> Iterator[tuple[int, sp.csr_matrix, np.ndarray]]:
        """Each cart's summed weights towards every model product, as dense blocks of carts: (first cart,
        the block's carts x products indicator, the sums). Cart ``cart[i]`` holds the product at row
        ``held[i]``, counted once however often listed. Dense, because sorting the indices of the sparse
        product took longer than the arithmetic; :data:`DENSE_BLOCK_CELLS` bounds each block."""
        n = len(self.products)
        indicator = sp.csr_matrix((np.ones(cart.size, dtype=dtype), (cart, held)), shape=(carts, n))
        indicator.sum_duplicates()
        indicator.data[:] = 1
        weights = self.weights.astype(dtype, copy=False)
        step = max(1, DENSE_BLOCK_CELLS // max(n, 1))
        for start in range(0, carts, step):
            block = indicator[start : start + step]
            yield start, block, (block @ weights).toarray()

    def _positions(self, products: np.ndarray | pd.Categorical) -> np.ndarray:
        """Each product's row in the model, -1 outside it."""
        return positions(self.products, products)


def _entries(matrix: sp.csr_matrix, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """``matrix[row, col]`` for each pair (0 where not stored), by binary search in a canonical CSR matrix."""
    width = matrix.shape[1]
    keys = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr)) * width + matrix.indices
    wanted = np.asarray(row, dtype=np.int64) * width + np.asarray(col, dtype=np.int64)
    if keys.size == 0:
        return np.zeros(wanted.size)
    position = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    return np.where(keys[position] == wanted, matrix.data[position], 0.0)
