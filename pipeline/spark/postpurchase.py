"""Baskets in, post-purchase rules out, on Spark: what a customer buys in their next order.

The rules of :mod:`pipeline.local.postpurchase`, counted the same way: each
customer's orders in time order (ties by order id), every two consecutive
orders at most ``post_purchase.max_days`` apart a *transition*, and a rule
``a -> c`` counting the transitions whose first order holds ``a`` and whose
second holds ``c``. The next order comes from a window (``lead``) per
customer; the pair counts from exploding both orders' products.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.local.itemsets import min_count_for
from pipeline.policy.rules import post_purchase_kept
from pipeline.spark.kernels import where_kernel
from pipeline.spark.mining import with_measures

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


def post_purchase_rules(baskets: DataFrame, config: Config) -> DataFrame | None:
    """Rules in the columns of :func:`pipeline.spark.mining.association_rules`, or None without transitions."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    known = baskets.where(F.col("customer_id").isNotNull() & F.col("timestamp").isNotNull())
    following = Window.partitionBy("customer_id").orderBy("timestamp", "order_id")
    steps = known.select(
        F.col("items").alias("before"),
        F.col("timestamp"),
        F.lead("items").over(following).alias("after"),
        F.lead("timestamp").over(following).alias("next_time"),
    )
    limit = F.col("timestamp") + F.expr(f"INTERVAL {config.post_purchase.max_days} DAYS")
    transitions = steps.where(F.col("next_time").isNotNull() & (F.col("next_time") <= limit)).select("before", "after")
    transitions = transitions.cache()
    n = transitions.count()
    if n == 0:
        log.info("post-purchase: no consecutive orders of a customer within %d days", config.post_purchase.max_days)
        transitions.unpersist()
        return None
    min_count = min_count_for(config.mine, n)
    firsts = transitions.select(F.explode("before").alias("a")).groupBy("a").agg(F.count("*").alias("antecedent_count"))
    seconds = transitions.select(F.explode("after").alias("c")).groupBy("c").agg(F.count("*").alias("consequent_count"))
    sources = firsts.where(F.col("antecedent_count") >= min_count)
    targets = seconds.where(F.col("consequent_count") >= min_count)
    pairs = (
        transitions.select(F.explode("before").alias("a"), "after")
        .join(sources.select("a"), "a")
        .select("a", F.explode("after").alias("c"))
        .join(targets.select("c"), "c")
        .where(F.col("a") != F.col("c"))
        .groupBy("a", "c")
        .agg(F.count("*").alias("pair_count"))
        .where(F.col("pair_count") >= min_count)
        .join(sources, "a")
        .join(targets, "c")
    )
    rules = with_measures(
        pairs.select(
            F.array("a").alias("antecedent"),
            F.col("c").alias("consequent"),
            "antecedent_count",
            "consequent_count",
            "pair_count",
        ),
        n,
    )

    rules = where_kernel(rules, partial(post_purchase_kept, config=config), ["confidence", "lift"])
    log.info(
        "post-purchase: rules from %d transitions (next order within %d days), min count %d",
        n,
        config.post_purchase.max_days,
        min_count,
    )
    return rules.withColumns(
        {
            "consequent_support": F.col("consequent_count") / F.lit(n),
            "p_value": F.lit(None).cast("double"),
            "p_value_adjusted": F.lit(None).cast("double"),
        }
    )
