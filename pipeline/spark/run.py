"""The nightly job's stages on Spark: ``spark_tables(config)`` chains them like :func:`pipeline.flow.run._local_tables`.

Read it as the same diagram::

    exports --lines--> clean lines + rejects --baskets--> baskets --segments--> per segment:
      --FPGrowth--> itemsets --rules--> rules --catalog, rank (windows)--> ranked rules --top-k--> offers
      + post-purchase rules, up-sells, bundles, products

The tables are handed to :func:`pipeline.flow.run.run` as writers: gating, the run
directory, the manifest and the atomic switch of ``latest`` are the same code
for both engines. What reaches the driver: counts, the histogram of basket
sizes, the covered products (what the change gate compares) and at most
``MISSING_LISTED`` product ids missing from the catalog.

Every kind of offer is made as the local engine makes it: cross-sells for the
product page and the cart, post-purchase rules, up-sells, bundles, each per
segment (``segment.column``) with the ``*`` rows for everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.local.catalog import read_catalog
from pipeline.local.clean import cleaning_funnel
from pipeline.config import Config
from pipeline.errors import InputDataError
from pipeline.contract.checks import METRIC_TABLES, METRICS, metric_problems
from pipeline.local.ingest import InputFile, file_sha256
from pipeline.stages import StageTimer
from pipeline.contract.manifest import inputs_fingerprint
from pipeline.flow.publish import new_run_id
from pipeline.contract.vocabulary import ALL_SEGMENTS, GROUP, POST_PURCHASE
from pipeline.contract.schema import BUNDLES, ITEMSETS, PRODUCTS, RECOMMENDATIONS, REJECTS, RULES
from pipeline.spark.lines import SparkLines, clean_lines
from pipeline.spark.mining import SparkItemsets, association_rules, baskets_from_lines, frequent_itemsets
from pipeline.spark.offers import (
    bundle_table,
    catalog_frame,
    product_table,
    rank_offers,
    ranked_rules,
    top_recommendations,
)
from pipeline.spark.postpurchase import post_purchase_rules
from pipeline.spark.session import spark_session
from pipeline.spark.tables import table_writer
from pipeline.spark.upsell import upsell_offers

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipeline.flow.run import RunTables

log = logging.getLogger(__name__)

@dataclass
class _Segment:
    """The rows of one segment (``*``: every basket), still on the cluster, and what was counted."""

    name: str
    baskets: int
    itemsets: SparkItemsets
    rules_mined: int
    dropped: dict[str, int]
    rules: list[DataFrame] = field(default_factory=list)
    recommendations: list[DataFrame] = field(default_factory=list)
    bundles: DataFrame | None = None
    products: DataFrame | None = None


def spark_tables(config: Config, started: datetime, stage: StageTimer) -> RunTables:
    """Every stage on Spark; the tables as writers that the executors run at publish time."""
    from pipeline.flow.run import MISSING_LISTED, RunTables

    spark = spark_session(config.spark)
    from pyspark.sql import functions as F

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
        baskets = baskets_from_lines(lines.kept).cache()
        basket_count = baskets.count()
        done["baskets"] = basket_count
    _check_baskets(lines.rows_in, lines.counts, basket_count, files, catalog_pd is not None)
    run_id = new_run_id(started, inputs_fingerprint(config, files))
    segments = [
        _segment_tables(name, subset, count, catalog, config, run_id, stage)
        for name, subset, count in _segment_baskets(baskets, basket_count, config)
    ]
    overall = segments[0]
    # Computed once here: the counts, the checks and the writers all read them.
    rules = _union(r for s in segments for r in s.rules).cache()
    recommendations = _union(r for s in segments for r in s.recommendations).cache()
    found_bundles = [s.bundles for s in segments if s.bundles is not None]
    bundles = _union(found_bundles).cache() if found_bundles else None
    with stage("tables"):
        counts = _counts(lines, baskets, basket_count, overall, rules, recommendations, bundles, catalog_pd)
        counts["segments"] = {s.name: s.baskets for s in segments}
        missing = _missing(baskets, catalog, MISSING_LISTED)
        counts["products_missing_from_catalog"], counts["products_missing_listed"] = missing
        problems = metric_problems(_non_finite({"recommendations": recommendations, "rules": rules}))
    order = [*GROUP, "rank"]
    # Segment "*" first, the others by name: the order the local engine concatenates them in.
    by_segment = [F.col("segment") != ALL_SEGMENTS, "segment"]
    tables = {
        "recommendations": table_writer(recommendations, RECOMMENDATIONS, order),
        "rules": table_writer(rules, RULES, order),
        "itemsets": table_writer(
            overall.itemsets.frame.select(
                F.col("items").alias("itemset"), F.array_join("items", "|").alias("itemset_key"), "length", "count",
                (F.col("count") / F.lit(max(basket_count, 1))).alias("support"),
            ),
            ITEMSETS,
            ["length", "itemset"],
        ),
        "bundles": BUNDLES.empty_table() if bundles is None else table_writer(bundles, BUNDLES, [*by_segment, "rank"]),
        "products": table_writer(
            _union(s.products for s in segments if s.products is not None),
            PRODUCTS,
            [*by_segment, F.col("category").asc_nulls_last(), F.desc("baskets"), "product_id"],
        ),
        "rejects": table_writer(lines.rejects, REJECTS, ["file_index", "source_row"]),
    }
    return RunTables(run_id, lines.as_of, files, counts, tables, problems)


def _segment_baskets(baskets: DataFrame, count: int, config: Config) -> list[tuple[str, DataFrame, int]]:
    """``("*", all baskets)`` first, then each segment big enough to mine on its own, by name (:func:`pipeline.flow.offers.segment_baskets`)."""
    from pyspark.sql import functions as F

    found = [(ALL_SEGMENTS, baskets, count)]
    if config.segment.column is None:
        return found
    sizes = {str(v): int(n) for v, n in baskets.where(F.col("segment").isNotNull()).groupBy("segment").count().collect()}
    if ALL_SEGMENTS in sizes:
        log.warning("segment value %r is reserved for all customers: its %d baskets are mined with everyone's only",
                    ALL_SEGMENTS, sizes.pop(ALL_SEGMENTS))
    small = sorted(v for v, n in sizes.items() if n < config.segment.min_baskets)
    if small:
        log.info("segments below segment.min_baskets = %d use the global rules: %s", config.segment.min_baskets,
                 ", ".join(small[:20]) + (" ..." if len(small) > 20 else ""))
    for value in sorted(v for v, n in sizes.items() if n >= config.segment.min_baskets):
        found.append((value, baskets.where(F.col("segment") == value), sizes[value]))
    return found


def _segment_tables(
    segment: str, baskets: DataFrame, count: int, catalog: DataFrame | None, config: Config, run_id: str,
    stage: StageTimer,
) -> _Segment:
    """Mine one segment and build its rows (:func:`pipeline.flow.offers.segment_offers`)."""
    from pyspark.sql import functions as F

    mine = config.mine
    if segment != ALL_SEGMENTS and config.segment.min_support is not None:
        mine = mine.model_copy(update={"min_support": config.segment.min_support, "min_count": None})
    top_k = config.output.top_k
    with stage("itemsets") as done:
        itemsets = frequent_itemsets(baskets, count, mine, config.spark)
        done["itemsets"] = itemsets.count
    with stage("rules") as done:
        rules = association_rules(itemsets, config.rules).cache()
        done["rules"] = mined = rules.count()
    with stage("rank"):
        ranked, dropped = ranked_rules(rules, catalog, config, segment)
        ranked = ranked.cache()
    result = _Segment(segment, count, itemsets, mined, dropped, [ranked], [top_recommendations(ranked, top_k, run_id)])
    if config.post_purchase.enabled:
        with stage("post_purchase"):
            found = post_purchase_rules(baskets, config.model_copy(update={"mine": mine}))
            if found is not None:
                following, _ = ranked_rules(found, catalog, config, segment, POST_PURCHASE)
                following = following.cache()
                result.rules.append(following)
                result.recommendations.append(top_recommendations(following, top_k, run_id))
    if config.upsell.enabled:
        with stage("upsell"):
            offers = upsell_offers(baskets, count, catalog, config, segment)
            if offers is not None:
                best = rank_offers(offers, [F.col("score").desc_nulls_last(), "consequent"])
                result.recommendations.append(top_recommendations(best, top_k, run_id))
    if config.bundles.enabled:
        with stage("bundles"):
            result.bundles = bundle_table(itemsets, catalog, config, segment)
    result.products = product_table(baskets, catalog, segment)
    return result


def _check_baskets(rows_in: int, rejected: dict[str, int], baskets: int, files: list[InputFile], catalog: bool) -> None:
    """The local engine's errors for an export with no line, or no basket after cleaning."""
    if baskets:
        return
    names = ", ".join(f.path for f in files[: len(files) - catalog])
    if rows_in == 0:
        raise InputDataError(f"{names}: no order lines (only a header?); check the export")
    shown = ", ".join(f"{k} {v}" for k, v in rejected.items() if v)
    raise InputDataError(
        f"{names}: no baskets left after cleaning {rows_in} rows (rejected: {shown}); "
        "check the clean.* settings, as_of and the column mapping"
    )


def _counts(
    lines: SparkLines, baskets: DataFrame, basket_count: int, overall: _Segment, rules: DataFrame,
    recommendations: DataFrame, bundles: DataFrame | None, catalog_pd: Any,
) -> dict[str, Any]:
    """The manifest's counts, in the local engine's keys, from small aggregations."""
    from pyspark.sql import functions as F

    rejected = sum(lines.counts.values())
    sizes = dict(baskets.groupBy(F.least(F.size("items"), F.lit(101)).alias("s")).count().collect())
    histogram = {str(k): int(sizes[k]) for k in sorted(sizes) if k <= 100}
    if sizes.get(101):
        histogram[">100"] = int(sizes[101])
    placements = recommendations.groupBy("placement", "kind").count().collect()
    return {
        "rows_in": lines.rows_in,
        "rejected": lines.counts,
        "rows_rejected": rejected,
        "rows_clean": lines.rows_in - rejected,
        "funnel": cleaning_funnel(lines.rows_in, lines.counts, lines.orders_after),
        "basket_sizes": histogram,
        "baskets": basket_count,
        "products": baskets.select(F.explode("items")).distinct().count(),
        "min_count": overall.itemsets.min_count,
        "itemsets": overall.itemsets.count,
        "rules_mined": overall.rules_mined,
        "rules_dropped": overall.dropped,
        "rules": rules.count(),
        "recommendations": recommendations.count(),
        "antecedents": recommendations.select("antecedent_key").distinct().count(),
        "by_placement": {f"{r['placement']}/{r['kind']}": r["count"] for r in sorted(placements, key=lambda r: str(r.asDict()))},
        "segments": {},
        "bundles": 0 if bundles is None else bundles.count(),
        "catalog_products": None if catalog_pd is None else len(catalog_pd),
        "covered_products": sorted(r[0] for r in recommendations.select("consequent").distinct().collect()),
    }


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
        row = frame.agg(*bad).first()
        found.update({(name, c): int(row[c] or 0) for c in columns})
    return found



def _union(frames: Iterable[DataFrame]) -> DataFrame:
    """The rows of every frame, matched by column name."""
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
