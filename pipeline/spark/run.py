"""The nightly job's stages on Spark: ``spark_tables(config)`` chains them like :func:`pipeline.run._local_tables`.

Read it as the same diagram::

    exports --lines--> clean lines + rejects --baskets--> baskets --FPGrowth--> itemsets
      --rules--> rules --catalog, rank (windows)--> ranked rules --top-k--> recommendations

The tables are handed to :func:`pipeline.run.run` as writers: gating, the run
directory, the manifest and the atomic switch of ``latest`` are the same code
for both engines. What reaches the driver: counts, the histogram of basket
sizes, the covered products (what the change gate compares) and at most
``MISSING_LISTED`` product ids missing from the catalog.

Not on Spark yet (a clear :class:`ConfigError` names the key to switch off):
post-purchase rules, up-sell offers and mining per segment; ``docs/spark.md``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.catalog import read_catalog
from pipeline.clean import cleaning_funnel
from pipeline.config import Config
from pipeline.errors import ConfigError, InputDataError
from pipeline.gates import METRIC_TABLES, METRICS, metric_problems
from pipeline.ingest import InputFile, file_sha256
from pipeline.inputs import StageTimer
from pipeline.manifest import inputs_fingerprint
from pipeline.publish import new_run_id
from pipeline.recommendations import ALL_SEGMENTS, GROUP
from pipeline.schema import BUNDLES, ITEMSETS, PRODUCTS, RECOMMENDATIONS, REJECTS, RULES
from pipeline.spark.lines import SparkLines, clean_lines
from pipeline.spark.mining import association_rules, baskets_from_lines, frequent_itemsets
from pipeline.spark.offers import (
    bundle_table,
    catalog_frame,
    product_table,
    ranked_rules,
    top_recommendations,
)
from pipeline.spark.session import spark_session
from pipeline.spark.tables import table_writer

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipeline.run import RunTables

log = logging.getLogger(__name__)

#: Features of the local engine not yet on Spark: the key that switches each off.
UNSUPPORTED = {
    "post_purchase.enabled": "post-purchase rules",
    "upsell.enabled": "up-sell offers",
    "segment.column": "mining per segment",
}


def check_supported(config: Config) -> None:
    """Raise :class:`ConfigError` naming each key that asks for what the spark engine cannot do yet."""
    asked = {
        "post_purchase.enabled": config.post_purchase.enabled,
        "upsell.enabled": config.upsell.enabled,
        "segment.column": config.segment.column is not None,
    }
    keys = [key for key, on in asked.items() if on]
    if keys:
        what = ", ".join(f"{UNSUPPORTED[k]} ({k})" for k in keys)
        switches = " ".join(f"--set {k}={'none' if k == 'segment.column' else 'false'}" for k in keys)
        raise ConfigError(
            f"engine = 'spark' does not make {what} yet; switch them off ({switches}) or use engine = 'local'"
        )


def spark_tables(config: Config, started: datetime, stage: StageTimer) -> RunTables:
    """Every stage on Spark; the tables as writers that the executors run at publish time."""
    from pipeline.run import MISSING_LISTED, RunTables

    check_supported(config)
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
    with stage("itemsets") as done:
        itemsets = frequent_itemsets(baskets, basket_count, config.mine, config.spark)
        done["itemsets"] = itemsets.count
    with stage("rules") as done:
        rules = association_rules(itemsets, config.rules).cache()
        done["rules"] = rules_mined = rules.count()
    with stage("rank"):
        ranked, dropped = ranked_rules(rules, catalog, config, ALL_SEGMENTS)
        ranked = ranked.cache()
        recommendations = top_recommendations(ranked, config.output.top_k, run_id)
    with stage("bundles"):
        bundles = bundle_table(itemsets, catalog, config, ALL_SEGMENTS) if config.bundles.enabled else None
    products = product_table(baskets, catalog, ALL_SEGMENTS)
    with stage("tables"):
        counts = _counts(lines, baskets, basket_count, itemsets.min_count, itemsets.count, rules_mined, dropped,
                         ranked, recommendations, bundles, catalog, catalog_pd)
        missing = _missing(baskets, catalog, MISSING_LISTED)
        counts["products_missing_from_catalog"], counts["products_missing_listed"] = missing
        problems = metric_problems(_non_finite({"recommendations": recommendations, "rules": ranked}))
    order = [*GROUP, "rank"]
    tables = {
        "recommendations": table_writer(recommendations, RECOMMENDATIONS, order),
        "rules": table_writer(ranked, RULES, order),
        "itemsets": table_writer(
            itemsets.frame.select(
                F.col("items").alias("itemset"), F.array_join("items", "|").alias("itemset_key"), "length", "count",
                (F.col("count") / F.lit(max(basket_count, 1))).alias("support"),
            ),
            ITEMSETS,
            ["length", "itemset"],
        ),
        "bundles": BUNDLES.empty_table() if bundles is None else table_writer(bundles, BUNDLES, ["segment", "rank"]),
        "products": table_writer(
            products, PRODUCTS, [F.col("segment"), F.col("category").asc_nulls_last(), F.desc("baskets"), "product_id"]
        ),
        "rejects": table_writer(lines.rejects, REJECTS, ["file_index", "source_row"]),
    }
    return RunTables(run_id, lines.as_of, files, counts, tables, problems)


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
    lines: SparkLines, baskets: DataFrame, basket_count: int, min_count: int, itemsets: int, rules_mined: int,
    dropped: dict[str, int], ranked: DataFrame, recommendations: DataFrame, bundles: DataFrame | None,
    catalog: DataFrame | None, catalog_pd: Any,
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
        "min_count": min_count,
        "itemsets": itemsets,
        "rules_mined": rules_mined,
        "rules_dropped": dropped,
        "rules": ranked.count(),
        "recommendations": recommendations.count(),
        "antecedents": recommendations.select("antecedent_key").distinct().count(),
        "by_placement": {f"{r['placement']}/{r['kind']}": r["count"] for r in sorted(placements, key=lambda r: str(r.asDict()))},
        "segments": {ALL_SEGMENTS: basket_count},
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

