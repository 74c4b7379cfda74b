"""Orders in, post-purchase rules out: what a customer buys in their next order.

The follow-up e-mail a week after a purchase needs a different rule than the
cart: not "bought together" but "bought next". Each customer's orders are put
in time order; every pair of consecutive orders at most
``post_purchase.max_days`` apart is a *transition*. A rule ``a -> c`` counts
the transitions whose first order holds ``a`` and whose second holds ``c``:

- ``n`` = transitions, ``n(A)`` = transitions whose first order holds ``a``,
  ``n(C)`` = transitions whose second order holds ``c``, ``n(AC)`` = both;
- support, confidence, lift and the other measures follow from these four
  counts exactly as for basket rules (:mod:`pipeline.policy.measures`).

The threshold is ``mine.min_support`` (or ``mine.min_count``) of the
transitions; confidence must reach ``post_purchase.min_confidence`` (next-order
probabilities are lower than same-basket ones) and lift exceed
``rules.min_lift``. A product re-bought (``a -> a``) is replenishment, not a
cross-sell, and is left out. Counting is one sparse matrix product, products
x products, over the transitions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.local.baskets import Baskets
from pipeline.local.itemsets import Itemsets, in_column_blocks, min_count_for, row_block
from pipeline.policy.measures import interest_measures
from pipeline.policy.rules import post_purchase_kept

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostPurchaseRules:
    """Rules in the layout of :func:`pipeline.local.rules.association_rules`.

    ``antecedents`` holds one single-product itemset per product (row = code),
    counted over the transitions, so the rules rank and label like basket rules.
    """

    antecedents: Itemsets
    rules: pd.DataFrame


def post_purchase_rules(baskets: Baskets, config: Config) -> PostPurchaseRules | None:
    """Rules from each order to the same customer's next order, or None without customers and timestamps."""
    first, second = transitions(baskets, config.post_purchase.max_days)
    n = first.size
    if n == 0:
        log.info("post-purchase: no consecutive orders of a customer within %d days", config.post_purchase.max_days)
        return None
    before = baskets.matrix[first].astype(np.int32)
    after = baskets.matrix[second].astype(np.int32)
    antecedent_count = np.asarray(before.sum(axis=0)).ravel().astype(np.int64)
    consequent_count = np.asarray(after.sum(axis=0)).ravel().astype(np.int64)
    min_count = min_count_for(config.mine, n)
    sources = np.flatnonzero(antecedent_count >= min_count)
    targets = np.flatnonzero(consequent_count >= min_count)
    leading = before[:, sources].T.tocsr()
    following = after[:, targets].tocsr()

    def block_pairs(start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pairs of the sources ``start:end`` and any target in at least ``min_count`` transitions."""
        block = (row_block(leading, start, end) @ following).tocoo()
        a, c, pair = sources[block.row + start], targets[block.col], block.data.astype(np.int64)
        keep = (pair >= min_count) & (a != c)
        return a[keep], c[keep], pair[keep]

    blocks = in_column_blocks(sources.size, block_pairs)
    none = np.empty(0, np.int64)
    a, c, pair = (np.concatenate([none, *(block[part] for block in blocks)]) for part in range(3))
    measures = interest_measures(n, antecedent_count[a], consequent_count[c], pair)
    keep = post_purchase_kept(measures["confidence"], measures["lift"], config)
    order = np.lexsort([c[keep], a[keep]])
    rules = pd.DataFrame(
        {
            "antecedent": a[keep][order],
            "consequent": c[keep][order],
            "antecedent_count": antecedent_count[a[keep][order]],
            "consequent_count": consequent_count[c[keep][order]],
            "pair_count": pair[keep][order],
            **{name: values[keep][order] for name, values in measures.items()},
        }
    )
    rules["consequent_support"] = rules["consequent_count"] / n
    rules["p_value"] = rules["p_value_adjusted"] = np.nan
    log.info(
        "post-purchase: %d rules from %d transitions (next order within %d days), min count %d",
        len(rules),
        n,
        config.post_purchase.max_days,
        min_count,
    )
    products = len(baskets.items)
    singles = Itemsets(
        codes=np.arange(products, dtype=np.int32)[:, None],
        length=np.ones(products, dtype=np.int32),
        count=antecedent_count,
        baskets=n,
        min_count=min_count,
    )
    return PostPurchaseRules(singles, rules)


def transitions(baskets: Baskets, max_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Basket rows of each (order, same customer's next order within ``max_days``) pair."""
    info = baskets.order_info
    known = (info["customer_id"].notna() & info["timestamp"].notna()).to_numpy()
    if not known.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows = np.flatnonzero(known)
    customer = pd.factorize(info["customer_id"].to_numpy()[rows])[0]
    when = pd.to_datetime(info["timestamp"].to_numpy()[rows]).to_numpy()
    order = np.lexsort([rows, when, customer])
    rows, customer, when = rows[order], customer[order], when[order]
    gap = when[1:] - when[:-1]
    follows = (customer[1:] == customer[:-1]) & (gap <= np.timedelta64(max_days, "D"))
    return rows[:-1][follows], rows[1:][follows]
