"""How ``basket evaluate`` measures a strategy: its offers replayed over the cases, metrics at each k."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline.flow.cases import Carts
from pipeline.local.baskets import Baskets

#: Cases replayed at a time: bounds the memory of the candidate offers (best sellers list k + cart size each).
CHUNK_CASES = 5_000
#: A strategy: the cases in, its offers out (columns case, code, position; at most the largest k per case).
Strategy = Callable[[Carts], pd.DataFrame]


class Replay:
    """Replays a strategy over every case, a chunk of cases at a time, and measures it at each k.

    Offers are made once at the largest k; a case's hit at ``k`` is an offer of
    one of its targets among its first ``k``. Chunks bound the memory: a chunk's
    candidate offers never exceed :data:`CHUNK_CASES` cases' worth.
    """

    def __init__(self, train: Baskets, catalog: pd.DataFrame | None, ks: tuple[int, ...], bootstrap: int) -> None:
        self.ks = ks
        self.margin = _margins(train, catalog)
        self.products = len(catalog) if catalog is not None else len(train.items)
        # A catalog without prices or costs knows no margin: unknown, not zero.
        self.has_margins = bool(np.isfinite(self.margin).any())
        self.bootstrap = bootstrap

    def rows(self, name: str, placement: str, strategy: Strategy, carts: Carts) -> pd.DataFrame:
        """One row of metrics per k for ``strategy`` on ``carts``."""
        n, ks = len(carts), np.asarray(self.ks)
        first_hit = np.full(n, np.iinfo(np.int64).max)
        offers = np.zeros(n, dtype=np.int64)
        hits, value, margin = (np.zeros((n, ks.size)) for _ in range(3))
        offered = np.zeros((ks.size, self.margin.size), dtype=bool)
        for start, part in carts.chunks(CHUNK_CASES):
            shown = strategy(part)
            case, code, position = (shown[c].to_numpy(dtype=np.int64) for c in ("case", "code", "position"))
            offers += np.bincount(case + start, minlength=n)
            targets = pd.DataFrame({"case": part.target_case, "code": part.target, "price": part.target_price})
            # A target counts once, however often the order held it.
            targets = targets.drop_duplicates(["case", "code"])
            hit = shown[["case", "code", "position"]].merge(targets, on=["case", "code"])
            hit_case = hit["case"].to_numpy(dtype=np.int64) + start
            hit_position = hit["position"].to_numpy(dtype=np.int64)
            np.minimum.at(first_hit, hit_case, hit_position)
            hit_price = np.nan_to_num(hit["price"].to_numpy(dtype=np.float64))
            hit_margin = np.nan_to_num(self.margin[hit["code"].to_numpy(dtype=np.int64)])
            for j, k in enumerate(ks):
                within = hit_position <= k
                np.add.at(hits[:, j], hit_case[within], 1)
                np.add.at(value[:, j], hit_case[within], hit_price[within])
                np.add.at(margin[:, j], hit_case[within], hit_margin[within])
                offered[j, code[(position <= k) & (code >= 0)]] = True
        order = pd.factorize(carts.order)[0]
        orders = int(order.max(initial=-1)) + 1
        # Without any price (an export with no unit_price and no catalog) there is no value to attach.
        priced = bool(np.isfinite(carts.target_price).any())
        size = max(n, 1)
        rows = []
        for j, k in enumerate(ks):
            hit = first_hit <= k
            low, high = self._interval(hit, order, orders)
            rows.append(
                {
                    "strategy": name,
                    "placement": placement,
                    "k": int(k),
                    "carts": n,
                    "orders": orders,
                    "hit_rate": hit.sum() / size,
                    "hit_rate_low": low,
                    "hit_rate_high": high,
                    "order_hit_rate": _per_order(hit, order, orders),
                    "precision": hits[:, j].sum() / (k * size),
                    "carts_with_offer": (offers > 0).sum() / size,
                    "orders_with_offer": _per_order_any(offers > 0, order, orders),
                    "coverage": offered[j].sum() / max(self.products, 1),
                    "offers_per_cart": np.minimum(offers, k).sum() / size,
                    "attach_value": value[:, j].sum() / size if priced else np.nan,
                    "attach_margin": margin[:, j].sum() / size if self.has_margins else np.nan,
                }
            )
        return pd.DataFrame(rows)

    def _interval(self, hit: np.ndarray, order: np.ndarray, orders: int) -> tuple[float, float]:
        """A 95% bootstrap interval of the hit rate, resampling whole orders (their carts are not independent)."""
        if self.bootstrap == 0 or orders == 0:
            return np.nan, np.nan
        hits = np.bincount(order, weights=hit, minlength=orders)
        cases = np.bincount(order, minlength=orders).astype(np.float64)
        picks = np.random.default_rng(0).integers(0, orders, size=(self.bootstrap, orders))
        rates = hits[picks].sum(axis=1) / np.maximum(cases[picks].sum(axis=1), 1)
        low, high = np.percentile(rates, [2.5, 97.5])
        return float(low), float(high)


def _per_order(hit: np.ndarray, order: np.ndarray, orders: int) -> float:
    """The hit rate of each order's carts, averaged over orders: a large order counts as much as a small one."""
    if orders == 0:
        return 0.0
    cases = np.bincount(order, minlength=orders)
    return float(np.mean(np.bincount(order, weights=hit, minlength=orders) / np.maximum(cases, 1)))


def _per_order_any(flag: np.ndarray, order: np.ndarray, orders: int) -> float:
    """The share of orders with the flag on any of their carts."""
    if orders == 0:
        return 0.0
    return float(np.mean(np.bincount(order, weights=flag, minlength=orders) > 0))


def _margins(train: Baskets, catalog: pd.DataFrame | None) -> np.ndarray:
    """Catalog unit margin per training product code (NaN where unknown)."""
    if catalog is None:
        return np.full(len(train.items), np.nan)
    return catalog.set_index("product_id")["margin"].reindex(train.items).to_numpy(dtype=np.float64)
