"""Baskets and catalog in, up-sell offers out, in this process: a better, pricier version of the viewed product.

What an up-sell is and how it ranks is :mod:`pipeline.policy.upsell`. Here
the candidate pairs come from each category's products sorted by price (a
binary search for the price band), shared customers and shared baskets from
sparse column products, a chunk of pairs at a time.

The customer test is the relevance test: a category is often too broad to
say two products are alternatives (an alarm clock and a doorstop can both be
"Home decor"), but customers who buy both, never together, treat them as
interchangeable choices. Without customer ids every basket is its own
customer, and no pair passes: no up-sell beats an irrelevant one. Published
with ``kind = "upsell"``, ``placement = "product"``; ``confidence`` holds the
evidence, ``support`` the share of baskets holding ``c``, ``lift`` is null and
``pair_count`` counts the baskets holding both (fewer than chance predicts).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.arrays import ragged_arange
from pipeline.config import Config, UpsellConfig
from pipeline.contract.schema import text_column
from pipeline.contract.vocabulary import PRODUCT, UPSELL
from pipeline.local.baskets import Baskets, customer_products, shared_rows
from pipeline.local.recommendations import rank_offers
from pipeline.policy.offers import UPSELL_ORDER
from pipeline.policy.upsell import (
    not_complement,
    price_band,
    same_type,
    shared_enough,
    upsell_candidates,
    upsell_scores,
)

log = logging.getLogger(__name__)


def upsell_offers(baskets: Baskets, catalog: pd.DataFrame | None, config: Config, segment: str) -> pd.DataFrame:
    """Ranked up-sell offers (all, not yet cut to ``top_k``), one row per (product, alternative)."""
    if catalog is None:
        catalog = pd.DataFrame(columns=["product_id", "name", "category", "price", "margin"])
    product = catalog.set_index("product_id").reindex(baskets.items)
    price = product["price"].to_numpy(dtype=np.float64)
    margin = product["margin"].to_numpy(dtype=np.float64)
    category = product["category"].astype(object).where(product["category"].notna(), None).to_numpy()
    known = np.flatnonzero(~np.isnan(price) & (price > 0) & ~np.isnan(margin) & pd.notna(category))
    group_of = np.full(len(baskets.items), -1, dtype=np.int64)
    group_of[known] = pd.factorize(category[known])[0]
    a, c = _in_price_band(known, group_of, price, config.upsell)
    names = product["name"].to_numpy(dtype=object)
    groups = (
        product["variant_group"].to_numpy(dtype=object)
        if "variant_group" in product
        else np.full(len(baskets.items), None, dtype=object)
    )
    alike = same_type(baskets.items[a], names[a], groups[a], baskets.items[c], names[c], groups[c])
    a, c = a[alike], c[alike]
    shared = together = np.empty(0, dtype=np.int64)
    buyers = np.zeros(len(baskets.items), dtype=np.int64)
    if a.size:  # without candidates (no catalog, no categories) skip the customer matrix
        a, c, shared, together, buyers = _evidence(baskets, a, c, price, margin, config.upsell)
    values = {
        **upsell_scores(shared, buyers[a], margin[a], margin[c]),
        "price": price[c],
        "margin": margin[c],
        "name": product["name"].to_numpy()[c],
        "together": together,
    }
    frame = rank_offers(_frame(baskets, a, c, values, segment), UPSELL_ORDER)
    log.info("up-sell (%s): %d offers for %d products", segment, len(frame), frame["antecedent_key"].nunique())
    return frame


def _evidence(
    baskets: Baskets, a: np.ndarray, c: np.ndarray, price: np.ndarray, margin: np.ndarray, config: UpsellConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs the up-sell policy keeps: (a, c, shared customers, shared baskets), and every product's buyers."""
    customers = customer_products(baskets)
    buyers = np.asarray(customers.sum(axis=0)).ravel()
    keep = upsell_candidates(price[a], price[c], margin[a], margin[c], buyers[a], buyers[c], config)
    a, c = a[keep], c[keep]
    shared = shared_rows(customers, a, c)
    keep = shared_enough(shared, config)
    a, c, shared = a[keep], c[keep], shared[keep]
    together = shared_rows(baskets.matrix, a, c)
    in_baskets = baskets.item_counts()
    keep = not_complement(together, baskets.count, in_baskets[a], in_baskets[c])
    return a[keep], c[keep], shared[keep], together[keep], buyers


def _in_price_band(
    known: np.ndarray, group_of: np.ndarray, price: np.ndarray, config: UpsellConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Every (a, c) of one category whose price ``c`` lies in ``a``'s up-sell band (:func:`price_band`)."""
    pairs_a, pairs_c = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for group in np.unique(group_of[known]):
        members = known[group_of[known] == group]
        members = members[np.argsort(price[members], kind="stable")]
        sorted_price = price[members]
        lowest, highest = price_band(sorted_price, config)
        low = np.searchsorted(sorted_price, lowest, side="left")
        high = np.searchsorted(sorted_price, highest, side="right")
        counts = np.maximum(high - low, 0)
        pairs_a.append(np.repeat(members, counts))
        pairs_c.append(members[np.repeat(low, counts) + ragged_arange(counts)])
    return np.concatenate(pairs_a), np.concatenate(pairs_c)


def _frame(baskets: Baskets, a: np.ndarray, c: np.ndarray, values: dict[str, np.ndarray], segment: str) -> pd.DataFrame:
    """Up-sell offers in the columns of ranked cross-sell rules; ``values`` are aligned with the pairs."""
    n = a.size
    return pd.DataFrame(
        {
            "segment": text_column(segment, n),
            "placement": text_column(PRODUCT, n),
            "kind": text_column(UPSELL, n),
            "antecedent_row": a.astype(np.int64),
            "antecedent_key": text_column(baskets.items[a], n),
            "antecedent_size": np.ones(n, dtype=np.int32),
            "consequent": text_column(baskets.items[c], n),
            "consequent_name": text_column(values["name"], n),
            "support": np.asarray(baskets.matrix[:, c].sum(axis=0)).ravel() / max(baskets.count, 1),
            "confidence": values["confidence"],
            "lift": np.full(n, np.nan),
            "pair_count": values["together"],
            "consequent_price": values["price"],
            "consequent_margin": values["margin"],
            "expected_margin": values["expected_margin"],
            "score": values["score"],
            "model_weight": np.full(n, np.nan),
        }
    )
