"""The words the published tables use, declared once for the engines, the storefront lookups and the report."""

from __future__ import annotations

#: The segment of the rows that hold for every customer; a storefront falls back to it.
ALL_SEGMENTS = "*"
#: Where an offer is shown (column ``placement``).
PRODUCT, CART, POST_PURCHASE = "product", "cart", "post_purchase"
PLACEMENTS = (PRODUCT, CART, POST_PURCHASE)
#: What it offers (column ``kind``).
CROSS_SELL, UPSELL = "cross_sell", "upsell"
KINDS = (CROSS_SELL, UPSELL)
#: One ranking per group: rank 1 is the best offer of its group.
GROUP = ("segment", "placement", "kind", "antecedent_key")
#: Separates the products of a multi-product antecedent in ``antecedent_key`` (sorted ids).
KEY_SEPARATOR = "|"
