"""Would the offers have sold? A time-based hold-out of the whole pipeline.

Orders before a cut-off train the pipeline exactly as ``basket run`` would
(same cleaning, mining, filters, margins and top-k). Every later order with
two or more products is replayed as carts: each of its products in turn is
held out (the target) and the others are the cart. The cart gets offers the
way the storefront's cart block does (:mod:`pipeline.read.lookup`): every rule
whose antecedent is inside the cart, each product not in the cart keeping its
best rule, the best ``output.top_k``. A hit is an offer of the held-out
product: a product the customer really bought next to that cart.

Strategies compared on the same carts: the rules ranked by ``rank.by``, by
lift and by expected margin; the storefront's cart block (the ``rank.by``
rules, filled up with best sellers of the cart's categories, then overall);
and a best-sellers baseline (the most bought products of the training period
not already in the cart).

The product page is replayed too (``placement = "product"``): each product of
each replayed order viewed in turn, its page's published offers, a hit an
offer of any other product of that order.

The follow-up e-mail is replayed as well (``placement = "post_purchase"``):
each test order followed by the same customer's next order within
``post_purchase.max_days`` gets the post-purchase offers for its products; a
hit is an offer the customer bought in that next order; the same offers
filled up with best sellers, and the best-sellers not in the first order,
are compared. Metrics, per strategy and placement (for
post-purchase, read "case" for "cart"):

- ``hit_rate``: share of carts whose held-out product was offered (hit rate@k);
- ``precision``: hits / (k x carts) (precision@k);
- ``carts_with_offer``, ``orders_with_offer``: share of carts, and of orders
  (any of its carts), that get at least one offer;
- ``coverage``: distinct products ever offered / products in the catalog
  (or sold in training when there is no catalog);
- ``attach_value``, ``attach_margin``: price and catalog margin of the hits
  (one unit), per cart: the simulated extra revenue and margin if every hit
  sold; ``attach_value_share`` is ``attach_value`` over the average test order
  value (the AOV uplift the offers could bring).

The cases are built in :mod:`pipeline.flow.cases`, measured in
:mod:`pipeline.flow.replay`; this module trains and states the strategies.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.arrays import ragged_arange
from pipeline.config import CartVariants, Config
from pipeline.contract.schema import EVALUATION, SCHEMA_VERSION, to_table
from pipeline.contract.vocabulary import ALL_SEGMENTS, CART, CROSS_SELL, POST_PURCHASE, PRODUCT
from pipeline.engine import SegmentTables
from pipeline.errors import InputDataError, OutputError
from pipeline.flow.cases import Carts, cart_cases, next_order_cases
from pipeline.flow.offers import offer_segments, rank_cross_sells
from pipeline.flow.replay import CHUNK_CASES, Replay, Strategy
from pipeline.local.baskets import Baskets, baskets_from_lines
from pipeline.local.budget import check_budget
from pipeline.local.catalog import knows_margins, read_catalog
from pipeline.local.clean import clean_transactions
from pipeline.local.engine import LocalEngine, offer_tables
from pipeline.local.ingest import read_transactions
from pipeline.policy.model import ItemModel, cosine_weights, jaccard_weights
from pipeline.policy.offers import CART_ORDER, cart_block, sorted_by
from pipeline.policy.variants import VariantIndex, not_first

log = logging.getLogger(__name__)

BEST_SELLERS = "best-sellers"
#: The follow-up e-mail's personal block: the customer's own most bought products.
BUY_AGAIN = "buy again"
#: The cart block as the shop runs it: rules by rank.by, then category and overall best sellers.
STOREFRONT = "storefront (rules, then best sellers)"
#: The model's own strategy without the customers' histories, beside it when ``model.history_weight`` is on.
CART_ONLY = "the cart alone"
#: The model's own strategy with each order's segment's rows (the global ones where its segment was not
#: mined on its own), beside it when ``segment.column`` mines segments.
EACH_SEGMENT = "each order's segment"
#: References without the rules, over every product: the strongest simple models the offers are judged against.
MODEL_ALONE = "item model alone (every product, no rules)"
KNN_ALONE = "item-kNN alone (cosine, every product, no rules)"
SAR_ALONE = "SAR alone (Jaccard, every product, no rules)"
#: The item model alone under the cart block's variant rule: the like-for-like reference of
#: ``rank.drop_variants``, by ``rank.cart_variants``.
MODEL_ALONE_UNDER_VARIANT_RULE = {
    "never": "item model alone, no variant of the cart",
    "not_first": "item model alone, no variant first",
}
#: How deep that reference looks (times the largest k) before applying the variant rule.
VARIANT_DEPTH = 4
#: Strategies besides the configured ``rank.by``.
_COMPARED = ("incremental_margin", "similar_margin", "lift")


@dataclass(frozen=True)
class CartScoring:
    """How the cart block scores its offers: the trained item model (None: each rule's own score) and,
    with ``history_weight``, the customers' histories (``history.parquet``'s rows)."""

    model: ItemModel | None = None
    has_margins: bool = False
    margin_power: float = 1.0
    history: _History | None = None
    history_weight: float = 0.0
    #: The training products' variant keys under ``rank.drop_variants``, and what the cart block does with
    #: an offer that is a variant of its cart (``rank.cart_variants``).
    variants: VariantIndex | None = None
    cart_variants: CartVariants = "not_first"


@dataclass(frozen=True)
class Evaluation:
    """One row of metrics per strategy, and what they were measured on."""

    metrics: pd.DataFrame
    cutoff: datetime
    train_orders: int
    test_orders: int
    carts: int
    k: int
    #: Share of the products sold in training whose product page gets a cross-sell (segment ``*``).
    product_pages: float
    #: Carts whose held-out product was never sold in training: no strategy can offer it.
    new_targets: int
    #: Carts whose held-out product is a colour or size variant of a product of the cart: no offer under
    #: ``rank.drop_variants`` with ``rank.cart_variants = "never"`` can be it (0 under any other rule).
    variant_targets: int
    trained: dict[str, pa.Table] = field(repr=False)


def evaluate(config: Config) -> Evaluation:
    """Train on orders before ``evaluate.cutoff``, replay the later ones as carts, score each strategy."""
    check_budget(config, references=1)
    raw, _ = read_transactions(config.input)
    cleaned = clean_transactions(raw, config.clean, config.as_of, config.input)
    del raw
    lines = cleaned.take_lines()
    started = lines.groupby("order_id", sort=False)["timestamp"].transform("min")
    cutoff = _cutoff(config, started)
    train_lines, test_lines = lines[started < cutoff], lines[started >= cutoff]
    train = baskets_from_lines(train_lines)
    if train.count == 0 or test_lines.empty:
        raise InputDataError(
            f"evaluate.cutoff {cutoff:%Y-%m-%d %H:%M}: {train.count} training and "
            f"{test_lines['order_id'].nunique()} test orders; pick a cut-off inside the data"
        )
    catalog = read_catalog(config.catalog, config.clean.id_case)
    carts, views = cart_cases(test_lines, train, catalog, config.evaluate.max_orders)
    ks = config.evaluate.k
    deepest = max(ks)
    engine = LocalEngine(config, train.items, catalog, train.names)
    segments = offer_segments(engine, train, config, "evaluation")
    trained = offer_tables(segments)
    replay = Replay(train, catalog, ks, config.evaluate.bootstrap)
    variants = VariantIndex.of(train.items, engine.variants) if config.rank.drop_variants else None
    model = _trained_model(trained, config)
    offered = {
        by: trained["recommendations"] if by == config.rank.by else _ranked_by(engine, segments[0], by)
        for by in dict.fromkeys((config.rank.by, *_COMPARED))
    }
    mined = {tables.segment: _trained_model(trained, config, tables.segment) for tables in segments[1:]}
    scoring = replace(
        _cart_scoring(model, trained, config, catalog, train.items),
        variants=variants,
        cart_variants=config.rank.cart_variants,
    )
    strategies = _cart_strategies(offered, mined, scoring, train, deepest, catalog)
    pages = {f"rules by {by}": _page_strategy(table, list(mined), train, deepest) for by, table in offered.items()}
    strategies[BEST_SELLERS] = pages[BEST_SELLERS] = _best_seller_strategy(train, deepest)
    for name, reference in _references(engine, train, model, config).items():
        strategies[name] = pages[name] = _model_strategy(reference, train, deepest)
        if name == MODEL_ALONE and variants is not None:
            rule = config.rank.cart_variants
            alike = _model_strategy(reference, train, deepest, variants, rule)
            strategies[MODEL_ALONE_UNDER_VARIANT_RULE[rule]] = alike
    rows = [replay.rows(name, CART, strategy, carts) for name, strategy in strategies.items()]
    rows += [replay.rows(name, PRODUCT, strategy, views) for name, strategy in pages.items()]
    if config.post_purchase.enabled:
        rows += _post_purchase_rows(trained, train, test_lines, catalog, config, replay)
    metrics = pd.concat(rows, ignore_index=True)
    metrics["aov"] = _average_order_value(test_lines)
    metrics["attach_value_share"] = metrics["attach_value"] / metrics["aov"]
    evaluation = Evaluation(
        metrics=metrics,
        cutoff=cutoff,
        train_orders=train.count,
        test_orders=int(np.unique(carts.order).size),
        carts=len(carts),
        k=config.output.top_k,
        product_pages=_product_pages(trained["recommendations"], train),
        new_targets=int(np.unique(carts.target_case[carts.target < 0]).size),
        variant_targets=_variant_targets(carts, train, variants if config.rank.cart_variants == "never" else None),
        trained=trained,
    )
    log.info(
        "evaluate: trained on %d orders before %s, replayed %d carts of %d later orders",
        evaluation.train_orders,
        cutoff,
        evaluation.carts,
        evaluation.test_orders,
    )
    return evaluation


def _cart_strategies(
    offered: dict[str, pa.Table],
    mined: dict[str, ItemModel | None],
    scoring: CartScoring,
    train: Baskets,
    k: int,
    catalog: pd.DataFrame | None,
) -> dict[str, Strategy]:
    """The cart block's strategies: the rules of each ranking in ``offered`` (the first is ``rank.by``'s,
    ordered by ``scoring``; the others by their own scores under its variant rule), and beside
    ``rank.by``'s the storefront, each order's segment's rows where segments were ``mined`` (with
    their item models), and the cart alone where histories count."""
    strategies: dict[str, Strategy] = {}
    ranked = next(iter(offered))
    plain = CartScoring(variants=scoring.variants, cart_variants=scoring.cart_variants)
    for by in offered:
        table = _shown(offered[by], [PRODUCT, CART])
        strategies[f"rules by {by}"] = rules = _rule_strategy(table, train, k, scoring if by == ranked else plain)
        if by != ranked:
            continue
        strategies[STOREFRONT] = _storefront_strategy(rules, train, k, catalog, scoring.variants)
        if mined:
            by_segment = {
                name: _rule_strategy(
                    _shown(offered[by], [PRODUCT, CART], name), train, k, replace(scoring, model=model)
                )
                for name, model in mined.items()
            }
            strategies[f"rules by {by}, {EACH_SEGMENT}"] = _segmented(by_segment, rules)
        if scoring.history is not None:
            strategies[f"rules by {by}, {CART_ONLY}"] = _rule_strategy(table, train, k, replace(scoring, history=None))
    return strategies


def _page_strategy(offered: pa.Table, mined: list[str], train: Baskets, k: int) -> Strategy:
    """The product page of each case's one product, as published (``basket recommend --item``): its
    ``product`` rows in rank order; with ``mined`` segments, each order's segment's page where it was mined."""

    def page(table: pa.Table) -> Strategy:
        rules = _Rules.of(table, train)
        codes = rules.frame["code"].to_numpy()

        def offers(carts: Carts) -> pd.DataFrame:
            # A page's rules have its product as their whole antecedent, numbered in the page's order.
            case, rule = rules.matched(carts)
            return _first(pd.DataFrame({"case": case, "code": codes[rule]}), k)

        return offers

    shown = page(_shown(offered, [PRODUCT]))
    if not mined:
        return shown
    return _segmented({name: page(_shown(offered, [PRODUCT], name)) for name in mined}, shown)


def _post_purchase_rows(
    trained: dict[str, pa.Table],
    train: Baskets,
    test_lines: pd.DataFrame,
    catalog: pd.DataFrame | None,
    config: Config,
    replay: Replay,
) -> list[pd.DataFrame]:
    """The follow-up e-mail replayed: each test order's post-purchase offers against the customer's next order."""
    deepest = max(config.evaluate.k)
    table = _shown(trained["recommendations"], [POST_PURCHASE])
    cases = next_order_cases(test_lines, train, catalog, config.post_purchase.max_days, config.evaluate.max_orders)
    if table.num_rows == 0 or len(cases) == 0:
        log.info("evaluate: no post-purchase rules or no repeat orders in the test period")
        return []
    bought = trained["buy_again"].to_pandas()
    rules = _rule_strategy(table, train, deepest, CartScoring())
    strategies: dict[str, Strategy] = {
        "post-purchase rules": rules,
        "post-purchase rules, then best sellers": _storefront_strategy(rules, train, deepest, catalog, None),
        BEST_SELLERS: _best_seller_strategy(train, deepest),
    }
    if config.post_purchase.buy_again:
        strategies[BUY_AGAIN] = lambda carts: _buy_again_offers(bought, train, carts, deepest)
        strategies[f"{BUY_AGAIN}, then post-purchase rules"] = lambda carts: _tiered(
            [_buy_again_offers(bought, train, carts, deepest), rules(carts)], deepest
        )
    return [replay.rows(name, POST_PURCHASE, strategy, cases) for name, strategy in strategies.items()]


def _product_pages(recommendations: pa.Table, train: Baskets) -> float:
    """Share of the products sold in training whose product page gets at least one cross-sell."""
    pages = _shown(recommendations, [PRODUCT])["antecedent_key"]
    return len(pc.unique(pages)) / max(int((train.item_counts() > 0).sum()), 1)


def _trained_model(trained: dict[str, pa.Table], config: Config, segment: str = ALL_SEGMENTS) -> ItemModel | None:
    """The trained run's item model of ``segment`` (its published weights), when ``rank.by`` has one."""
    rows = trained["neighbours"].filter(pc.field("segment") == segment)
    if config.rank.by != "model_margin" or rows.num_rows == 0:
        return None
    return ItemModel.from_table(rows)


def _cart_scoring(
    model: ItemModel | None,
    trained: dict[str, pa.Table],
    config: Config,
    catalog: pd.DataFrame | None,
    items: np.ndarray,
) -> CartScoring:
    """The cart block's scoring of the trained run: its item ``model``, when it has one, and its
    customers' histories (against the training products ``items``)."""
    if model is None:
        return CartScoring()
    history = trained["history"]
    return CartScoring(
        model,
        knows_margins(catalog),
        config.rank.margin_power,
        _History.of(history.to_pandas(), items) if config.model.history_weight > 0 and history.num_rows else None,
        config.model.history_weight,
    )


def _references(engine: LocalEngine, train: Baskets, model: ItemModel | None, config: Config) -> dict[str, ItemModel]:
    """The reference models: the trained item ``model`` (when there is one), item-kNN's cosine and
    SAR's Jaccard similarity on the same products, each keeping ``model.neighbours`` weights per product
    (one similarity matrix at a time beside the Gram matrix)."""
    models: dict[str, ItemModel] = {} if model is None else {MODEL_ALONE: model}
    gram, products = engine.model_gram(train)
    for name, similarity in ((KNN_ALONE, cosine_weights), (SAR_ALONE, jaccard_weights)):
        models[name] = ItemModel.strongest(similarity(gram), products, config.model.neighbours)
    return models


def _model_strategy(
    model: ItemModel,
    train: Baskets,
    k: int,
    variants: VariantIndex | None = None,
    cart_variants: CartVariants = "not_first",
) -> Strategy:
    """A model alone: each cart's ``k`` best products by the model over every product (no rules, no margin).

    With ``variants``, the cart block's variant rule (``cart_variants``) on the ``VARIANT_DEPTH x k``
    best: none a variant of a product of its cart (``"never"``: a cart of many colours may get fewer),
    or none first (``"not_first"``).
    """
    codes = pd.Index(train.items)
    depth = k if variants is None else VARIANT_DEPTH * k

    def offers(carts: Carts) -> pd.DataFrame:
        known = carts.item >= 0
        cart = pd.Categorical.from_codes(carts.item[known], categories=codes)
        top = model.cart_top(carts.case[known], cart, depth)
        found = pd.DataFrame(
            {"case": top["case"], "code": codes.get_indexer(top["product_id"]), "position": top["position"]}
        )
        if variants is None:
            return found
        case, code = found["case"].to_numpy(dtype=np.int64), found["code"].to_numpy(dtype=np.int64)
        variant = _variants_of_cart(variants, carts, codes, case, code)
        kept = np.flatnonzero(~variant) if cart_variants == "never" else not_first(case, variant)
        return _first(found.iloc[kept][["case", "code"]], k)

    return offers


def _variant_targets(carts: Carts, train: Baskets, variants: VariantIndex | None) -> int:
    """The cases one of whose targets is a colour or size variant of a product of their cart
    (:data:`CHUNK_CASES` cases at a time: a wholesale order's carts hold its hundreds of products each)."""
    if variants is None:
        return 0
    found, items = 0, pd.Index(train.items)
    for _, part in carts.chunks(CHUNK_CASES):
        sold = part.target >= 0
        case, code = part.target_case[sold], part.target[sold]
        flagged = _variants_of_cart(variants, part, items, case, code)
        found += int(np.unique(case[flagged]).size)
    return found


def _variants_of_cart(
    variants: VariantIndex, carts: Carts, items: pd.Index, case: np.ndarray, code: np.ndarray
) -> np.ndarray:
    """Which (case, product code) pairs are a colour or size variant of a product of that case's cart."""
    known = carts.item >= 0
    return variants.cart_variants(
        carts.case[known],
        pd.Categorical.from_codes(carts.item[known], categories=items),
        case,
        pd.Categorical.from_codes(code, categories=items),
    )


def _rule_strategy(table: pa.Table, train: Baskets, k: int, scoring: CartScoring) -> Strategy:
    """The cart block's rule offers, from ``table``'s offers; each chunk's are kept for the storefront
    strategy built on them (a few integers per case)."""
    made: dict[tuple[int, int], pd.DataFrame] = {}
    rules = _Rules.of(table, train)

    def offers(carts: Carts) -> pd.DataFrame:
        key = (int(carts.order[0]) if len(carts) else -1, len(carts))
        if key not in made:
            made[key] = _rule_offers(rules, train, carts, k, scoring)
        return made[key]

    return offers


def _segmented(by_segment: dict[str, Strategy], fallback: Strategy) -> Strategy:
    """Each case's offers from its order's segment's strategy, where that segment was mined on its own,
    else from ``fallback`` (the global rows): what ``basket recommend --cart --segment`` shows."""
    codes = {name: code for code, name in enumerate(by_segment)}

    def offers(carts: Carts) -> pd.DataFrame:
        named = pd.Series(carts.segment if carts.segment is not None else np.full(len(carts), None), dtype=object)
        segment = named.map(codes).fillna(-1).to_numpy(dtype=np.int64)
        found = []
        for code, strategy in [*enumerate(by_segment.values()), (-1, fallback)]:
            kept = segment == code
            if kept.any():
                offered = strategy(carts.subset(kept))
                found.append(offered.assign(case=np.flatnonzero(kept)[offered["case"].to_numpy()]))
        if not found:
            return fallback(carts)
        return pd.concat(found, ignore_index=True).sort_values(["case", "position"], ignore_index=True)

    return offers


def _storefront_strategy(
    rules: Strategy, train: Baskets, k: int, catalog: pd.DataFrame | None, variants: VariantIndex | None
) -> Strategy:
    """The cart block as the storefront runs it: the ``rules`` strategy's offers, then best sellers (with
    ``variants``, none a colour or size variant of a product of the cart)."""
    return lambda carts: _storefront_offers(rules(carts), train, carts, k, catalog, variants)


def _ranked_by(engine: LocalEngine, trained: SegmentTables, by: str) -> pa.Table:
    """The cross-sell offers of all customers with the trained run's rules ranked by ``by`` instead, on
    product pages too (at ``rank.margin_power`` there as well)."""
    config = engine.config
    one_order = {"by": by, "page_by": "same", "page_margin_power": None}
    variant = config.model_copy(update={"rank": config.rank.model_copy(update=one_order)})
    assert trained.mined is not None, "offer_segments keeps every segment's mined rules"
    ranked, _ = rank_cross_sells(engine.with_config(variant), trained.mined, ALL_SEGMENTS, None)
    return pa.concat_tables(engine.recommendations(r, "evaluation") for r in ranked)


def _shown(recommendations: pa.Table, placements: list[str], segment: str = ALL_SEGMENTS) -> pa.Table:
    """The cross-sell offers of ``placements`` for ``segment``'s customers (``*``: all), as the storefront
    shows them."""
    return recommendations.filter(
        (pc.field("segment") == segment) & (pc.field("kind") == CROSS_SELL) & pc.field("placement").isin(placements)
    )


def write_evaluation(evaluation: Evaluation, directory: Path) -> Path:
    """Write ``evaluation.parquet`` (schema ``EVALUATION``) and ``evaluation.json``; return the directory.

    Each file is written beside its final name and renamed into place, so a
    reader never sees half a file.
    """
    summary = {
        "schema_version": SCHEMA_VERSION,
        "cutoff": evaluation.cutoff.isoformat(),
        "train_orders": evaluation.train_orders,
        "test_orders": evaluation.test_orders,
        "carts": evaluation.carts,
        "k": evaluation.k,
        "product_pages": evaluation.product_pages,
        "new_targets": evaluation.new_targets,
        "variant_targets": evaluation.variant_targets,
        "metrics": json.loads(evaluation.metrics.to_json(orient="records")),
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        table = to_table(evaluation.metrics, EVALUATION)
        table = table.replace_schema_metadata({"schema_version": SCHEMA_VERSION, "cutoff": summary["cutoff"]})
        pq.write_table(table, directory / ".evaluation.parquet.tmp")
        (directory / ".evaluation.json.tmp").write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(directory / ".evaluation.parquet.tmp", directory / "evaluation.parquet")
        os.replace(directory / ".evaluation.json.tmp", directory / "evaluation.json")
    except OSError as exc:
        raise OutputError(
            f"{directory}: cannot write the evaluation ({exc.strerror or exc}); check the path and free space"
        ) from exc
    return directory


def _cutoff(config: Config, started: pd.Series) -> datetime:
    """``evaluate.cutoff`` (a date: that day's midnight), else the instant leaving ``test_share`` of orders after it."""
    cutoff = config.evaluate.cutoff
    if isinstance(cutoff, datetime):
        return cutoff
    if isinstance(cutoff, date):
        return datetime.combine(cutoff, time())
    firsts = started.drop_duplicates().sort_values(ignore_index=True)
    if firsts.empty:
        raise InputDataError("evaluate: no clean order line has a timestamp; set input.columns.timestamp")
    return firsts.iloc[int(len(firsts) * (1 - config.evaluate.test_share))].to_pydatetime()


@dataclass(frozen=True)
class _Rules:
    """A strategy's shown rule offers, prepared once for every chunk of cases: each rule's antecedent
    products as training codes, and the columns the cart block orders by."""

    #: The rules holding each product in their antecedent: ``rules_of[starts[c]:starts[c + 1]]`` for code c.
    rules_of: np.ndarray
    starts: np.ndarray
    size: np.ndarray
    frame: pd.DataFrame

    @classmethod
    def of(cls, table: pa.Table, train: Baskets) -> _Rules:
        codes = pd.Index(train.items)
        member = codes.get_indexer(pc.list_flatten(table["antecedent"]).to_numpy(zero_copy_only=False))
        rule = pc.list_parent_indices(table["antecedent"]).to_numpy()
        columns = list(dict.fromkeys([*(c for c, _ in CART_ORDER), "consequent_margin"]))
        frame = table.select(columns).to_pandas()
        frame["code"] = codes.get_indexer(frame["consequent"].astype(str))
        # Codes number the products in id order: a categorical consequent sorts by id at integer speed.
        frame["consequent"] = pd.Categorical.from_codes(frame["code"].to_numpy(), categories=codes)
        # Rules numbered in the cart block's order: a case's matched rules, ascending, are in that order already.
        frame = frame.assign(rule=np.arange(len(frame)))
        frame = sorted_by(frame, list(CART_ORDER))
        number = np.empty(len(frame), dtype=np.int64)
        number[frame.pop("rule").to_numpy()] = np.arange(len(frame))
        rule = number[rule]
        by_code = np.argsort(member, kind="stable")
        return cls(
            rules_of=rule[by_code].astype(np.int64),
            starts=np.searchsorted(member[by_code], np.arange(len(codes) + 1)),
            size=frame["antecedent_size"].to_numpy().astype(np.int64),
            frame=frame,
        )

    def matched(self, carts: Carts) -> tuple[np.ndarray, np.ndarray]:
        """The (case, rule) pairs whose whole antecedent is in the case's cart, ascending."""
        known = carts.item >= 0
        case, item = carts.case[known].astype(np.int64), carts.item[known]
        held = self.starts[item + 1] - self.starts[item]
        rule = self.rules_of[np.repeat(self.starts[item], held) + ragged_arange(held)]
        keys, hits = np.unique(np.repeat(case, held) * self.size.size + rule, return_counts=True)
        case, rule = np.divmod(keys, self.size.size)
        whole = hits == self.size[rule]
        return case[whole], rule[whole]


def _rule_offers(rules: _Rules, train: Baskets, carts: Carts, k: int, scoring: CartScoring) -> pd.DataFrame:
    """The cart block's offers for every cart: (case, product code, position).

    Every offer whose antecedent lies inside the cart and whose product is not
    in it, through the storefront's :func:`~pipeline.policy.offers.cart_block`.
    """
    case, rule = rules.matched(carts)
    offers = rules.frame.iloc[rule].reset_index(drop=True)
    offers["case"] = case
    offers = offers[~_in_cart(offers["case"].to_numpy(), offers["code"].to_numpy(), carts)]
    if scoring.history is not None and carts.customer is not None:
        offers = offers.assign(bought=scoring.history.bought(offers, carts))
    known = carts.item >= 0
    shown = cart_block(
        offers,
        carts.case[known],
        pd.Categorical.from_codes(carts.item[known], categories=pd.Index(train.items)),
        scoring.model,
        scoring.has_margins,
        scoring.margin_power,
        k,
        scoring.history_weight,
        scoring.variants,
        scoring.cart_variants,
    )
    return _first(shown[["case", "code"]], k)


@dataclass(frozen=True)
class _History:
    """``history.parquet``'s rows keyed once for every chunk of cases: (customer code, product code)."""

    customers: pd.Index
    keys: pd.Index
    orders: np.ndarray
    width: int

    @classmethod
    def of(cls, rows: pd.DataFrame, items: np.ndarray) -> _History:
        """``rows`` (customer_id, product_id, orders) against the training products ``items``."""
        customers = pd.Index(rows["customer_id"].astype(str).unique())
        width = len(items) + 1
        product = pd.Index(items).get_indexer(rows["product_id"].astype(str))
        keys = customers.get_indexer(rows["customer_id"].astype(str)).astype(np.int64) * width + product
        return cls(customers, pd.Index(keys), rows["orders"].to_numpy(dtype=np.int64), width)

    def bought(self, offers: pd.DataFrame, carts: Carts) -> np.ndarray:
        """Each offer's count in its cart's customer's history: their orders that held the product (0: none).

        ``offers`` name products by their training code (column ``code``)."""
        assert carts.customer is not None
        names = pd.Series(carts.customer, dtype=object)
        of_case = np.where(names.isna().to_numpy(), -1, self.customers.get_indexer(pd.Index(names.astype(str))))
        owner = of_case[offers["case"].to_numpy()]
        found = self.keys.get_indexer(owner.astype(np.int64) * self.width + offers["code"].to_numpy())
        return np.where((owner >= 0) & (found >= 0), self.orders[found], 0)


def _best_seller_strategy(train: Baskets, k: int) -> Strategy:
    """The ``k`` most bought products of the training period not in the case's cart."""
    return lambda carts: _best_seller_offers(train, carts, k)


def _best_seller_offers(train: Baskets, carts: Carts, k: int) -> pd.DataFrame:
    """The ``k`` most bought training products not in the cart, for every cart."""
    return _first(_best_sellers(train, carts, k), k)


def _best_sellers(
    train: Baskets,
    carts: Carts,
    k: int,
    category: np.ndarray | None = None,
    cases: np.ndarray | None = None,
    variants: VariantIndex | None = None,
) -> pd.DataFrame:
    """Candidate best sellers not in the cart, best first per cart: (case, code, order).

    With ``category`` (a category number per product code, -1 unknown), the
    best sellers of each cart product's category, each category's list cut
    to what any cart could need. ``cases``: only for these cases (default all).
    With ``variants``, none a variant of a product of its cart.
    """
    counts = train.item_counts()
    ranking = np.lexsort([np.arange(counts.size), -counts])
    need = k + int(np.bincount(carts.case, minlength=len(carts)).max(initial=0))
    cases = np.arange(len(carts)) if cases is None else cases
    if category is None:
        top = ranking[:need]
        case, code = np.repeat(cases, top.size), np.tile(top, len(cases))
    else:
        known = (carts.item >= 0) & np.isin(carts.case, cases)
        wanted = pd.DataFrame({"case": carts.case[known], "category": category[carts.item[known]]})
        wanted = wanted[wanted["category"] >= 0].drop_duplicates()
        listed = pd.DataFrame({"code": ranking, "category": category[ranking]})
        listed = listed[listed["category"] >= 0]
        listed = listed[listed.groupby("category", sort=False).cumcount() < need]
        pairs = wanted.merge(listed, on="category")
        case, code = pairs["case"].to_numpy(), pairs["code"].to_numpy()
    order = np.empty(counts.size, dtype=np.int64)
    order[ranking] = np.arange(counts.size)
    keep = ~_in_cart(case, code, carts)
    if variants is not None:
        keep &= ~_variants_of_cart(variants, carts, pd.Index(train.items), case, code)
    return pd.DataFrame({"case": case[keep], "code": code[keep], "order": order[code[keep]]})


def _storefront_offers(
    rule_offers: pd.DataFrame,
    train: Baskets,
    carts: Carts,
    k: int,
    catalog: pd.DataFrame | None,
    variants: VariantIndex | None,
) -> pd.DataFrame:
    """The cart block as the storefront runs it (``pipeline.read.lookup.offers_for_cart``): rule offers
    first, then best sellers of the cart's categories, then overall best sellers."""
    names = catalog.set_index("product_id")["category"] if catalog is not None else pd.Series(dtype=object)
    category = pd.factorize(names.reindex(train.items).to_numpy(dtype=object), use_na_sentinel=True)[0]
    # Only carts with fewer than k rule offers are filled up.
    short = np.flatnonzero(np.bincount(rule_offers["case"].to_numpy(dtype=np.int64), minlength=len(carts)) < k)
    fills = [_best_sellers(train, carts, k, c, short, variants) for c in (category, None)]
    return _tiered([rule_offers, *fills], k)


def _tiered(tiers: list[pd.DataFrame], k: int) -> pd.DataFrame:
    """Offers from several sources, each case's first source first (each in its ``position`` or ``order``),
    a product once, the first ``k``."""
    combined = pd.concat(
        [t.assign(tier=i, order=t["order"] if "order" in t else t["position"]) for i, t in enumerate(tiers)],
        ignore_index=True,
    )
    combined = combined.sort_values(["case", "tier", "order"], kind="stable").drop_duplicates(["case", "code"])
    return _first(combined[["case", "code"]], k)


def _buy_again_offers(bought: pd.DataFrame, train: Baskets, carts: Carts, k: int) -> pd.DataFrame:
    """Each case's customer's buy-again list, in its rank: (case, code, position)."""
    if carts.customer is None:
        return pd.DataFrame({"case": [], "code": [], "position": []}, dtype=np.int64)
    cases = pd.DataFrame({"case": np.arange(len(carts)), "customer_id": carts.customer}).dropna()
    cases["customer_id"] = cases["customer_id"].astype(str)
    listed = bought[["customer_id", "product_id", "rank"]].astype({"customer_id": str, "product_id": str})
    offers = cases.merge(listed, on="customer_id").sort_values(["case", "rank"], kind="stable")
    offers["code"] = pd.Index(train.items).get_indexer(offers["product_id"])
    return _first(offers.loc[offers["code"] >= 0, ["case", "code"]], k)


def _in_cart(case: np.ndarray, code: np.ndarray, carts: Carts) -> np.ndarray:
    """Whether each (case, product code) is in that case's cart: one lookup table over a chunk's pairs."""
    width = int(max(code.max(initial=0), carts.item.max(initial=0))) + 2
    return np.isin(
        case.astype(np.int64) * width + code + 1, carts.case.astype(np.int64) * width + carts.item + 1, kind="table"
    )


def _first(offers: pd.DataFrame, k: int) -> pd.DataFrame:
    """The first ``k`` offers of each case, in the order given."""
    position = offers.groupby("case", sort=False).cumcount()
    return offers[position.to_numpy() < k].assign(position=position[position < k].to_numpy() + 1)


def _average_order_value(lines: pd.DataFrame) -> float:
    """The test orders' mean value (quantity x unit price); NaN when the export has no prices."""
    if "unit_price" not in lines or lines["unit_price"].isna().all():
        return np.nan
    value = (lines["quantity"] * lines["unit_price"]).groupby(lines["order_id"]).sum()
    return float(value.mean())
