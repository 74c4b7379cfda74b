"""Baskets and catalog in, up-sell offers out, on Spark: a better, pricier version of the viewed product.

What an up-sell is and how it ranks is :mod:`pipeline.policy.upsell`, whose
kernels run on the executors. Spark moves the data: each product's price band
(from the policy) bounds a join of the (sold) catalog with itself on the
category; shared customers and shared baskets come from joins of the
(customer, product) and (basket, product) pairs.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import Config
from pipeline.contract.vocabulary import PRODUCT, UPSELL
from pipeline.policy.upsell import (
    not_complement,
    price_band,
    same_type,
    shared_enough,
    upsell_candidates,
    upsell_scores,
)
from pipeline.spark.kernels import where_kernel, with_kernel

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

    def band(price: np.ndarray) -> dict[str, np.ndarray]:
        low, high = price_band(price, upsell)
        return {"low": low, "high": high}

    products = with_kernel(products, band, ["price"], {"low": "double", "high": "double"})
    a = products.select(*(F.col(c).alias(f"a_{c}") for c in products.columns))
    c = products.select(*(F.col(c).alias(f"c_{c}") for c in products.columns))
    # The band bounds the join; the policy decides on each pair.
    pairs = a.join(
        c,
        (F.col("a_category") == F.col("c_category"))
        & (F.col("c_price") >= F.col("a_low"))
        & (F.col("c_price") <= F.col("a_high")),
    )

    candidates = ["a_price", "c_price", "a_margin", "c_margin", "a_buyers", "c_buyers"]
    pairs = where_kernel(pairs, partial(upsell_candidates, config=upsell), candidates)
    kinds = ["a_product_id", "a_name", "a_variant_group", "c_product_id", "c_name", "c_variant_group"]
    pairs = where_kernel(pairs, same_type, kinds)
    shared = _shared(pairs, bought.withColumnRenamed("customer", "owner"), "owner").withColumnRenamed("n", "shared")
    pairs = where_kernel(
        pairs.join(shared, ["a_product_id", "c_product_id"]), partial(shared_enough, config=upsell), ["shared"]
    )
    together = _shared(pairs, held.select(F.col("order_id").alias("owner"), "product_id").distinct(), "owner")
    pairs = pairs.join(together.withColumnRenamed("n", "together"), ["a_product_id", "c_product_id"], "left").fillna(
        0, ["together"]
    )
    pairs = where_kernel(
        pairs,
        lambda together, in_a, in_c: not_complement(together, count, in_a, in_c),
        ["together", "a_in_baskets", "c_in_baskets"],
    )
    pairs = with_kernel(
        pairs,
        upsell_scores,
        ["shared", "a_buyers", "a_margin", "c_margin"],
        {"confidence": "double", "expected_margin": "double", "score": "double"},
    )
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
        "confidence",
        F.lit(None).cast("double").alias("lift"),
        F.col("together").alias("pair_count"),
        F.col("c_price").alias("consequent_price"),
        F.col("c_margin").alias("consequent_margin"),
        "expected_margin",
        "score",
        F.lit(None).cast("double").alias("model_weight"),
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
