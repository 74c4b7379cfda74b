"""Which frequent itemsets are bundles, and at what price: one definition for both engines.

A bundle is a frequent itemset of 2 to ``bundles.max_size`` products (at most
``mine.max_len``) whose products are strongly tied *both ways*:
all-confidence, ``n(bundle) / max(n(p) for p in bundle)``, at least
``bundles.min_all_confidence``. Unlike one rule's confidence, it is high only
when every product of the bundle is usually bought with all the others, so a
best-seller does not drag unrelated products into bundles.

Price: the sum of the catalog prices less ``bundles.discount``, but never so
much that the bundle's margin rate falls below ``margin.min_margin_rate``
(0 when unset): the discount is capped at ``1 - cost / ((1 - rate) x price)``,
and an itemset whose products already earn less than that rate is no bundle.
Every product needs a catalog price and margin. Ranked per segment by
``support x bundle margin`` (:data:`BUNDLE_ORDER`: the margin the bundle earns
per basket); the best ``bundles.top_n`` are published.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import Config

#: How bundles are ordered within a segment: (column, ascending).
BUNDLE_ORDER: tuple[tuple[str, bool], ...] = (("score", False), ("bundle_key", True))


def price_bundles(
    count: np.ndarray,
    largest: np.ndarray,
    list_price: np.ndarray,
    list_margin: np.ndarray,
    priced: np.ndarray,
    baskets: int,
    config: Config,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which candidate itemsets are bundles, and their published numbers (for those only).

    Per candidate: its basket ``count``, the ``largest`` basket count of one of
    its products, the sums of its products' prices and margins, and whether
    every product has a price (``priced``). Both engines call this, so a bundle
    is priced the same wherever it was mined.
    """
    all_confidence = count / np.maximum(largest, 1)
    cost = list_price - list_margin
    rate = config.margin.min_margin_rate or 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        most = 1 - cost / ((1 - rate) * list_price)
    keep = (all_confidence >= config.bundles.min_all_confidence) & np.isfinite(most) & (most >= 0) & (list_price > 0)
    keep &= priced
    all_confidence, list_price, cost, most = all_confidence[keep], list_price[keep], cost[keep], most[keep]
    discount = np.minimum(config.bundles.discount, most)
    bundle_price = np.floor(list_price * (1 - discount) * 100 + 1e-9) / 100
    # Rounding the price down to the cent may cross the margin floor: round up instead there.
    short = bundle_price - cost < rate * bundle_price - 1e-12
    bundle_price = np.where(short, np.ceil(list_price * (1 - discount) * 100 - 1e-9) / 100, bundle_price)
    support = count[keep] / max(baskets, 1)
    bundle_margin = bundle_price - cost
    return keep, {
        "support": support,
        "all_confidence": all_confidence,
        "list_price": list_price,
        "discount": 1 - bundle_price / list_price,
        "bundle_price": bundle_price,
        "bundle_margin": bundle_margin,
        "bundle_margin_rate": bundle_margin / bundle_price,
        "score": support * bundle_margin,
    }
