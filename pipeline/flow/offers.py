"""Baskets in, every offer of every segment out: the chain of stages, written once.

``basket run`` (both engines), ``basket tune`` and ``basket evaluate`` all call
:func:`offer_segments`. One segment (``*`` for all baskets, or one value of
``segment.column``, :mod:`pipeline.policy.segments`) gives:

- cross-sell rules, ``placement = "product"`` (one-product antecedents: the
  product page; with ``pairs.enabled`` from every pair bought together often
  enough by enough customers) and ``"cart"`` (larger antecedents, from the
  itemsets: the cart block);
- post-purchase rules, ``placement = "post_purchase"``;
- up-sell offers, ``kind = "upsell"``;
- bundles;
- its products with their category and basket count (``products.parquet``):
  the cart block's fallback to category best-sellers;
- with ``rank.by = "model_margin"``, its item model (:mod:`pipeline.policy.model`),
  which orders the cross-sell offers, and its strongest weights
  (``neighbours.parquet``), which the storefront's cart block sums.

With ``post_purchase.buy_again``, the ``*`` segment also carries each
customer's buy-again list (``buy_again.parquet``); with the item model and
``model.history_weight``, each customer's history (``history.parquet``), which
their cart block weighs in.

The engine (:class:`pipeline.engine.OfferEngine`) moves the data; what is kept
and how it ranks is :mod:`pipeline.policy`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.config import Config, MineConfig
from pipeline.contract.schema import NEIGHBOURS, text_column, to_table
from pipeline.contract.vocabulary import ALL_SEGMENTS, CART, POST_PURCHASE, PRODUCT
from pipeline.engine import MinedRules, OfferEngine, Ranked, SegmentTables
from pipeline.policy.model import Gram, ItemModel
from pipeline.policy.segments import segment_mine_config, segments_to_mine
from pipeline.stages import StageTimer


def offer_segments(
    engine: OfferEngine, baskets: Any, config: Config, run_id: str, stage: StageTimer | None = None
) -> list[SegmentTables]:
    """Every segment's rows: ``*`` first, then each segment mined on its own, by name."""
    stage = stage or StageTimer()
    sizes = engine.segment_sizes(baskets) if config.segment.column is not None else {}
    segments = [
        segment_offers(
            engine,
            name,
            baskets if name == ALL_SEGMENTS else engine.segment(baskets, name),
            config,
            run_id,
            stage,
        )
        for name in segments_to_mine(sizes, config)
    ]
    emailed = config.post_purchase.enabled and config.post_purchase.buy_again
    personal = config.rank.by == "model_margin" and config.model.history_weight > 0
    if emailed or personal:
        # A customer's own history is the same in every segment: with the global rows, ranked once
        # for both its uses.
        top_k, depth = config.output.top_k, config.model.history_products
        with stage("buy_again"):
            emails, history = engine.customer_lists(baskets, run_id, top_k if emailed else 0, depth if personal else 0)
            segments[0].buy_again = emails if emailed else None
            segments[0].history = history if personal else None
    return segments


def segment_offers(
    engine: OfferEngine, segment: str, baskets: Any, config: Config, run_id: str, stage: StageTimer
) -> SegmentTables:
    """Mine one segment and build its recommendation, rule, bundle and product rows."""
    mine = segment_mine_config(segment, config)
    modelled = config.rank.by == "model_margin"
    mined, gram = mine_cross_sells(engine, baskets, mine, config, stage, modelled)
    model = None
    if modelled:
        with stage("model") as done:
            matrix, products = gram or engine.model_gram(baskets)
            del gram
            model = ItemModel.fit(matrix, products, config.model, overwrite=True)
            del matrix
            done["products"] = len(products)
    with stage("rank"):
        ranked, dropped = rank_cross_sells(engine, mined, segment, model)
    result = SegmentTables(segment, engine.basket_count(baskets), mined.itemsets, mined.rules_mined, dropped)
    result.mined = mined
    for source in ranked:
        _add(engine, result, source, run_id)
    if config.post_purchase.enabled:
        with stage("post_purchase"):
            found = engine.post_purchase_rules(baskets, mine)
            if found is not None:
                following, antecedents = found
                _add(engine, result, engine.ranked_rules(following, antecedents, segment, POST_PURCHASE, None), run_id)
    if config.upsell.enabled:
        with stage("upsell"):
            upsells = engine.upsell_offers(baskets, segment)
            if upsells is not None:
                result.recommendations.append(engine.recommendations(upsells, run_id))
    if config.bundles.enabled:
        with stage("bundles"):
            result.bundles = engine.bundles(mined.itemsets, segment)
    result.products = engine.products(baskets, segment)
    if model is not None:
        result.neighbours = neighbours_table(model, segment, run_id)
    return result


def mine_cross_sells(
    engine: OfferEngine, baskets: Any, mine: MineConfig, config: Config, stage: StageTimer, with_gram: bool = False
) -> tuple[MinedRules, Gram | None]:
    """The itemsets and rules of one segment's baskets; with ``pairs.enabled`` also every pair's rules,
    and (``with_gram``) the item model's Gram matrix where the engine counts it with the pairs."""
    with stage("itemsets") as done:
        itemsets = engine.frequent_itemsets(baskets, mine)
        done["itemsets"] = engine.itemset_count(itemsets)
    with stage("rules") as done:
        rules = engine.association_rules(itemsets)
        done["rules"] = count = engine.rule_count(rules)
    if not config.pairs.enabled:
        return MinedRules(itemsets, rules, count), None
    # The product page from every pair bought together often enough; the cart from the longer itemsets.
    with stage("pairs") as done:
        pairs, gram = engine.pair_itemsets(baskets, config.pairs.min_count, with_gram)
        pair_rules = engine.association_rules(pairs)
        paired = engine.rule_count(pair_rules)
        pair_rules, habits = engine.customer_floor(pair_rules, pairs, baskets)
        done["pair rules"] = paired - habits
    return MinedRules(itemsets, rules, count + paired, pairs, pair_rules, habits), gram


def rank_cross_sells(
    engine: OfferEngine, mined: MinedRules, segment: str, model: ItemModel | None
) -> tuple[list[Ranked], dict[str, int]]:
    """The product page's and the cart's ranked rules (``engine.config``'s ranking), and what was dropped.

    ``basket evaluate`` ranks the same mined rules several ways with this.
    """
    if mined.pair_rules is None:
        ranked = engine.ranked_rules(mined.rules, mined.itemsets, segment, None, model)
        return [ranked], dict(ranked.dropped)
    product = engine.ranked_rules(mined.pair_rules, mined.pairs, segment, PRODUCT, model)
    cart = engine.ranked_rules(engine.cart_rules(mined.rules, mined.itemsets), mined.itemsets, segment, CART, model)
    dropped = {"too_few_customers": mined.habits}
    for source in (product.dropped, cart.dropped):
        for reason, n in source.items():
            dropped[reason] = dropped.get(reason, 0) + n
    return [product, cart], dropped


def neighbours_table(model: ItemModel, segment: str, run_id: str) -> pa.Table:
    """The published rows of one segment's model (``neighbours.parquet``): the same for every engine."""
    frame = model.table()
    frame["segment"] = text_column(segment, len(frame))
    frame["run_id"] = text_column(run_id, len(frame))
    return to_table(frame, NEIGHBOURS)


def _add(engine: OfferEngine, result: SegmentTables, ranked: Ranked, run_id: str) -> None:
    """Append one source of rules: every ranked rule, and the top-k of each group as offers."""
    result.recommendations.append(engine.recommendations(ranked, run_id))
    result.rules.append(engine.rules_table(ranked))
