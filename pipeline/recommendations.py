"""Association rules in, ranked offers out: margin-aware, a few per antecedent.

The consequent's catalog margin decides whether an offer is worth showing
(``margin.min_margin``, ``margin.min_margin_rate``) and how it ranks. Scores
(``rank.by``):

==================== ===========================================================
incremental_margin   (confidence - support(consequent)) x margin: the margin the
(default)            offer adds over what the customer would have bought anyway.
                     The first factor is the uplift in purchase probability that
                     the antecedent brings (relevance); the second is the value.
expected_margin      confidence x margin
lift                 lift
confidence           confidence
==================== ===========================================================

Without a catalog, margin-based scores fall back to their probability factor
(``confidence - support(consequent)``, resp. ``confidence``), which a log line
says. With ``catalog.missing = "keep"``, rules recommending a product the
catalog lacks keep a null margin and a null margin-based score, and rank after
every scored offer of their antecedent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.baskets import ItemsetLabels
from pipeline.config import Config
from pipeline.itemsets import Itemsets
from pipeline.schema import TEXT, text_column, to_table

log = logging.getLogger(__name__)

ALL_SEGMENTS = "*"
#: Where an offer is shown (column ``placement``).
PRODUCT, CART, POST_PURCHASE = "product", "cart", "post_purchase"
#: What it offers (column ``kind``).
CROSS_SELL, UPSELL = "cross_sell", "upsell"
#: One ranking per group: rank 1 is the best offer of its group.
GROUP = ["segment", "placement", "kind", "antecedent_key"]


@dataclass(frozen=True)
class RankedRules:
    """Every rule that passed all filters, ranked per antecedent, and what was dropped.

    ``rules`` has the published ``rules`` columns except the ``antecedent``
    list, which :meth:`table` takes from the itemset labels by
    ``antecedent_row``.
    """

    rules: pd.DataFrame
    dropped: dict[str, int]

    def table(self, labels: ItemsetLabels, schema: pa.Schema, frame: pd.DataFrame | None = None) -> pa.Table:
        """``frame`` (default: every ranked rule) as an Arrow table of ``schema``."""
        frame = self.rules if frame is None else frame
        rows = pa.array(frame["antecedent_row"].to_numpy(dtype=np.int64))
        columns = [c for c in frame.columns if c in schema.names]
        return to_table(frame[columns], schema, {"antecedent": labels.lists.take(rows)})


def rank_rules(
    rules: pd.DataFrame,
    itemsets: Itemsets,
    labels: ItemsetLabels,
    items: np.ndarray,
    catalog: pd.DataFrame | None,
    config: Config,
    segment: str = ALL_SEGMENTS,
    placement: str | None = None,
) -> RankedRules:
    """Label rules with product ids, join margins, filter, score and rank them.

    ``rules`` comes from :func:`pipeline.rules.association_rules` (antecedent
    itemset rows and product codes); ``labels`` are the itemsets' product ids;
    ``items`` maps codes to product ids. Rows are marked with ``segment`` and
    ``placement`` (default: ``product`` for one-product antecedents, ``cart``
    for larger ones). Sorted by :data:`GROUP`, then rank.
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
    frame["expected_margin"] = frame["confidence"] * frame["consequent_margin"]
    frame["score"] = _score(frame, config.rank.by, has_catalog=catalog is not None)
    frame = rank_offers(frame, ["score", "confidence", "lift", "consequent"], [False, False, False, True])
    log.info(
        "ranked %d %s rules for %d antecedents by %s (dropped: %s)",
        len(frame),
        segment if segment != ALL_SEGMENTS else "global",
        frame["antecedent_key"].nunique(),
        config.rank.by,
        ", ".join(f"{k} {v}" for k, v in dropped.items()) or "none",
    )
    return RankedRules(rules=frame.drop(columns=["consequent_support"]), dropped=dropped)


def rank_offers(frame: pd.DataFrame, by: list[str], ascending: list[bool]) -> pd.DataFrame:
    """Sort by :data:`GROUP` then ``by`` and number each group's offers from 1 (column ``rank``)."""
    frame = frame.sort_values(
        [*GROUP, *by], ascending=[True] * len(GROUP) + ascending, na_position="last", kind="stable", ignore_index=True
    )
    frame["rank"] = frame.groupby(GROUP, sort=False).cumcount().astype("int32") + 1
    return frame


def top_recommendations(ranked: pd.DataFrame, top_k: int, run_id: str) -> pd.DataFrame:
    """At most ``top_k`` offers per group (:data:`GROUP`): the storefront table's rows."""
    table = ranked[ranked["rank"] <= top_k].reset_index(drop=True)
    table["run_id"] = pd.Series(run_id, index=table.index, dtype=TEXT)
    return table


def _with_margins(
    frame: pd.DataFrame, catalog: pd.DataFrame | None, config: Config
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Join the consequent's name, price and margin; apply the catalog and margin policies."""
    dropped: dict[str, int] = {}
    if catalog is None:
        log.info("no catalog: margin columns are null and margin filters are skipped")
        for column in ("consequent_name", "consequent_price", "consequent_margin"):
            frame[column] = pd.Series(np.nan if column != "consequent_name" else pd.NA, index=frame.index)
        frame["consequent_name"] = frame["consequent_name"].astype(TEXT)
        return frame, dropped
    product = catalog.set_index("product_id")
    consequent = frame["consequent"]
    known = consequent.isin(product.index)
    frame["consequent_name"] = consequent.map(product["name"]).astype(TEXT)
    frame["consequent_price"] = consequent.map(product["price"]).astype("float64")
    frame["consequent_margin"] = consequent.map(product["margin"]).astype("float64")
    if config.catalog.missing == "drop":
        dropped["consequent_not_in_catalog"] = int((~known).sum())
        frame = frame[known]
    margin, price = frame["consequent_margin"], frame["consequent_price"]
    low = pd.Series(False, index=frame.index)
    if config.margin.min_margin is not None:
        low |= (margin < config.margin.min_margin).fillna(False)
    if config.margin.min_margin_rate is not None:
        rate = (margin / price).where(price > 0)
        low |= (rate < config.margin.min_margin_rate).fillna(False)
    dropped["margin_below_minimum"] = int(low.sum())
    return frame[~low].copy(), dropped


def _score(frame: pd.DataFrame, by: str, has_catalog: bool) -> pd.Series:
    if by in ("lift", "confidence"):
        return frame[by].astype("float64")
    probability = frame["confidence"]
    if by == "incremental_margin":
        probability = frame["confidence"] - frame["consequent_support"]
    if not has_catalog:
        log.info("rank.by = %s without a catalog: scoring by the probability factor alone", by)
        return probability.astype("float64")
    return (probability * frame["consequent_margin"]).astype("float64")
