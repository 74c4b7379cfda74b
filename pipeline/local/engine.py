"""The local engine: the operations of :class:`pipeline.engine.OfferEngine` in this process.

Baskets are a sparse matrix (:class:`~pipeline.local.baskets.Baskets`),
itemsets numpy arrays with their Arrow labels, rules and offers pandas frames;
the published tables are Arrow tables. :func:`local_tables` turns prepared
inputs and the segments' rows into the run's tables and counts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Config, MineConfig
from pipeline.contract.checks import table_problems
from pipeline.contract.counts import RunCounts
from pipeline.contract.manifest import InputFile
from pipeline.contract.schema import (
    BUNDLES,
    BUY_AGAIN,
    HISTORY,
    ITEMSETS,
    NEIGHBOURS,
    PAIRS,
    RECOMMENDATIONS,
    RULES,
    to_table,
)
from pipeline.contract.vocabulary import GROUP
from pipeline.engine import MISSING_LISTED, MinedRules, Ranked, RunTables, SegmentTables
from pipeline.local.baskets import Baskets, ItemsetLabels, itemset_labels, pair_customers
from pipeline.local.bundles import bundle_table
from pipeline.local.buy_again import customer_lists
from pipeline.local.catalog import known_margins, product_variants
from pipeline.local.clean import CleanResult
from pipeline.local.itemsets import Itemsets, frequent_itemsets, pair_itemsets
from pipeline.local.postpurchase import post_purchase_rules
from pipeline.local.products import product_table
from pipeline.local.recommendations import RankedRules, rank_rules, top_recommendations
from pipeline.local.rules import association_rules
from pipeline.local.upsell import upsell_offers
from pipeline.policy.model import Gram, ItemModel, model_products
from pipeline.policy.names import described_products
from pipeline.policy.rules import enough_customers


@dataclass(frozen=True)
class LabelledItemsets:
    """Frequent itemsets and their product ids (lists and ``|``-joined keys), row for row."""

    itemsets: Itemsets
    labels: ItemsetLabels


class LocalEngine:
    """Moves one run's data in pandas, numpy and pyfim; ``items`` maps product codes to ids."""

    def __init__(
        self, config: Config, items: np.ndarray, catalog: pd.DataFrame | None, names: pd.Series | None
    ) -> None:
        self.config = config
        self.items = items
        self.catalog = catalog
        # The products' names: the catalog's, else the export's (``names``, from :attr:`Baskets.names`).
        self.described = described_products(catalog, names)
        self._names = self.described.set_index("product_id")["name"]
        self.variants = product_variants(self.described)
        # One-product itemsets, row = product code: post-purchase and up-sell antecedents.
        self._singles = itemset_labels(
            np.arange(len(items), dtype=np.int32)[:, None], np.ones(len(items), np.int32), items
        )

    def with_config(self, config: Config) -> LocalEngine:
        """The same data with other settings (``basket tune``, ``basket evaluate``'s variants).

        The catalog's variant keys and the one-product labels depend on the data only: shared, not rebuilt.
        """
        other = copy.copy(self)
        other.config = config
        return other

    def segment_sizes(self, baskets: Baskets) -> dict[str, int]:
        values = baskets.order_info["segment"].astype(object)
        return {str(value): int(n) for value, n in values.value_counts().items()}

    def segment(self, baskets: Baskets, value: str) -> Baskets:
        return baskets.subset((baskets.order_info["segment"].astype(object) == value).to_numpy())

    def basket_count(self, baskets: Baskets) -> int:
        return baskets.count

    def frequent_itemsets(self, baskets: Baskets, mine: MineConfig) -> LabelledItemsets:
        itemsets = frequent_itemsets(baskets, mine)
        return LabelledItemsets(itemsets, itemset_labels(itemsets.codes, itemsets.length, self.items))

    def itemset_count(self, itemsets: LabelledItemsets) -> int:
        return len(itemsets.itemsets)

    def association_rules(self, itemsets: LabelledItemsets) -> pd.DataFrame:
        return association_rules(itemsets.itemsets, self.config.rules)

    def rule_count(self, rules: pd.DataFrame) -> int:
        return len(rules)

    def pair_itemsets(self, baskets: Baskets, min_count: int, with_gram: bool) -> tuple[LabelledItemsets, Gram | None]:
        chosen = self._model_products(baskets) if with_gram else None
        itemsets, gram = pair_itemsets(baskets, min_count, chosen)
        labelled = LabelledItemsets(itemsets, itemset_labels(itemsets.codes, itemsets.length, self.items))
        return labelled, None if gram is None or chosen is None else (gram, self.items[chosen])

    def customer_floor(
        self, rules: pd.DataFrame, itemsets: LabelledItemsets, baskets: Baskets
    ) -> tuple[pd.DataFrame, int]:
        antecedent = itemsets.itemsets.codes[rules["antecedent"].to_numpy(dtype=np.int64), 0].astype(np.int64)
        consequent = rules["consequent"].to_numpy(dtype=np.int64)
        customers = pair_customers(baskets, antecedent, consequent, rules["pair_count"].to_numpy(dtype=np.int64))
        keep = enough_customers(customers, self.config.pairs)
        return rules[keep].reset_index(drop=True), int((~keep).sum())

    def cart_rules(self, rules: pd.DataFrame, itemsets: LabelledItemsets) -> pd.DataFrame:
        size = itemsets.itemsets.length[rules["antecedent"].to_numpy(dtype=np.int64)]
        return rules[size >= 2].reset_index(drop=True)

    def model_gram(self, baskets: Baskets) -> Gram:
        chosen = self._model_products(baskets)
        columns = baskets.matrix[:, chosen].astype(np.float64).tocsc()
        return (columns.T @ columns).toarray(), self.items[chosen]

    def _model_products(self, baskets: Baskets) -> np.ndarray:
        return model_products(self.items, baskets.item_counts(), self.config.model)

    def ranked_rules(
        self,
        rules: pd.DataFrame,
        itemsets: LabelledItemsets,
        segment: str,
        placement: str | None,
        model: ItemModel | None,
    ) -> Ranked:
        ranked = rank_rules(
            rules,
            itemsets.itemsets,
            itemsets.labels,
            self.items,
            self.catalog,
            self.config,
            segment,
            placement,
            self.variants,
            model,
            self._names,
        )
        return Ranked(ranked, ranked.dropped)

    def post_purchase_rules(self, baskets: Baskets, mine: MineConfig) -> tuple[pd.DataFrame, LabelledItemsets] | None:
        found = post_purchase_rules(baskets, self.config.model_copy(update={"mine": mine}))
        if found is None:
            return None
        return found.rules, LabelledItemsets(found.antecedents, self._singles)

    def upsell_offers(self, baskets: Baskets, segment: str) -> Ranked:
        offers = upsell_offers(baskets, self.catalog, self.config, segment)
        return Ranked(RankedRules(offers, {}, self._singles))

    def recommendations(self, ranked: Ranked, run_id: str) -> pa.Table:
        rows: RankedRules = ranked.rows
        return rows.table(RECOMMENDATIONS, top_recommendations(rows.rules, self.config.output.top_k, run_id))

    def rules_table(self, ranked: Ranked) -> pa.Table:
        rows: RankedRules = ranked.rows
        return rows.table(RULES)

    def bundles(self, itemsets: LabelledItemsets, segment: str) -> pa.Table:
        return bundle_table(itemsets.itemsets, itemsets.labels, self.items, self.catalog, self.config, segment)

    def products(self, baskets: Baskets, segment: str) -> pa.Table:
        return product_table(baskets, self.described, segment)

    def customer_lists(self, baskets: Baskets, run_id: str, top_k: int, depth: int) -> tuple[pa.Table, pa.Table]:
        return customer_lists(baskets, self._names, top_k, depth, run_id)


def local_tables(
    run_id: str,
    cleaned: CleanResult,
    baskets: Baskets,
    files: list[InputFile],
    catalog: pd.DataFrame | None,
    missing: list[str],
    segments: list[SegmentTables],
) -> RunTables:
    """The run's tables, in the published order, and its counts; the rejects are copied from cleaning's
    file when the run is written."""
    overall = segments[0]
    tables: dict[str, Any] = {
        **offer_tables(segments),
        "itemsets": _itemsets_table(overall.itemsets),
        "pairs": _pairs_table(overall.mined, baskets.items),
        "rejects": cleaned.rejects.publish,
    }
    recommendations = tables["recommendations"]
    counts = RunCounts(
        rows_in=cleaned.rows_in,
        rejected=cleaned.counts,
        rows_rejected=cleaned.rejects.rows,
        rows_clean=baskets.lines,
        funnel=cleaned.funnel(),
        basket_sizes=baskets.size_histogram(),
        baskets=baskets.count,
        products=len(baskets.items),
        min_count=overall.itemsets.itemsets.min_count,
        itemsets=len(overall.itemsets.itemsets),
        rules_mined=overall.rules_mined,
        rules_dropped=overall.dropped,
        rules=tables["rules"].num_rows,
        recommendations=recommendations.num_rows,
        antecedents=len(pc.unique(recommendations["antecedent_key"])),
        by_placement=_value_counts(recommendations, ["placement", "kind"]),
        segments={s.segment: s.baskets for s in segments},
        bundles=tables["bundles"].num_rows,
        buy_again=tables["buy_again"].num_rows,
        history=tables["history"].num_rows,
        neighbours=tables["neighbours"].num_rows,
        catalog_products=None if catalog is None else len(catalog),
        catalog_margins=known_margins(catalog),
        mining={"method": overall.itemsets.itemsets.method, "why": overall.itemsets.itemsets.why},
        products_missing_from_catalog=len(missing),
        products_missing_listed=missing[:MISSING_LISTED],
        covered_products=sorted(pc.unique(recommendations["consequent"]).to_pylist()),
    )
    # The rejects' file was written in their schema (RejectsFile): the tables in memory are checked.
    in_memory = {name: table for name, table in tables.items() if isinstance(table, pa.Table)}
    return RunTables(
        run_id, cleaned.as_of, files, counts, tables, table_problems(in_memory), release=cleaned.rejects.close
    )


def offer_tables(segments: list[SegmentTables]) -> dict[str, pa.Table]:
    """The segments' recommendations, rules, bundles and products, each one table in the published order."""
    return {
        "recommendations": _sorted(pa.concat_tables(t for s in segments for t in s.recommendations)),
        "rules": _sorted(pa.concat_tables(t for s in segments for t in s.rules)),
        "bundles": pa.concat_tables(s.bundles if s.bundles is not None else BUNDLES.empty_table() for s in segments),
        "products": pa.concat_tables(s.products for s in segments if s.products is not None),
        "buy_again": segments[0].buy_again if segments[0].buy_again is not None else BUY_AGAIN.empty_table(),
        "history": segments[0].history if segments[0].history is not None else HISTORY.empty_table(),
        "neighbours": neighbours(segments),
    }


def neighbours(segments: list[SegmentTables]) -> pa.Table:
    """The segments' item models (``neighbours.parquet``): ``*`` first, then by segment, as they come."""
    return pa.concat_tables([NEIGHBOURS.empty_table(), *(s.neighbours for s in segments if s.neighbours is not None)])


def _sorted(table: pa.Table) -> pa.Table:
    """Rows in the published order: by group (segment, placement, kind, antecedent), then rank."""
    return table.sort_by([(name, "ascending") for name in (*GROUP, "rank")])


def _value_counts(table: pa.Table, columns: list[str]) -> dict[str, int]:
    """Rows per combination of ``columns``, keyed ``a/b``."""
    grouped = table.group_by(columns).aggregate([([], "count_all")]).to_pylist()
    return dict(sorted(("/".join(str(row[c]) for c in columns), row["count_all"]) for row in grouped))


def _pairs_table(mined: MinedRules | None, items: np.ndarray) -> pa.Table:
    """The product page's pairs of every basket (``pairs.parquet``), by product ids."""
    if mined is None or mined.pairs is None:
        return PAIRS.empty_table()
    itemsets = mined.pairs.itemsets
    two = itemsets.length == 2
    # Codes ascend within an itemset and number the products in id order: product_a < product_b.
    frame = pd.DataFrame(
        {
            "product_a": items[itemsets.codes[two, 0]],
            "product_b": items[itemsets.codes[two, 1]],
            "count": itemsets.count[two],
            "support": itemsets.count[two] / max(itemsets.baskets, 1),
        }
    )
    return to_table(frame, PAIRS).sort_by([("product_a", "ascending"), ("product_b", "ascending")])


def _itemsets_table(found: LabelledItemsets) -> pa.Table:
    """The frequent itemsets in the published layout."""
    itemsets = found.itemsets
    frame = pd.DataFrame(
        {
            "length": itemsets.length,
            "count": itemsets.count,
            "support": itemsets.count / max(itemsets.baskets, 1),
        }
    )
    return to_table(frame, ITEMSETS, {"itemset": found.labels.lists, "itemset_key": found.labels.keys})
