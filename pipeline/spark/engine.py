"""The Spark engine: the operations of :class:`pipeline.engine.OfferEngine` on Spark DataFrames.

:func:`prepare_spark` reads, cleans and groups the exports into baskets on the
cluster; :class:`SparkEngine` runs each operation of the chain
(:func:`pipeline.flow.offers.offer_segments`) with the policy's kernels on the
executors; the tables go back to :func:`pipeline.flow.run.run` as writers:
gating, the run directory, the manifest and the atomic switch of ``latest``
are the same code for both engines. What reaches the driver: counts, the
histogram of basket sizes, the covered products (what the change gate
compares) and at most ``MISSING_LISTED`` product ids missing from the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.config import Config, MineConfig
from pipeline.contract.checks import METRIC_TABLES, METRICS, metric_problems
from pipeline.contract.counts import RunCounts
from pipeline.contract.files import TableWriter
from pipeline.contract.manifest import InputFile
from pipeline.contract.schema import (
    BUNDLES,
    BUY_AGAIN,
    HISTORY,
    ITEMSETS,
    PAIRS,
    PRODUCTS,
    RECOMMENDATIONS,
    REJECTS,
    RULES,
)
from pipeline.contract.vocabulary import ALL_SEGMENTS, GROUP, KEY_SEPARATOR
from pipeline.engine import MISSING_LISTED, Prepared, Ranked, RunTables, SegmentTables
from pipeline.local.catalog import known_margins, knows_margins, product_variants, read_catalog
from pipeline.local.clean import cleaning_funnel
from pipeline.local.engine import neighbours
from pipeline.local.ingest import file_sha256
from pipeline.policy.guards import no_baskets_error
from pipeline.policy.model import Gram, ItemModel
from pipeline.policy.names import described_products
from pipeline.policy.offers import UPSELL_ORDER
from pipeline.policy.rules import enough_customers
from pipeline.policy.variants import Keys
from pipeline.spark.kernels import with_kernel
from pipeline.spark.lines import SparkLines, clean_lines, export_names
from pipeline.spark.mining import (
    SparkItemsets,
    association_rules,
    baskets_from_lines,
    frequent_itemsets,
    model_gram,
    pair_customers,
    pair_itemsets,
)
from pipeline.spark.offers import (
    bundle_table,
    catalog_frame,
    customer_lists,
    described_frame,
    product_table,
    rank_offers,
    ranked_rules,
    top_recommendations,
)
from pipeline.spark.postpurchase import post_purchase_rules
from pipeline.spark.session import aggregate_row, spark_session
from pipeline.spark.tables import table_writer
from pipeline.spark.upsell import upsell_offers
from pipeline.stages import StageTimer

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SparkBaskets:
    """Baskets on the cluster (``order_id``, ``items``, the order columns), cached, and how many."""

    frame: DataFrame
    count: int


class SparkEngine:
    """Moves one run's data on Spark; the catalog is a small broadcast DataFrame."""

    def __init__(
        self,
        config: Config,
        catalog: DataFrame | None,
        described: DataFrame,
        variants: dict[str, Keys],
        has_margins: bool,
    ) -> None:
        self.config = config
        self.catalog = catalog
        #: The products' names, categories and variant groups (:func:`~pipeline.spark.offers.described_frame`).
        self.described = described
        self.variants = variants
        #: Whether the catalog knows any margin (:func:`pipeline.local.catalog.knows_margins`).
        self.has_margins = has_margins

    def with_config(self, config: Config) -> SparkEngine:
        return SparkEngine(config, self.catalog, self.described, self.variants, self.has_margins)

    def segment_sizes(self, baskets: SparkBaskets) -> dict[str, int]:
        from pyspark.sql import functions as F

        found = baskets.frame.where(F.col("segment").isNotNull()).groupBy("segment").count().collect()
        return {str(value): int(n) for value, n in found}

    def segment(self, baskets: SparkBaskets, value: str) -> SparkBaskets:
        from pyspark.sql import functions as F

        frame = baskets.frame.where(F.col("segment") == value)
        return SparkBaskets(frame, frame.count())

    def basket_count(self, baskets: SparkBaskets) -> int:
        return baskets.count

    def frequent_itemsets(self, baskets: SparkBaskets, mine: MineConfig) -> SparkItemsets:
        return frequent_itemsets(baskets.frame, baskets.count, mine, self.config.spark)

    def itemset_count(self, itemsets: SparkItemsets) -> int:
        return itemsets.count

    def association_rules(self, itemsets: SparkItemsets) -> DataFrame:
        return association_rules(itemsets, self.config.rules).cache()

    def rule_count(self, rules: DataFrame) -> int:
        return int(rules.count())

    def pair_itemsets(
        self, baskets: SparkBaskets, min_count: int, with_gram: bool
    ) -> tuple[SparkItemsets, Gram | None]:
        return pair_itemsets(baskets.frame, baskets.count, min_count, self.config.model if with_gram else None)

    def customer_floor(self, rules: DataFrame, itemsets: SparkItemsets, baskets: SparkBaskets) -> tuple[DataFrame, int]:
        from pyspark.sql import functions as F

        pairs = self.config.pairs

        def floor(customers: np.ndarray) -> dict[str, np.ndarray]:
            return {"_keep": enough_customers(customers, pairs)}

        counted = with_kernel(pair_customers(rules, itemsets.frame), floor, ["customers"], {"_keep": "boolean"})
        counted = counted.cache()
        kept = counted.where("_keep").drop("_keep", "customers").cache()
        dropped = int(counted.where(~F.col("_keep")).count())
        return kept, dropped

    def cart_rules(self, rules: DataFrame, itemsets: SparkItemsets) -> DataFrame:
        from pyspark.sql import functions as F

        return rules.where(F.size("antecedent") >= 2)

    def model_gram(self, baskets: SparkBaskets) -> Gram:
        return model_gram(baskets.frame, self.config.model)

    def ranked_rules(
        self, rules: DataFrame, itemsets: Any, segment: str, placement: str | None, model: ItemModel | None
    ) -> Ranked:
        ranked, dropped = ranked_rules(
            rules, self.catalog, self.described, self.config, segment, placement, self.variants, model, self.has_margins
        )
        return Ranked(ranked.cache(), dropped)

    def post_purchase_rules(self, baskets: SparkBaskets, mine: MineConfig) -> tuple[DataFrame, None] | None:
        found = post_purchase_rules(baskets.frame, self.config.model_copy(update={"mine": mine}))
        return None if found is None else (found, None)

    def upsell_offers(self, baskets: SparkBaskets, segment: str) -> Ranked | None:
        offers = upsell_offers(baskets.frame, baskets.count, self.catalog, self.config, segment)
        return None if offers is None else Ranked(rank_offers(offers, UPSELL_ORDER))

    def recommendations(self, ranked: Ranked, run_id: str) -> DataFrame:
        return top_recommendations(ranked.rows, self.config.output.top_k, run_id)

    def rules_table(self, ranked: Ranked) -> DataFrame:
        return ranked.rows

    def bundles(self, itemsets: SparkItemsets, segment: str) -> DataFrame | None:
        return bundle_table(itemsets, self.catalog, self.config, segment)

    def products(self, baskets: SparkBaskets, segment: str) -> DataFrame:
        return product_table(baskets.frame, self.described, segment)

    def customer_lists(self, baskets: SparkBaskets, run_id: str, top_k: int, depth: int) -> tuple[DataFrame, DataFrame]:
        return customer_lists(baskets.frame, self.described, top_k, depth, run_id)


def prepare_spark(config: Config, stage: StageTimer) -> Prepared:
    """A Spark session with the exports read, cleaned and grouped into baskets on the cluster."""
    spark = spark_session(config.spark)
    with stage("ingest+clean") as done:
        lines = clean_lines(spark, config)
        done["rows"] = lines.rows_in
    with stage("catalog"):
        catalog_pd = read_catalog(config.catalog, config.clean.id_case)
        catalog = catalog_frame(spark, catalog_pd)
    files = list(lines.files)
    if catalog_pd is not None and config.catalog.path is not None:
        path = Path(config.catalog.path)
        files.append(InputFile(str(path), path.stat().st_size, file_sha256(path), len(catalog_pd)))
    with stage("baskets") as done:
        frame = baskets_from_lines(lines.kept).cache()
        baskets = SparkBaskets(frame, int(frame.count()))
        done["baskets"] = baskets.count
    if baskets.count == 0:
        names = ", ".join(f.path for f in files[: len(files) - (catalog_pd is not None)])
        raise no_baskets_error(names, lines.rows_in, lines.counts)

    def tables(run_id: str, segments: list[SegmentTables]) -> RunTables:
        return _run_tables(run_id, lines, baskets, files, catalog, catalog_pd, segments)

    described = described_products(catalog_pd, export_names(lines.kept))
    engine = SparkEngine(
        config, catalog, described_frame(spark, described), product_variants(described), knows_margins(catalog_pd)
    )
    return Prepared(engine, baskets, files, tables)


def _run_tables(
    run_id: str,
    lines: SparkLines,
    baskets: SparkBaskets,
    files: list[InputFile],
    catalog: DataFrame | None,
    catalog_pd: pd.DataFrame | None,
    segments: list[SegmentTables],
) -> RunTables:
    """The run's tables as writers that the executors run at publish time, and its counts."""
    from pyspark.sql import functions as F

    overall = segments[0]
    # Computed once here: the counts, the checks and the writers all read them.
    rules = _union(r for s in segments for r in s.rules).cache()
    recommendations = _union(r for s in segments for r in s.recommendations).cache()
    found_bundles = [s.bundles for s in segments if s.bundles is not None]
    bundles = _union(found_bundles).cache() if found_bundles else None
    buy_again, history = segments[0].buy_again, segments[0].history
    missing, missing_listed = _missing(baskets.frame, catalog, MISSING_LISTED)
    counts = _counts(
        lines, baskets, overall, rules, recommendations, bundles, catalog_pd, segments, missing, missing_listed
    )
    problems = metric_problems(_non_finite({"recommendations": recommendations, "rules": rules}))
    order = [*GROUP, "rank"]
    # Segment "*" first, the others by name: the order the local engine concatenates them in.
    by_segment: list[str | Column] = [F.col("segment") != ALL_SEGMENTS, "segment"]
    itemsets: SparkItemsets = overall.itemsets
    tables = {
        "recommendations": table_writer(recommendations, RECOMMENDATIONS, order),
        "rules": table_writer(rules, RULES, order),
        "itemsets": table_writer(
            itemsets.frame.select(
                F.col("items").alias("itemset"),
                F.array_join("items", KEY_SEPARATOR).alias("itemset_key"),
                "length",
                "count",
                (F.col("count") / F.lit(max(baskets.count, 1))).alias("support"),
            ),
            ITEMSETS,
            ["length", "itemset"],
        ),
        "pairs": _pairs_table(overall, baskets.count),
        "bundles": BUNDLES.empty_table() if bundles is None else table_writer(bundles, BUNDLES, [*by_segment, "rank"]),
        "products": table_writer(
            _union(s.products for s in segments if s.products is not None),
            PRODUCTS,
            [*by_segment, F.col("category").asc_nulls_last(), F.desc("baskets"), "product_id"],
        ),
        "buy_again": BUY_AGAIN.empty_table()
        if buy_again is None
        else table_writer(buy_again, BUY_AGAIN, ["customer_id", "rank"]),
        "history": HISTORY.empty_table()
        if history is None
        else table_writer(history, HISTORY, ["customer_id", "rank"]),
        "neighbours": neighbours(segments),
        "rejects": table_writer(lines.rejects, REJECTS, ["file_index", "source_row"]),
    }
    # Every table the run cached, dropped once the writers ran: the session may outlive the run.
    release = lines.lines.sparkSession.catalog.clearCache
    return RunTables(run_id, lines.as_of, files, counts, tables, problems, release)


def _pairs_table(overall: SegmentTables, baskets: int) -> pa.Table | TableWriter:
    """The product page's pairs of every basket (``pairs.parquet``), as the local engine writes them."""
    from pyspark.sql import functions as F

    if overall.mined is None or overall.mined.pairs is None:
        return PAIRS.empty_table()
    pairs: SparkItemsets = overall.mined.pairs
    frame = pairs.frame.where(F.col("length") == 2).select(
        F.col("items")[0].alias("product_a"),
        F.col("items")[1].alias("product_b"),
        "count",
        (F.col("count") / F.lit(max(baskets, 1))).alias("support"),
    )
    return table_writer(frame, PAIRS, ["product_a", "product_b"])


def _counts(
    lines: SparkLines,
    baskets: SparkBaskets,
    overall: SegmentTables,
    rules: DataFrame,
    recommendations: DataFrame,
    bundles: DataFrame | None,
    catalog_pd: pd.DataFrame | None,
    segments: list[SegmentTables],
    missing: int,
    missing_listed: list[str],
) -> RunCounts:
    """The manifest's counts, as the local engine counts them, from small aggregations."""
    from pyspark.sql import functions as F

    rejected = sum(lines.counts.values())
    sizes: dict[int, int] = dict(
        baskets.frame.groupBy(F.least(F.size("items"), F.lit(101)).alias("s")).count().collect()
    )
    histogram = {str(k): int(sizes[k]) for k in sorted(sizes) if k <= 100}
    if sizes.get(101):
        histogram[">100"] = int(sizes[101])
    placements = recommendations.groupBy("placement", "kind").count().collect()
    itemsets: SparkItemsets = overall.itemsets
    return RunCounts(
        rows_in=lines.rows_in,
        rejected=lines.counts,
        rows_rejected=rejected,
        rows_clean=lines.rows_in - rejected,
        funnel=cleaning_funnel(lines.rows_in, lines.counts, lines.orders_after),
        basket_sizes=histogram,
        baskets=baskets.count,
        products=baskets.frame.select(F.explode("items")).distinct().count(),
        min_count=itemsets.min_count,
        itemsets=itemsets.count,
        rules_mined=overall.rules_mined,
        rules_dropped=overall.dropped,
        rules=rules.count(),
        recommendations=recommendations.count(),
        antecedents=recommendations.select("antecedent_key").distinct().count(),
        by_placement=dict(sorted((f"{r['placement']}/{r['kind']}", int(r["count"])) for r in placements)),
        segments={s.segment: s.baskets for s in segments},
        bundles=0 if bundles is None else bundles.count(),
        buy_again=0 if overall.buy_again is None else overall.buy_again.count(),
        history=0 if overall.history is None else overall.history.count(),
        neighbours=sum(s.neighbours.num_rows for s in segments if s.neighbours is not None),
        catalog_products=None if catalog_pd is None else len(catalog_pd),
        catalog_margins=known_margins(catalog_pd),
        mining={"method": "spark fpgrowth", "why": "the Spark engine mines with MLlib's FPGrowth"},
        products_missing_from_catalog=missing,
        products_missing_listed=missing_listed,
        covered_products=sorted(r[0] for r in recommendations.select("consequent").distinct().collect()),
    )


def _missing(baskets: DataFrame, catalog: DataFrame | None, listed: int) -> tuple[int, list[str]]:
    """How many sold products the catalog lacks, and the first ``listed`` of them by id."""
    from pyspark.sql import functions as F

    if catalog is None:
        return 0, []
    sold = baskets.select(F.explode("items").alias("product_id")).distinct()
    missing = sold.join(catalog.select("product_id"), "product_id", "left_anti")
    count = missing.count()
    if count:
        log.warning("%d sold product(s) are not in the catalog", count)
    return count, [r[0] for r in missing.orderBy("product_id").limit(listed).collect()]


def _non_finite(tables: dict[str, DataFrame]) -> dict[tuple[str, str], int]:
    """Non-finite values per metric column, counted on the cluster."""
    from pyspark.sql import functions as F

    found = {}
    for name in METRIC_TABLES:
        frame = tables[name]
        columns = [c for c in METRICS if c in frame.columns]
        bad = [F.sum((F.isnan(c) | F.col(c).isin(float("inf"), float("-inf"))).cast("long")).alias(c) for c in columns]
        row = aggregate_row(frame.agg(*bad))
        found.update({(name, c): int(row[c] or 0) for c in columns})
    return found


def _union(frames: Iterable[DataFrame]) -> DataFrame:
    """The rows of every frame, matched by column name."""
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
