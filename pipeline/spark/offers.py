"""Rules, itemsets and catalog in, the published offer tables out, on Spark.

The ranking of :mod:`pipeline.local.recommendations` (catalog join, margin filters,
score, rank per :data:`~pipeline.local.recommendations.GROUP` with a window), the
products table of :func:`pipeline.flow.offers.product_table` and the bundles of
:mod:`pipeline.local.bundles` (priced by the same function, on the executors). The
catalog is product-sized: it is read on the driver, validated by the local
engine's reader, and broadcast to the executors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.config import Config
from pipeline.contract.vocabulary import CART, CROSS_SELL, GROUP, PRODUCT
from pipeline.policy.bundles import BUNDLE_ORDER, price_bundles
from pipeline.policy.model import ItemModel
from pipeline.policy.names import DESCRIBED_COLUMNS
from pipeline.policy.offers import (
    BUY_AGAIN_ORDER,
    RULE_ORDER,
    cart_candidates,
    expected_margin,
    margin_too_low,
    placement_scores,
    shown,
)
from pipeline.policy.variants import Keys, variant_offers, variant_placements
from pipeline.spark.kernels import map_in_arrow, where_kernel, with_kernel
from pipeline.spark.mining import SparkItemsets
from pipeline.spark.session import aggregate_row

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession, WindowSpec

log = logging.getLogger(__name__)

_CATALOG_COLUMNS = ("product_id", "name", "category", "price", "margin", "variant_group")


def catalog_frame(spark: SparkSession, catalog: pd.DataFrame | None) -> DataFrame | None:
    """The validated catalog (:func:`pipeline.local.catalog.read_catalog`) as a small Spark DataFrame."""
    if catalog is None:
        return None
    table = pa.Table.from_pandas(catalog[list(_CATALOG_COLUMNS)], preserve_index=False)
    table = table.cast(
        pa.schema(
            [
                ("product_id", pa.string()),
                ("name", pa.string()),
                ("category", pa.string()),
                ("price", pa.float64()),
                ("margin", pa.float64()),
                ("variant_group", pa.string()),
            ]
        )
    )
    return spark.createDataFrame(table)


def described_frame(spark: SparkSession, described: pd.DataFrame) -> DataFrame:
    """The products' names (:func:`pipeline.policy.names.described_products`) as a small Spark DataFrame."""
    schema = pa.schema([(c, pa.string()) for c in DESCRIBED_COLUMNS])
    table = pa.Table.from_pandas(described[list(DESCRIBED_COLUMNS)], preserve_index=False)
    return spark.createDataFrame(table.cast(schema))


def ranked_rules(
    rules: DataFrame,
    catalog: DataFrame | None,
    described: DataFrame,
    config: Config,
    segment: str,
    placement: str | None = None,
    variants: Mapping[str, Keys] | None = None,
    model: ItemModel | None = None,
    has_margins: bool = False,
) -> tuple[DataFrame, dict[str, int]]:
    """Rules labelled, joined to the catalog, filtered by margin, weighted, scored and ranked; what was dropped.

    The columns of ``rules.parquet``; see :func:`pipeline.local.recommendations.rank_rules`. ``placement``
    defaults to ``product`` for one-product antecedents and ``cart`` for larger ones; ``described``
    (:func:`described_frame`) names the consequents: the catalog's name, else the export's.
    """
    from pyspark.sql import functions as F

    frame = rules.select(
        F.lit(segment).alias("segment"),
        (F.lit(placement) if placement else F.when(F.size("antecedent") == 1, PRODUCT).otherwise(CART)).alias(
            "placement"
        ),
        F.lit(CROSS_SELL).alias("kind"),
        "antecedent",
        F.array_join("antecedent", "|").alias("antecedent_key"),
        F.size("antecedent").alias("antecedent_size"),
        *(c for c in rules.columns if c != "antecedent"),
    )
    if catalog is None:
        log.info("no catalog: margin columns are null and margin filters are skipped")
        frame = frame.withColumns(
            {
                "consequent_price": F.lit(None).cast("double"),
                "consequent_margin": F.lit(None).cast("double"),
                "_listed": F.lit(True),
            }
        )
    else:
        product = catalog.select(
            F.col("product_id").alias("consequent"),
            F.col("price").alias("consequent_price"),
            F.col("margin").alias("consequent_margin"),
            F.lit(True).alias("_listed"),
        )
        frame = frame.join(F.broadcast(product), "consequent", "left").fillna(False, ["_listed"])
    names = described.select(F.col("product_id").alias("consequent"), F.col("name").alias("consequent_name"))
    frame = frame.join(F.broadcast(names), "consequent", "left")
    has_catalog = catalog is not None
    known = dict(variants or {})

    def judged(
        confidence: np.ndarray,
        support: np.ndarray,
        lift: np.ndarray,
        margin: np.ndarray,
        price: np.ndarray,
        jaccard: np.ndarray,
        antecedent: np.ndarray,
        consequent: np.ndarray,
        placement: np.ndarray,
    ) -> dict[str, np.ndarray]:
        # One pass of Python over the rules for every verdict and score: each pass ships every column.
        none = np.zeros(confidence.size, dtype=bool)
        weight = None if model is None else model.rule_weights(antecedent, consequent)
        variant = variant_offers(antecedent, consequent, known) if config.rank.drop_variants else none
        placed = variant_placements(placement, variant, config.rank.cart_variants)
        score, cart_score = placement_scores(
            config.rank, placed, confidence, support, lift, margin, has_margins, jaccard, weight
        )
        return {
            "_low": margin_too_low(margin, price, config.margin) if has_catalog else none,
            "_placement": placed,
            "model_weight": np.full(confidence.size, np.nan) if weight is None else weight,
            "expected_margin": expected_margin(confidence, margin),
            "score": score,
        } | ({"_cart_score": cart_score} if paged else {})

    paged = config.rank.paged
    inputs = ["confidence", "consequent_support", "lift", "consequent_margin", "consequent_price", "jaccard"]
    outputs = {"_low": "boolean", "_placement": "string"} | dict.fromkeys(
        ["model_weight", "expected_margin", "score", *(["_cart_score"] if paged else [])], "double"
    )
    frame = with_kernel(frame, judged, [*inputs, "antecedent_key", "consequent", "placement"], outputs)
    frame, dropped = _filtered(frame.cache(), has_catalog, config)
    ranked = rank_offers(frame, RULE_ORDER)
    if paged:
        ranked = _with_cart_candidates(ranked, config.output.top_k)
    return ranked.drop("consequent_support"), dropped


def _with_cart_candidates(ranked: DataFrame, top_k: int) -> DataFrame:
    """``ranked`` with, as ``cart`` rows of their one product scored by ``rank.by`` (``_cart_score``), the
    product-page offers the cart block needs besides the page's (:func:`pipeline.policy.offers.cart_candidates`),
    and the one-product antecedents' ``cart`` groups ranked again, as the local engine's ``rank_rules``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # Both orders over the same partitions: one shuffle; the result is read three times below.
    cart_order = (("_cart_score", False), *RULE_ORDER[1:])
    ranked = ranked.withColumn("_cart_rank", _row_number(Window.partitionBy(*GROUP), cart_order)).cache()
    # Only the rows rank.by puts in a page's first top_k can be candidates: the kernel sees those alone.
    best = ranked.where((F.col("placement") == PRODUCT) & (F.col("_cart_rank") <= top_k))
    picked = where_kernel(best, partial(cart_candidates, top_k=top_k), ["rank", "_cart_rank"])
    copies = picked.withColumns({"placement": F.lit(CART), "score": F.col("_cart_score")})
    single_cart = (F.col("placement") == CART) & (F.col("antecedent_size") == 1)
    singles = ranked.where(single_cart).unionByName(copies).drop("rank")
    others = ranked.where(~single_cart)
    return others.unionByName(rank_offers(singles, RULE_ORDER)).drop("_cart_score", "_cart_rank")


def _filtered(frame: DataFrame, has_catalog: bool, config: Config) -> tuple[DataFrame, dict[str, int]]:
    """The offers that the catalog and margin policies and the variant rule let through, and how many
    each policy dropped, counted as the local engine drops them: one policy after the other.

    The verdicts are columns of ``frame`` (cached): ``_listed`` (the consequent is in the catalog),
    ``_low`` (margin too low), ``_placement`` (where the variant rule publishes the offer, ``""``:
    nowhere); all counted in one aggregation, as a count per policy would run the rules' whole lineage
    again.
    """
    from pyspark.sql import functions as F

    passed = F.col("_listed") if config.catalog.missing == "drop" else F.lit(True)
    counted: dict[str, Column] = {}
    if has_catalog:
        if config.catalog.missing == "drop":
            counted["consequent_not_in_catalog"] = ~passed
        counted["margin_below_minimum"] = passed & F.col("_low")
        passed = passed & ~F.col("_low")
    if config.rank.drop_variants:
        counted["variant_of_antecedent"] = passed & (F.col("_placement") == "")
        passed = passed & (F.col("_placement") != "")
    dropped: dict[str, int] = {}
    if counted:
        row = aggregate_row(frame.agg(*(F.sum(flag.cast("long")).alias(name) for name, flag in counted.items())))
        dropped = {name: int(row[name] or 0) for name in counted}
    placed = frame.where(passed).withColumn("placement", F.col("_placement"))
    return placed.drop("_listed", "_low", "_placement"), dropped


def rank_offers(frame: DataFrame, order: tuple[tuple[str, bool], ...]) -> DataFrame:
    """``frame`` with ``rank``: 1 for the first row of each :data:`GROUP` in ``order``.

    ``order`` is a policy's (column, ascending) pairs, nulls last (:mod:`pipeline.policy.offers`).
    """
    from pyspark.sql import Window

    return frame.withColumn("rank", _row_number(Window.partitionBy(*GROUP), order))


def _row_number(window: WindowSpec, order: tuple[tuple[str, bool], ...]) -> Column:
    """Row numbers within ``window`` in a policy's order: (column, ascending), nulls last."""
    from pyspark.sql import functions as F

    columns = [F.col(c).asc_nulls_last() if ascending else F.col(c).desc_nulls_last() for c, ascending in order]
    return F.row_number().over(window.orderBy(*columns))


def top_recommendations(ranked_frame: DataFrame, top_k: int, run_id: str) -> DataFrame:
    """At most ``top_k`` offers per group, with the run id: the storefront's rows."""
    from pyspark.sql import functions as F

    return where_kernel(ranked_frame, partial(shown, top_k=top_k), ["rank"]).withColumn("run_id", F.lit(run_id))


def product_table(baskets: DataFrame, described: DataFrame, segment: str) -> DataFrame:
    """Every product sold with its name, category and basket count, ranked within its category.

    The rows of :func:`pipeline.local.products.product_table`; ``described`` is :func:`described_frame`.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = (
        baskets.select(F.explode("items").alias("product_id")).groupBy("product_id").agg(F.count("*").alias("baskets"))
    )
    info = counts.join(F.broadcast(described), "product_id", "left")
    within = Window.partitionBy("category").orderBy(F.desc("baskets"), "product_id")
    return info.withColumns({"segment": F.lit(segment), "category_rank": F.row_number().over(within)})


def bundle_table(itemsets: SparkItemsets, catalog: DataFrame | None, config: Config, segment: str) -> DataFrame | None:
    """The bundles of one segment (:mod:`pipeline.local.bundles`), or None without a catalog."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if catalog is None:
        return None
    frame = itemsets.frame
    candidates = frame.where((F.col("length") >= 2) & (F.col("length") <= config.bundles.max_size))
    singles = frame.where("length = 1").select(F.col("items")[0].alias("product_id"), F.col("count").alias("single"))
    products = (
        candidates.select("items", "count", F.posexplode("items").alias("position", "product_id"))
        .join(F.broadcast(catalog.select("product_id", "price", "margin")), "product_id", "left")
        .join(F.broadcast(singles), "product_id", "left")
    )
    # Sum prices in product order, as numpy sums each row: the same floating-point result.
    members = F.array_sort(F.collect_list(F.struct("position", "price", "margin")))
    grouped = (
        products.groupBy("items", "count")
        .agg(members.alias("m"), F.max("single").alias("largest"))
        .select(
            "items",
            "count",
            "largest",
            F.aggregate("m", F.lit(0.0), lambda total, x: total + F.coalesce(x["price"], F.lit(float("nan")))).alias(
                "list_price"
            ),
            F.aggregate("m", F.lit(0.0), lambda total, x: total + F.coalesce(x["margin"], F.lit(float("nan")))).alias(
                "list_margin"
            ),
            F.forall("m", lambda x: x["price"].isNotNull()).alias("priced"),
        )
    )
    baskets = itemsets.baskets
    columns = (
        "support",
        "all_confidence",
        "list_price",
        "discount",
        "bundle_price",
        "bundle_margin",
        "bundle_margin_rate",
        "score",
    )
    schema = T.StructType(
        [
            T.StructField("items", T.ArrayType(T.StringType())),
            T.StructField("count", T.LongType()),
            *(T.StructField(c, T.DoubleType()) for c in columns),
        ]
    )

    def priced(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            values = {
                c: batch.column(c).to_numpy(zero_copy_only=False)
                for c in ("count", "largest", "list_price", "list_margin", "priced")
            }
            keep, numbers = price_bundles(
                values["count"],
                values["largest"],
                values["list_price"],
                values["list_margin"],
                values["priced"].astype(bool),
                baskets,
                config,
            )
            index = pa.array(np.flatnonzero(keep))
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("items").take(index),
                    batch.column("count").take(index),
                    *(pa.array(numbers[c], pa.float64()) for c in columns),
                ],
                names=["items", "count", *columns],
            )

    bundles = (
        map_in_arrow(grouped, priced, schema)
        .select(
            F.lit(segment).alias("segment"),
            F.col("items").alias("bundle"),
            F.array_join("items", "|").alias("bundle_key"),
            F.size("items").alias("size"),
            "*",
        )
        .drop("items")
    )
    ranked = bundles.withColumn("rank", _row_number(Window.partitionBy("segment"), BUNDLE_ORDER))
    return ranked.where(F.col("rank") <= config.bundles.top_n)


def customer_lists(
    baskets: DataFrame, described: DataFrame, top_k: int, depth: int, run_id: str
) -> tuple[DataFrame, DataFrame]:
    """Each customer's ``top_k`` and ``depth`` most bought products, ranked once
    (:func:`pipeline.local.buy_again.customer_lists`); ``described`` (:func:`described_frame`) names them."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    held = baskets.where(F.col("customer_id").isNotNull()).select(
        "customer_id", F.explode("items").alias("product_id"), F.col("timestamp")
    )
    grouped = held.groupBy("customer_id", "product_id").agg(
        F.count("*").alias("orders"), F.max("timestamp").alias("last_bought")
    )
    ranked = grouped.withColumn("rank", _row_number(Window.partitionBy("customer_id"), BUY_AGAIN_ORDER))
    ranked = where_kernel(ranked, partial(shown, top_k=max(top_k, depth)), ["rank"]).cache()
    emails = where_kernel(ranked, partial(shown, top_k=top_k), ["rank"])
    names = described.select("product_id", F.col("name").alias("product_name"))
    named = emails.join(F.broadcast(names), "product_id", "left")
    history = where_kernel(ranked, partial(shown, top_k=depth), ["rank"])
    return named.withColumn("run_id", F.lit(run_id)), history.select("customer_id", "product_id", "orders", "rank")
