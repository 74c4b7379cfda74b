"""The cases ``basket evaluate`` replays: carts, product page views and follow-up e-mails of test orders.

Each case holds products in hand (a cart, the viewed product, an order just
bought) and targets: the products that count as hits (the held-out product,
the rest of the order, the customer's next order), in the training period's
product codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.arrays import ragged_arange
from pipeline.local.baskets import Baskets, baskets_from_lines
from pipeline.local.postpurchase import transitions


@dataclass(frozen=True)
class Carts:
    """The replayed cases: case ``i`` comes from test order ``order[i]``.

    ``case``/``item`` list each case's products in hand (the cart, or the
    order just bought), ``target_case``/``target`` the products that count as
    hits (the held-out product, or the customer's next order), in training
    codes (``-1`` for a product never sold in training); ``target_price`` is
    each target's price; ``customer`` each case's customer id (None: unknown);
    ``segment`` each case's order's segment (None or null: none known).
    """

    order: np.ndarray
    case: np.ndarray
    item: np.ndarray
    target_case: np.ndarray
    target: np.ndarray
    target_price: np.ndarray
    customer: np.ndarray | None = None
    segment: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.order.size)

    def chunks(self, size: int) -> Iterator[tuple[int, Carts]]:
        """About ``size`` consecutive cases at a time, never splitting an order: (first case, chunk).

        A chunk's cases are numbered from 0; its first case is case ``start`` of the whole.
        """
        breaks = np.flatnonzero(np.diff(self.order) != 0) + 1
        start, n = 0, len(self)
        while start < n:
            stop = start + size
            if stop < n:
                after = breaks[breaks >= stop]
                stop = int(after[0]) if after.size else n
            stop = min(stop, n)
            yield start, self._slice(start, stop)
            start = stop

    def subset(self, kept: np.ndarray) -> Carts:
        """The cases where ``kept`` (a flag per case) is set, numbered from 0 in their order."""
        number = np.cumsum(kept) - 1
        inside, targets = kept[self.case], kept[self.target_case]
        return Carts(
            order=self.order[kept],
            case=number[self.case[inside]],
            item=self.item[inside],
            target_case=number[self.target_case[targets]],
            target=self.target[targets],
            target_price=self.target_price[targets],
            customer=None if self.customer is None else self.customer[kept],
            segment=None if self.segment is None else self.segment[kept],
        )

    def _slice(self, start: int, stop: int) -> Carts:
        low, high = np.searchsorted(self.case, [start, stop])
        first, last = np.searchsorted(self.target_case, [start, stop])
        return Carts(
            order=self.order[start:stop],
            case=self.case[low:high] - start,
            item=self.item[low:high],
            target_case=self.target_case[first:last] - start,
            target=self.target[first:last],
            target_price=self.target_price[first:last],
            customer=None if self.customer is None else self.customer[start:stop],
            segment=None if self.segment is None else self.segment[start:stop],
        )


def cart_cases(
    test_lines: pd.DataFrame, train: Baskets, catalog: pd.DataFrame | None, max_orders: int | None
) -> tuple[Carts, Carts]:
    """Every (test order, held-out product) case with the rest of the order as the cart; and the same
    cases seen from the product page: the held-out product viewed, the rest of its order the targets
    (the two share their arrays)."""
    test = baskets_from_lines(test_lines)
    matrix = test.matrix.tocsr()
    sizes = np.diff(matrix.indptr)
    orders = np.flatnonzero(sizes >= 2)
    if max_orders is not None and orders.size > max_orders:
        # A systematic sample over order ids: deterministic, spread over the period.
        orders = orders[np.linspace(0, orders.size - 1, max_orders).astype(np.int64)]
    to_train = pd.Index(train.items).get_indexer(test.items)
    # Cases: every product of every replayed order.
    case_order = np.repeat(orders, sizes[orders])
    target = matrix.indices[np.repeat(matrix.indptr[orders], sizes[orders]) + ragged_arange(sizes[orders])]
    # Cart members: the other products of the case's order.
    per_case = sizes[case_order]
    case = np.repeat(np.arange(case_order.size), per_case)
    item = matrix.indices[np.repeat(matrix.indptr[case_order], per_case) + ragged_arange(per_case)]
    keep = item != target[case]
    prices = unit_prices(test_lines, test, catalog)
    carts = Carts(
        order=case_order,
        case=case[keep],
        item=to_train[item[keep]],
        target_case=np.arange(case_order.size),
        target=to_train[target],
        target_price=prices[target],
        customer=test.order_info["customer_id"].astype(object).to_numpy()[case_order],
        segment=test.order_info["segment"].astype(object).to_numpy()[case_order],
    )
    pages = replace(
        carts,
        case=carts.target_case,
        item=carts.target,
        target_case=carts.case,
        target=carts.item,
        target_price=prices[item[keep]],
    )
    return carts, pages


def next_order_cases(
    test_lines: pd.DataFrame, train: Baskets, catalog: pd.DataFrame | None, max_days: int, max_orders: int | None
) -> Carts:
    """Every test order followed by the same customer's next order within ``max_days``:
    the first order is in hand, the products of the next one are the targets."""
    test = baskets_from_lines(test_lines)
    first, second = transitions(test, max_days)
    if max_orders is not None and first.size > max_orders:
        pick = np.linspace(0, first.size - 1, max_orders).astype(np.int64)
        first, second = first[pick], second[pick]
    matrix = test.matrix.tocsr()
    sizes = np.diff(matrix.indptr)
    to_train = pd.Index(train.items).get_indexer(test.items)
    prices = unit_prices(test_lines, test, catalog)

    def members(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        case = np.repeat(np.arange(rows.size), sizes[rows])
        return case, matrix.indices[np.repeat(matrix.indptr[rows], sizes[rows]) + ragged_arange(sizes[rows])]

    case, item = members(first)
    target_case, target = members(second)
    return Carts(
        order=first,
        case=case,
        item=to_train[item],
        target_case=target_case,
        target=to_train[target],
        target_price=prices[target],
        customer=test.order_info["customer_id"].astype(object).to_numpy()[first],
    )


def unit_prices(lines: pd.DataFrame, baskets: Baskets, catalog: pd.DataFrame | None) -> np.ndarray:
    """Each product's price: the catalog's, else its median unit price in these lines."""
    paid = lines.groupby(lines["product_id"].astype(str))["unit_price"].median()
    price = paid.reindex(baskets.items).to_numpy(dtype=np.float64)
    if catalog is not None:
        listed = catalog.set_index("product_id")["price"].reindex(baskets.items).to_numpy(dtype=np.float64)
        price = np.where(np.isnan(listed), price, listed)
    return price
