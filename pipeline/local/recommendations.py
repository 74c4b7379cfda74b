"""Association rules in, ranked offers out, in this process: a few per antecedent.

Labels rules with product ids, joins the consequent's catalog name, price and
margin, and applies the offer policy (:mod:`pipeline.policy.offers`: the
catalog and margin filters, the score of ``rank.by``, the order within each
group and the top-k) to pandas columns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.config import Config
from pipeline.contract.schema import TEXT, text_column, to_table
from pipeline.contract.vocabulary import ALL_SEGMENTS, CART, CROSS_SELL, GROUP, PRODUCT
from pipeline.local.baskets import ItemsetLabels
from pipeline.local.catalog import knows_margins
from pipeline.local.itemsets import Itemsets
from pipeline.policy.model import ItemModel
from pipeline.policy.names import described_products
from pipeline.policy.offers import (
    RULE_ORDER,
    cart_candidates,
    expected_margin,
    margin_too_low,
    placement_scores,
    shown,
)
from pipeline.policy.variants import Keys, variant_offers, variant_placements

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankedRules:
    """Every rule that passed all filters, ranked per antecedent, and what was dropped.

    ``rules`` has the published ``rules`` columns except the ``antecedent``
    list, which :meth:`table` takes from ``labels`` (the antecedent itemsets'
    product ids) by ``antecedent_row``.
    """

    rules: pd.DataFrame
    dropped: dict[str, int]
    labels: ItemsetLabels

    def table(self, schema: pa.Schema, frame: pd.DataFrame | None = None) -> pa.Table:
        """``frame`` (default: every ranked rule) as an Arrow table of ``schema``."""
        frame = self.rules if frame is None else frame
        rows = pa.array(frame["antecedent_row"].to_numpy(dtype=np.int64))
        columns = [c for c in frame.columns if c in schema.names]
        return to_table(frame[columns], schema, {"antecedent": self.labels.lists.take(rows)})


def rank_rules(
    rules: pd.DataFrame,
    itemsets: Itemsets,
    labels: ItemsetLabels,
    items: np.ndarray,
    catalog: pd.DataFrame | None,
    config: Config,
    segment: str = ALL_SEGMENTS,
    placement: str | None = None,
    variants: Mapping[str, Keys] | None = None,
    model: ItemModel | None = None,
    names: pd.Series | None = None,
) -> RankedRules:
    """Label rules with product ids, join margins, filter, score and rank them.

    ``rules`` comes from :func:`pipeline.local.rules.association_rules` (antecedent
    itemset rows and product codes); ``labels`` are the itemsets' product ids;
    ``items`` maps codes to product ids. Rows are marked with ``segment`` and
    ``placement`` (default: ``product`` for one-product antecedents, ``cart``
    for larger ones; under ``rank.drop_variants`` a colour or size variant of its antecedent goes to the
    cart or is dropped: :func:`pipeline.policy.variants.variant_placements`). ``variants`` are the
    catalog's variant keys (:func:`pipeline.local.catalog.product_variants`); ``model`` the segment's item model
    (``model_weight``; None: null weights); ``names`` the products' names (product id -> name,
    :func:`pipeline.policy.names.described_products`; None: the catalog's). Sorted by :data:`GROUP`, then rank.
    """
    antecedent = rules["antecedent"].to_numpy(dtype=np.int64)
    size = itemsets.length[antecedent]
    where = np.where(size == 1, PRODUCT, CART) if placement is None else np.full(len(rules), placement)
    frame = pd.DataFrame(
        {
            "segment": text_column(segment, len(rules)),
            "placement": text_column(where, len(rules)),
            "kind": text_column(CROSS_SELL, len(rules)),
            "antecedent_row": antecedent,
            "antecedent_key": pd.array(
                labels.keys.take(pa.array(antecedent)).to_numpy(zero_copy_only=False), dtype=TEXT
            ),
            "antecedent_size": size.astype(np.int32),
            "consequent": pd.array(items[rules["consequent"].to_numpy()], dtype=TEXT),
        }
    )
    frame = pd.concat([frame, rules.drop(columns=["antecedent", "consequent"])], axis=1)
    frame, dropped = _with_margins(frame, catalog, config)
    if names is None:
        names = described_products(catalog, None).set_index("product_id")["name"]
    frame["consequent_name"] = frame["consequent"].map(names).astype(TEXT)
    if config.rank.drop_variants:
        variant = variant_offers(frame["antecedent_key"].to_numpy(), frame["consequent"].to_numpy(), variants or {})
        # Only the variants move: a few rows among millions of pair rules.
        rows = np.flatnonzero(variant)
        placed = variant_placements(
            frame["placement"].iloc[rows].to_numpy(dtype=object), variant[rows], config.rank.cart_variants
        )
        dropped["variant_of_antecedent"] = int((placed == "").sum())
        if rows.size:
            placements = frame["placement"].copy()
            placements.iloc[rows] = placed
            kept = np.ones(len(frame), dtype=bool)
            kept[rows[placed == ""]] = False
            frame = frame.assign(placement=placements)[kept]
    keys, consequents = frame["antecedent_key"].to_numpy(dtype=object), frame["consequent"].to_numpy(dtype=object)
    frame["model_weight"] = np.nan if model is None else model.rule_weights(keys, consequents)
    frame["expected_margin"] = expected_margin(frame["confidence"].to_numpy(), frame["consequent_margin"].to_numpy())
    has_margins = knows_margins(catalog)
    if not has_margins and config.rank.by.endswith("_margin"):
        log.info("rank.by = %s without catalog margins: scoring by the probability factor alone", config.rank.by)
    frame["score"], cart_score = placement_scores(
        config.rank,
        frame["placement"].to_numpy(dtype=object),
        frame["confidence"].to_numpy(dtype=np.float64),
        frame["consequent_support"].to_numpy(dtype=np.float64),
        frame["lift"].to_numpy(dtype=np.float64),
        frame["consequent_margin"].to_numpy(dtype=np.float64),
        has_margins,
        frame["jaccard"].to_numpy(dtype=np.float64),
        None if model is None else frame["model_weight"].to_numpy(dtype=np.float64),
    )
    if config.rank.paged:
        frame = _with_cart_candidates(frame.assign(_cart_score=cart_score), config.output.top_k)
    frame = rank_offers(frame, RULE_ORDER)
    log.info(
        "ranked %d %s rules for %d antecedents by %s, product pages by %s (dropped: %s)",
        len(frame),
        segment if segment != ALL_SEGMENTS else "global",
        frame["antecedent_key"].nunique(),
        config.rank.by,
        config.rank.page,
        ", ".join(f"{k} {v}" for k, v in dropped.items()) or "none",
    )
    return RankedRules(rules=frame.drop(columns=["consequent_support"]), dropped=dropped, labels=labels)


def _with_cart_candidates(frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """``frame`` and, as ``cart`` rows of their one product scored by ``rank.by`` (``_cart_score``), the
    product-page offers the cart block needs besides the page's (:func:`cart_candidates`)."""
    pages = frame[(frame["placement"] == PRODUCT).to_numpy()]
    by_page = rank_offers(pages, RULE_ORDER)
    by_cart = rank_offers(by_page.assign(_page_rank=by_page["rank"], score=by_page["_cart_score"]), RULE_ORDER)
    picked = by_cart[cart_candidates(by_cart["_page_rank"].to_numpy(), by_cart["rank"].to_numpy(), top_k)]
    copies = picked.drop(columns=["rank", "_page_rank"]).assign(placement=CART)
    copies["placement"] = copies["placement"].astype(frame["placement"].dtype)
    return pd.concat([frame, copies], ignore_index=True).drop(columns="_cart_score")


def rank_offers(frame: pd.DataFrame, order: tuple[tuple[str, bool], ...]) -> pd.DataFrame:
    """Sort by :data:`GROUP` then ``order`` ((column, ascending), nulls last) and number each group's
    offers from 1 (column ``rank``)."""
    frame = frame.sort_values(
        [*GROUP, *(c for c, _ in order)],
        ascending=[True] * len(GROUP) + [a for _, a in order],
        na_position="last",
        kind="stable",
        ignore_index=True,
    )
    frame["rank"] = frame.groupby(list(GROUP), sort=False).cumcount().astype("int32") + 1
    return frame


def top_recommendations(ranked: pd.DataFrame, top_k: int, run_id: str) -> pd.DataFrame:
    """At most ``top_k`` offers per group (:data:`GROUP`): the storefront table's rows."""
    table = ranked[shown(ranked["rank"].to_numpy(), top_k)].reset_index(drop=True)
    table["run_id"] = pd.Series(run_id, index=table.index, dtype=TEXT)
    return table


def _with_margins(
    frame: pd.DataFrame, catalog: pd.DataFrame | None, config: Config
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Join the consequent's price and margin; apply the catalog and margin policies."""
    dropped: dict[str, int] = {}
    if catalog is None:
        log.info("no catalog: margin columns are null and margin filters are skipped")
        for column in ("consequent_price", "consequent_margin"):
            frame[column] = pd.Series(np.nan, index=frame.index)
        return frame, dropped
    product = catalog.set_index("product_id")
    consequent = frame["consequent"]
    known = consequent.isin(product.index)
    frame["consequent_price"] = consequent.map(product["price"]).astype("float64")
    frame["consequent_margin"] = consequent.map(product["margin"]).astype("float64")
    if config.catalog.missing == "drop":
        dropped["consequent_not_in_catalog"] = int((~known).sum())
        frame = frame[known]
    low = margin_too_low(
        frame["consequent_margin"].to_numpy(dtype=np.float64),
        frame["consequent_price"].to_numpy(dtype=np.float64),
        config.margin,
    )
    dropped["margin_below_minimum"] = int(low.sum())
    return frame[~low].copy(), dropped
