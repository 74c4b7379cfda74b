"""What an offer is worth and which offers a shopper sees: margins, scores, order and top-k.

The consequent's catalog margin decides whether an offer is worth showing
(``margin.min_margin``, ``margin.min_margin_rate``: :func:`margin_too_low`) and
how it ranks. Scores (``rank.by``, :func:`offer_scores`):

==================== ===========================================================
incremental_margin   (confidence - support(consequent)) x margin: the margin the
(default)            offer adds over what the customer would have bought anyway.
                     The first factor is the uplift in purchase probability that
                     the antecedent brings (relevance); the second is the value.
expected_margin      confidence x margin
similar_margin       Jaccard similarity x margin: SAR's item similarity, the
                     baskets holding both over those holding either; unlike
                     confidence it does not favour best-sellers
lift                 lift
confidence           confidence
==================== ===========================================================

Without a catalog, margin-based scores fall back to their probability factor
(``confidence - support(consequent)``, resp. ``confidence``). With
``catalog.missing = "keep"``, rules recommending a product the catalog lacks
keep a null margin and a null margin-based score, and rank after every scored
offer of their antecedent.

Within each group (:data:`pipeline.contract.vocabulary.GROUP`) offers are
numbered from 1 in :data:`RULE_ORDER` (:data:`UPSELL_ORDER` for up-sells);
the best ``output.top_k`` of each group are published (:func:`shown`).
"""

from __future__ import annotations

import numpy as np

from pipeline.config import MarginConfig

#: How rule offers are ordered within a group: (column, ascending), nulls last.
RULE_ORDER: tuple[tuple[str, bool], ...] = (
    ("score", False),
    ("confidence", False),
    ("lift", False),
    ("consequent", True),
)
#: How the cart block orders the offers that match a cart (each product keeps its first): best score
#: first, ties to the more confident, then the more specific rule, then by product id.
CART_ORDER: tuple[tuple[str, bool], ...] = (
    ("score", False),
    ("confidence", False),
    ("lift", False),
    ("antecedent_size", False),
    ("consequent", True),
)
#: How a customer's buy-again list is ordered: the products of most of their orders, then the most recent.
BUY_AGAIN_ORDER: tuple[tuple[str, bool], ...] = (("orders", False), ("last_bought", False), ("product_id", True))
#: How up-sell offers are ordered within a group.
UPSELL_ORDER: tuple[tuple[str, bool], ...] = (("score", False), ("consequent", True))


def margin_too_low(margin: np.ndarray, price: np.ndarray, config: MarginConfig) -> np.ndarray:
    """Offers whose consequent earns less than ``margin.min_margin`` or ``margin.min_margin_rate``.

    An unknown margin or price (null) is not "too low": the catalog policy
    (``catalog.missing``) decides about products the catalog lacks.
    """
    margin = np.asarray(margin, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    low = np.zeros(margin.shape, dtype=bool)
    if config.min_margin is not None:
        low |= margin < config.min_margin
    if config.min_margin_rate is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(price > 0, margin / price, np.nan)
        low |= rate < config.min_margin_rate
    return low


def expected_margin(confidence: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Confidence x margin: what showing the offer earns per view, on average."""
    return np.asarray(confidence, dtype=np.float64) * np.asarray(margin, dtype=np.float64)


def offer_scores(
    by: str,
    confidence: np.ndarray,
    consequent_support: np.ndarray,
    lift: np.ndarray,
    margin: np.ndarray,
    has_catalog: bool,
    margin_power: float = 1.0,
    jaccard: np.ndarray | None = None,
) -> np.ndarray:
    """The ranking score of each offer under ``rank.by`` (see the module's table).

    ``margin_power`` (``rank.margin_power``, alpha) weighs the margin in the
    margin-based scores, ``probability x margin ** alpha``: 0 ranks by the
    probability alone, 1 by the margin earned; between, a trade-off chosen on
    held-out orders (``docs/evaluation.md``).
    """
    if by == "lift":
        return np.asarray(lift, dtype=np.float64)
    probability = np.asarray(confidence, dtype=np.float64)
    if by == "confidence":
        return probability
    if by == "incremental_margin":
        probability = probability - np.asarray(consequent_support, dtype=np.float64)
    if by == "similar_margin":
        probability = np.asarray(jaccard, dtype=np.float64)
    if not has_catalog:
        return probability
    with np.errstate(invalid="ignore"):
        return probability * np.power(np.asarray(margin, dtype=np.float64), margin_power)


def shown(rank: np.ndarray, top_k: int) -> np.ndarray:
    """Offers the storefront shows: the first ``output.top_k`` of each group."""
    return np.asarray(rank) <= top_k
