"""What makes a product an up-sell of another, and how up-sells rank: one definition for both engines.

An up-sell is an *alternative*, not a complement: for product ``a``, a
product ``c`` of the same catalog category whose price is between
``1 + upsell.min_price_step`` and ``1 + upsell.max_price_step`` times ``a``'s
(default +10% to +25%: practitioners find larger steps rarely accepted), that
earns more margin per unit than ``a`` (an up-sell that lowers profit is a
failure), that is not bought *together* with ``a`` (in at least as many
baskets as chance predicts, ``n(ac) x n >= n(a) x n(c)``, it is a
complement: a cross-sell rule covers it), that at least
``upsell.min_buyers`` customers of the segment bought *as well as* ``a``, in
other orders, and that is *the same type of product* (:func:`same_type`): a
size or colour step of ``a`` itself, or a product whose name shares most of
``a``'s words. A catalog category alone is too broad a reason ("Home decor"
holds clocks and doorstops).

Ranking, per viewed product: ``score = evidence x margin gain``, where
``evidence`` is the share of ``a``'s buyers who also bought ``c``
(:data:`~pipeline.policy.offers.UPSELL_ORDER`). The engines find candidate
pairs (same category) and count buyers and baskets; these kernels decide.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import UpsellConfig
from pipeline.policy.variants import content_words, variant_keys

#: Name words two products must share (besides colour and size words) to be of one type.
SHARED_WORDS = 2
#: Words that say nothing of a product's type: they never count as shared.
_FILLER = frozenset(("SET", "PACK", "BOX", "OF", "AND", "WITH", "THE", "FOR", "IN", "ON", "DESIGN", "PC", "PCS"))


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


def same_type(
    id_a: np.ndarray,
    name_a: np.ndarray,
    group_a: np.ndarray,
    id_c: np.ndarray,
    name_c: np.ndarray,
    group_c: np.ndarray,
) -> np.ndarray:
    """Pairs with evidence of being the same type of product, from the catalog's ids, names and groups.

    Either variants of one product (:func:`~pipeline.policy.variants.variant_keys`: the same base
    code, the same name up to colour and size words, one declared ``variant_group``: the
    larger size is the classic up-sell), or names that share at least :data:`SHARED_WORDS` words
    that are not colour, size or filler words ("SET OF 3"), and at least half of the shorter
    name's ("JUMBO BAG RETROSPOT" and "JUMBO BAG POLKADOT"; not "ALARM CLOCK" and "DOORSTOP",
    nor "HEART COOKIE CUTTERS" and "HEART OF WICKER").
    """
    described: dict[str, tuple[frozenset[str], set[str]]] = {}

    def describe(product: object, name: object, group: object) -> tuple[frozenset[str], set[str]]:
        # Each product's keys and words once, however many pairs it is in.
        key = str(product)
        if key not in described:
            words = {w for w in content_words(name) if w not in _FILLER and len(w) > 2 and not w.isdigit()}
            described[key] = (variant_keys(key, name, group), words)
        return described[key]

    found = np.zeros(len(id_a), dtype=bool)
    for row, (a_id, a_name, a_group, c_id, c_name, c_group) in enumerate(
        zip(id_a, name_a, group_a, id_c, name_c, group_c, strict=True)
    ):
        keys_a, words_a = describe(a_id, a_name, a_group)
        keys_c, words_c = describe(c_id, c_name, c_group)
        shared = len(words_a & words_c)
        found[row] = bool(keys_a & keys_c) or (shared >= SHARED_WORDS and 2 * shared >= min(len(words_a), len(words_c)))
    return found


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
