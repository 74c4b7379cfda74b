"""What makes a product an up-sell of another, and how up-sells rank: one definition for both engines.

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

Ranking, per viewed product: ``score = evidence x margin gain``, where
``evidence`` is the share of ``a``'s buyers who also bought ``c``
(:data:`~pipeline.policy.offers.UPSELL_ORDER`). The engines find candidate
pairs (same category) and count buyers and baskets; these kernels decide.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import UpsellConfig


def price_band(price: np.ndarray, config: UpsellConfig) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest price an up-sell of a product at ``price`` may have."""
    price = np.asarray(price, dtype=np.float64)
    return price * (1 + config.min_price_step), price * (1 + config.max_price_step)


def upsell_candidates(
    price_a: np.ndarray,
    price_c: np.ndarray,
    margin_a: np.ndarray,
    margin_c: np.ndarray,
    buyers_a: np.ndarray,
    buyers_c: np.ndarray,
    config: UpsellConfig,
) -> np.ndarray:
    """Pairs of one category that may be up-sells: pricier within the band, more margin, enough buyers each."""
    low, high = price_band(price_a, config)
    price_c = np.asarray(price_c, dtype=np.float64)
    return (
        (price_c >= low)
        & (price_c <= high)
        & (price_c > np.asarray(price_a))
        & (np.asarray(margin_c) > np.asarray(margin_a))
        & (np.asarray(buyers_a) >= config.min_buyers)
        & (np.asarray(buyers_c) >= config.min_buyers)
    )


def shared_enough(shared: np.ndarray, config: UpsellConfig) -> np.ndarray:
    """Candidates that at least ``upsell.min_buyers`` customers bought both of (in any orders)."""
    return np.asarray(shared) >= config.min_buyers


def not_complement(together: np.ndarray, baskets: int, in_a: np.ndarray, in_c: np.ndarray) -> np.ndarray:
    """Candidates bought together less often than chance predicts: ``n(ac) x n < n(a) x n(c)``."""
    return np.asarray(together) * baskets < np.asarray(in_a) * np.asarray(in_c)


def upsell_scores(
    shared: np.ndarray, buyers_a: np.ndarray, margin_a: np.ndarray, margin_c: np.ndarray
) -> dict[str, np.ndarray]:
    """The published numbers of each up-sell: ``confidence`` (the evidence), ``expected_margin`` and ``score``."""
    evidence = np.asarray(shared, dtype=np.float64) / np.maximum(np.asarray(buyers_a, dtype=np.float64), 1)
    margin_c = np.asarray(margin_c, dtype=np.float64)
    return {
        "confidence": evidence,
        "expected_margin": evidence * margin_c,
        "score": evidence * (margin_c - np.asarray(margin_a, dtype=np.float64)),
    }
