"""Baskets and catalog in, up-sell offers out: a better, pricier version of the viewed product.

An up-sell is an *alternative*, not a complement: for product ``a``, a
product ``c`` of the same catalog category whose price is between
``1 + upsell.min_price_step`` and ``1 + upsell.max_price_step`` times ``a``'s
(default +10% to +25%: practitioners find larger steps rarely accepted), that
earns more margin per unit than ``a`` (an up-sell that lowers profit is a
failure), that is not bought *together* with ``a`` (in at least as many
baskets as chance predicts, ``n(ac) x n >= n(a) x n(c)``, it is a
complement: a cross-sell rule covers it), and that at least
``upsell.min_buyers`` customers of the segment bought *as well as* ``a``, in
other orders.

That last condition is the relevance test: a category is often too broad to
say two products are alternatives (an alarm clock and a doorstop can both be
"Home decor"), but customers who buy both, never together, treat them as
interchangeable choices. Without customer ids every basket is its own
customer, and no pair passes: no up-sell beats an irrelevant one. The test is
only as good as the catalog's categories: leaf categories ("alarm clocks")
give alternatives, broad ones ("home decor") give products that merely share
customers.

Ranking, per viewed product: ``score = evidence x margin gain``, where
``evidence`` is the share of ``a``'s buyers who also bought ``c``. Published
with ``kind = "upsell"``, ``placement = "product"``; ``confidence`` holds the
evidence, ``support`` the share of baskets holding ``c``, ``lift`` is null and
``pair_count`` counts the baskets holding both (fewer than chance predicts).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline.config import Config
from pipeline.contract.schema import text_column
from pipeline.contract.vocabulary import PRODUCT, UPSELL
from pipeline.local.arrays import ragged_arange
from pipeline.local.baskets import Baskets
from pipeline.local.recommendations import rank_offers
from pipeline.policy.offers import UPSELL_ORDER

log = logging.getLogger(__name__)

#: Candidate pairs are checked for shared baskets this many at a time.
_CHUNK = 100_000


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
    a, c = _in_price_band(known, group_of, price, config)
    keep = margin[c] > margin[a]
    a, c = a[keep], c[keep]
    shared = together = evidence = np.empty(0, dtype=np.int64)
    if a.size:  # without candidates (no catalog, no categories) skip the customer matrix
        a, c, shared, together, buyers = _evidence(baskets, a, c, config.upsell.min_buyers)
        evidence = shared / np.maximum(buyers[a], 1)
    values = {
        "evidence": evidence,
        "price": price[c],
        "margin": margin[c],
        "gain": margin[c] - margin[a],
        "name": product["name"].to_numpy()[c],
        "together": together,
    }
    frame = rank_offers(_frame(baskets, a, c, values, segment), UPSELL_ORDER)
    log.info("up-sell (%s): %d offers for %d products", segment, len(frame), frame["antecedent_key"].nunique())
    return frame


def _evidence(
    baskets: Baskets, a: np.ndarray, c: np.ndarray, min_buyers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs with at least ``min_buyers`` shared customers that are not complements:
    (a, c, shared customers, shared baskets) and every product's buyers."""
    customers = _customer_products(baskets).tocsc()
    buyers = np.asarray(customers.sum(axis=0)).ravel()
    # Both products need min_buyers buyers before they can share that many: prune the long tail first.
    keep = (buyers[a] >= min_buyers) & (buyers[c] >= min_buyers)
    a, c = a[keep], c[keep]
    shared = _shared(customers, a, c)
    keep = shared >= min_buyers
    a, c, shared = a[keep], c[keep], shared[keep]
    columns = baskets.matrix.astype(np.int32).tocsc()
    together = _shared(columns, a, c)
    in_baskets = np.asarray(columns.sum(axis=0)).ravel()
    # Bought together at least as often as chance predicts: a complement.
    keep = together * baskets.count < in_baskets[a] * in_baskets[c]
    return a[keep], c[keep], shared[keep], together[keep], buyers


def _in_price_band(
    known: np.ndarray, group_of: np.ndarray, price: np.ndarray, config: Config
) -> tuple[np.ndarray, np.ndarray]:
    """Every (a, c) of one category with price(c) / price(a) - 1 inside the up-sell band."""
    pairs_a, pairs_c = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for group in np.unique(group_of[known]):
        members = known[group_of[known] == group]
        members = members[np.argsort(price[members], kind="stable")]
        sorted_price = price[members]
        low = np.searchsorted(sorted_price, sorted_price * (1 + config.upsell.min_price_step), side="left")
        high = np.searchsorted(sorted_price, sorted_price * (1 + config.upsell.max_price_step), side="right")
        counts = np.maximum(high - low, 0)
        pairs_a.append(np.repeat(members, counts))
        pairs_c.append(members[np.repeat(low, counts) + ragged_arange(counts)])
    a, c = np.concatenate(pairs_a), np.concatenate(pairs_c)
    keep = price[c] > price[a]
    return a[keep], c[keep]


def _customer_products(baskets: Baskets) -> sp.csr_matrix:
    """Customers x products, 1 where the customer bought the product; a basket without customer is its own."""
    customer = baskets.order_info["customer_id"]
    ids = pd.factorize(customer.astype(object).where(customer.notna(), None).to_numpy(), use_na_sentinel=True)[0]
    anonymous = ids < 0
    ids[anonymous] = ids.max(initial=-1) + 1 + np.arange(int(anonymous.sum()))
    owner = sp.csr_matrix(
        (np.ones(ids.size, dtype=np.int32), (ids, np.arange(ids.size))), shape=(int(ids.max(initial=-1)) + 1, ids.size)
    )
    return ((owner @ baskets.matrix.astype(np.int32)) > 0).astype(np.int32).tocsr()


def _shared(columns: sp.csc_matrix, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """For each pair, the rows (baskets or customers) holding both ``a`` and ``c``."""
    shared = np.zeros(a.size, dtype=np.int64)
    for start in range(0, a.size, _CHUNK):
        part = slice(start, start + _CHUNK)
        shared[part] = np.asarray(columns[:, a[part]].multiply(columns[:, c[part]]).sum(axis=0)).ravel()
    return shared


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
            "confidence": values["evidence"],
            "lift": np.full(n, np.nan),
            "pair_count": values["together"],
            "consequent_price": values["price"],
            "consequent_margin": values["margin"],
            "expected_margin": values["evidence"] * values["margin"],
            "score": values["evidence"] * values["gain"],
        }
    )
