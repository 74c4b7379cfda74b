"""Baskets and catalog in, up-sell offers out, on Spark: a better, pricier version of the viewed product.

The method of :mod:`pipeline.local.upsell`, step for step: candidate pairs of one
catalog category inside the price band with more unit margin, pruned to
products with at least ``upsell.min_buyers`` buyers, kept when at least that
many customers bought both and they are not bought together as often as
chance predicts; ranked by evidence x margin gain. The pairs come from a join
of the (sold) catalog with itself on the category; shared customers and shared
baskets from joins of the (customer, product) and (basket, product) pairs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.contract.vocabulary import PRODUCT, UPSELL

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


def upsell_offers(
    baskets: DataFrame, count: int, catalog: DataFrame | None, config: Config, segment: str
) -> DataFrame | None:
    """Up-sell offers in the columns of ranked rules (before ranking), or None without a catalog."""
    from pyspark.sql import functions as F

    if catalog is None:
        return None
    upsell = config.upsell
    held = baskets.select("order_id", "customer_id", F.explode("items").alias("product_id")).cache()
    in_baskets = held.groupBy("product_id").agg(F.count("*").alias("in_baskets"))
    # A basket without a customer is its own customer.
    owner = F.struct(F.col("customer_id"), F.when(F.col("customer_id").isNull(), F.col("order_id")).alias("order"))
    bought = held.select(owner.alias("customer"), "product_id").distinct().cache()
    buyers = bought.groupBy("product_id").agg(F.count("*").alias("buyers"))
    products = (
        catalog.where((F.col("price") > 0) & F.col("margin").isNotNull() & F.col("category").isNotNull())
        .join(in_baskets, "product_id")
        .join(buyers, "product_id")
    )
    a = products.select(*(F.col(c).alias(f"a_{c}") for c in products.columns))
    c = products.select(*(F.col(c).alias(f"c_{c}") for c in products.columns))
    low, high = 1 + upsell.min_price_step, 1 + upsell.max_price_step
    pairs = a.join(
        c,
        (F.col("a_category") == F.col("c_category"))
        & (F.col("c_price") >= F.col("a_price") * F.lit(low))
        & (F.col("c_price") <= F.col("a_price") * F.lit(high))
        & (F.col("c_price") > F.col("a_price"))
        & (F.col("c_margin") > F.col("a_margin"))
        & (F.col("a_buyers") >= upsell.min_buyers)
        & (F.col("c_buyers") >= upsell.min_buyers),
    )
    shared = _shared(pairs, bought.withColumnRenamed("customer", "owner"), "owner").withColumnRenamed("n", "shared")
    pairs = pairs.join(shared, ["a_product_id", "c_product_id"]).where(F.col("shared") >= upsell.min_buyers)
    together = _shared(pairs, held.select(F.col("order_id").alias("owner"), "product_id").distinct(), "owner")
    pairs = pairs.join(together.withColumnRenamed("n", "together"), ["a_product_id", "c_product_id"], "left").fillna(
        0, ["together"]
    )
    # Bought together at least as often as chance predicts: a complement, not an alternative.
    pairs = pairs.where(F.col("together") * F.lit(count) < F.col("a_in_baskets") * F.col("c_in_baskets"))
    evidence = F.col("shared") / F.greatest(F.col("a_buyers"), F.lit(1))
    return pairs.select(
        F.lit(segment).alias("segment"),
        F.lit(PRODUCT).alias("placement"),
        F.lit(UPSELL).alias("kind"),
        F.array("a_product_id").alias("antecedent"),
        F.col("a_product_id").alias("antecedent_key"),
        F.lit(1).alias("antecedent_size"),
        F.col("c_product_id").alias("consequent"),
        F.col("c_name").alias("consequent_name"),
        (F.col("c_in_baskets") / F.lit(max(count, 1))).alias("support"),
        evidence.alias("confidence"),
        F.lit(None).cast("double").alias("lift"),
        F.col("together").alias("pair_count"),
        F.col("c_price").alias("consequent_price"),
        F.col("c_margin").alias("consequent_margin"),
        (evidence * F.col("c_margin")).alias("expected_margin"),
        (evidence * (F.col("c_margin") - F.col("a_margin"))).alias("score"),
    )


def _shared(pairs: DataFrame, holders: DataFrame, key: str) -> DataFrame:
    """For each candidate pair, the ``key`` rows (customers or baskets) holding both products: column ``n``."""
    from pyspark.sql import functions as F

    first = holders.select(key, F.col("product_id").alias("a_product_id"))
    second = holders.select(key, F.col("product_id").alias("c_product_id"))
    return (
        pairs.select("a_product_id", "c_product_id")
        .join(first, "a_product_id")
        .join(second, [key, "c_product_id"])
        .groupBy("a_product_id", "c_product_id")
        .agg(F.count("*").alias("n"))
    )
