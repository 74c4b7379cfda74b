"""Baskets of one segment in, every offer of that segment out.

One segment (``*`` for all baskets, or one value of ``segment.column``) gives:

- cross-sell rules, ``placement = "product"`` (one-product antecedents: the
  product page) and ``"cart"`` (larger antecedents: the cart block);
- post-purchase rules, ``placement = "post_purchase"`` (:mod:`pipeline.postpurchase`);
- up-sell offers, ``kind = "upsell"`` (:mod:`pipeline.upsell`);
- bundles (:mod:`pipeline.bundles`);
- its products with their category and basket count (``products.parquet``):
  the cart block's fallback to category best-sellers.

Segments with fewer than ``segment.min_baskets`` baskets are not mined: the
storefront falls back to the ``*`` rows for them (``docs/output.md``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.baskets import Baskets, ItemsetLabels, itemset_labels
from pipeline.bundles import bundle_table
from pipeline.config import Config
from pipeline.inputs import StageTimer
from pipeline.itemsets import Itemsets, frequent_itemsets
from pipeline.postpurchase import post_purchase_rules
from pipeline.recommendations import ALL_SEGMENTS, POST_PURCHASE, RankedRules, rank_rules, top_recommendations
from pipeline.rules import association_rules
from pipeline.schema import PRODUCTS, RECOMMENDATIONS, RULES, TEXT, text_column, to_table
from pipeline.upsell import upsell_offers

log = logging.getLogger(__name__)


@dataclass
class SegmentOffers:
    """The published rows of one segment, as Arrow tables, and what was counted."""

    segment: str
    baskets: int
    itemsets: Itemsets
    labels: ItemsetLabels
    recommendations: list[pa.Table] = field(default_factory=list)
    rules: list[pa.Table] = field(default_factory=list)
    bundles: pa.Table | None = None
    products: pa.Table | None = None
    counts: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)


def segment_baskets(baskets: Baskets, config: Config) -> list[tuple[str, Baskets]]:
    """``("*", all baskets)`` first, then each segment big enough to mine on its own, by name."""
    found = [(ALL_SEGMENTS, baskets)]
    if config.segment.column is None:
        return found
    values = baskets.order_info["segment"].astype(object)
    sizes = values.value_counts()
    if ALL_SEGMENTS in sizes.index:
        log.warning("segment value %r is reserved for all customers: its %d baskets are mined with everyone's only",
                    ALL_SEGMENTS, sizes[ALL_SEGMENTS])
        sizes = sizes.drop(ALL_SEGMENTS)
    small = sorted(str(v) for v, n in sizes.items() if n < config.segment.min_baskets)
    if small:
        log.info(
            "segments below segment.min_baskets = %d use the global rules: %s",
            config.segment.min_baskets,
            ", ".join(small[:20]) + (" ..." if len(small) > 20 else ""),
        )
    for value in sorted(str(v) for v, n in sizes.items() if n >= config.segment.min_baskets):
        found.append((value, baskets.subset((values == value).to_numpy())))
    return found


def segment_offers(
    segment: str, baskets: Baskets, catalog: pd.DataFrame | None, config: Config, run_id: str, stage: StageTimer
) -> SegmentOffers:
    """Mine one segment and build its recommendation, rule and bundle rows."""
    mine = config.mine
    if segment != ALL_SEGMENTS and config.segment.min_support is not None:
        mine = mine.model_copy(update={"min_support": config.segment.min_support, "min_count": None})
    top_k = config.output.top_k
    with stage("itemsets") as done:
        itemsets = frequent_itemsets(baskets, mine)
        done["itemsets"] = len(itemsets)
    with stage("rules") as done:
        rules = association_rules(itemsets, config.rules)
        done["rules"] = len(rules)
    with stage("rank"):
        labels = itemset_labels(itemsets.codes, itemsets.length, baskets.items)
        ranked = rank_rules(rules, itemsets, labels, baskets.items, catalog, config, segment)
    result = SegmentOffers(segment, baskets.count, itemsets, labels, dropped=dict(ranked.dropped))
    result.counts["rules_mined"] = len(rules)
    _add(result, ranked, labels, top_k, run_id, rules_table=True)
    singles = itemset_labels(
        np.arange(len(baskets.items), dtype=np.int32)[:, None], np.ones(len(baskets.items), np.int32), baskets.items
    )
    if config.post_purchase.enabled:
        with stage("post_purchase"):
            found = post_purchase_rules(baskets, config.model_copy(update={"mine": mine}))
            if found is not None:
                ranked_next = rank_rules(
                    found.rules, found.antecedents, singles, baskets.items, catalog, config, segment, POST_PURCHASE
                )
                _add(result, ranked_next, singles, top_k, run_id, rules_table=True)
    if config.upsell.enabled:
        with stage("upsell"):
            _add(result, RankedRules(upsell_offers(baskets, catalog, config, segment), {}), singles, top_k, run_id)
    if config.bundles.enabled:
        with stage("bundles"):
            result.bundles = bundle_table(itemsets, labels, baskets.items, catalog, config, segment)
    result.products = product_table(baskets, catalog, segment)
    return result


def product_table(baskets: Baskets, catalog: pd.DataFrame | None, segment: str) -> pa.Table:
    """Every product sold in the segment with its category and basket count, ranked within its category."""
    counts = baskets.item_counts()
    sold = np.flatnonzero(counts > 0)
    info = (catalog if catalog is not None else pd.DataFrame(columns=["product_id", "name", "category"]))
    info = info.set_index("product_id").reindex(baskets.items[sold])
    frame = pd.DataFrame(
        {
            "segment": text_column(segment, sold.size),
            "product_id": text_column(baskets.items[sold], sold.size),
            "name": info["name"].astype(TEXT).to_numpy(),
            "category": info["category"].astype(TEXT).to_numpy(),
            "baskets": counts[sold],
        }
    )
    frame = frame.sort_values(["category", "baskets", "product_id"], ascending=[True, False, True], kind="stable")
    frame["category_rank"] = (frame.groupby("category", dropna=False, sort=False).cumcount() + 1).astype("int32")
    return to_table(frame.reset_index(drop=True), PRODUCTS)


def _add(
    result: SegmentOffers, ranked: RankedRules, labels: ItemsetLabels, top_k: int, run_id: str, rules_table: bool = False
) -> None:
    """Append one source's top-k offers (and, for rules, every rule) to the segment's tables."""
    result.recommendations.append(ranked.table(labels, RECOMMENDATIONS, top_recommendations(ranked.rules, top_k, run_id)))
    if rules_table:
        result.rules.append(ranked.table(labels, RULES))
