"""Clean lines in, baskets, frequent itemsets and association rules out, on Spark.

- Baskets: the distinct products of each order, by grouping (:mod:`pipeline.local.baskets`).
- Itemsets: MLlib's ``FPGrowth`` (the parallel FP-Growth of Li et al., 2008).
  Its threshold is a share, ``ceil(minSupport x n)`` baskets; asking for
  ``(min_count - 1/2) / n`` makes it exactly ``min_count``, the local
  engine's threshold. MLlib has no maximum length: longer itemsets are mined,
  then dropped, so ``mine.max_len`` saves no work there (``docs/spark.md``).
- Rules: generated from the itemsets as ``FPGrowthModel.associationRules``
  does (each itemset minus one product, joined to that antecedent's count),
  but keeping the integer counts, so that every measure is computed by the
  same code as the local engine (:func:`pipeline.policy.measures.interest_measures`,
  run on the executors over Arrow batches) and the redundancy filter can see
  every candidate, not only the confident ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pipeline.config import MineConfig, ModelConfig, RulesConfig, SparkConfig
from pipeline.errors import ConfigError
from pipeline.local.baskets import ORDER_COLUMNS
from pipeline.local.itemsets import min_count_for
from pipeline.policy.guards import check_candidates, check_itemsets
from pipeline.policy.measures import MEASURES, RULE_COUNTS, adjust_p_values, fisher_p_values, interest_measures
from pipeline.policy.model import model_products
from pipeline.policy.rules import KEPT, rule_verdicts, significant
from pipeline.spark.kernels import map_in_arrow, with_kernel

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SparkItemsets:
    """Frequent itemsets (``items`` sorted, ``length``, ``count``) of ``baskets`` baskets."""

    frame: DataFrame
    baskets: int
    min_count: int
    by_length: dict[int, int]

    @property
    def count(self) -> int:
        """Number of itemsets."""
        return sum(self.by_length.values())


def baskets_from_lines(lines: DataFrame) -> DataFrame:
    """One row per order: ``order_id``, ``items`` (distinct product ids, sorted) and its first line's order columns."""
    from pyspark.sql import functions as F

    first = F.min_by(F.struct(*ORDER_COLUMNS), F.struct("file_index", "source_row"))
    baskets = lines.groupBy("order_id").agg(
        F.array_sort(F.collect_set("product_id")).alias("items"), first.alias("first")
    )
    return baskets.select("order_id", "items", *(F.col(f"first.{c}").alias(c) for c in ORDER_COLUMNS))


def frequent_itemsets(baskets: DataFrame, count: int, mine: MineConfig, spark: SparkConfig) -> SparkItemsets:
    """FPGrowth's itemsets of at most ``mine.max_len`` products in at least ``min_count`` baskets, persisted.

    Raises :class:`ConfigError` when there are more than ``mine.max_itemsets``
    (after mining: MLlib cannot count them before).
    """
    from pyspark import StorageLevel
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import functions as F

    min_count = min_count_for(mine, count)
    growth = FPGrowth(itemsCol="items", minSupport=min(1.0, (min_count - 0.5) / max(count, 1)), minConfidence=1.0)
    if spark.num_partitions is not None:
        growth = growth.setNumPartitions(spark.num_partitions)
    model = growth.fit(baskets.select("items"))
    frame = model.freqItemsets.select(
        F.array_sort("items").alias("items"), F.size("items").alias("length"), F.col("freq").alias("count")
    )
    if mine.max_len is not None:
        frame = frame.where(F.col("length") <= mine.max_len)
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    by_length = {int(k): int(v) for k, v in frame.groupBy("length").count().collect()}
    try:
        check_itemsets(by_length, min_count, mine, estimated=False)
    except ConfigError:
        frame.unpersist()
        raise
    total = sum(by_length.values())
    shown = ", ".join(f"{n:,} of length {k}" for k, n in sorted(by_length.items()))
    log.info(
        "itemsets: %d frequent itemsets (%s) with spark fpgrowth at min count %d of %d baskets",
        total,
        shown or "none",
        min_count,
        count,
    )
    return SparkItemsets(frame, count, min_count, by_length)


def association_rules(itemsets: SparkItemsets, config: RulesConfig) -> DataFrame:
    """Rules ``antecedent -> consequent`` that pass every filter of :func:`pipeline.local.rules.association_rules`.

    Columns: ``antecedent`` (sorted product ids), ``consequent``, the three
    counts, every measure, ``consequent_support``, ``p_value`` and
    ``p_value_adjusted``.
    """
    from pyspark.sql import functions as F

    n = max(itemsets.baskets, 1)
    frame = itemsets.frame
    longest = max(itemsets.by_length, default=0)
    check_candidates(itemsets.by_length, config)
    counts = frame.select(F.col("items").alias("antecedent"), F.col("count").alias("antecedent_count"))
    singles = frame.where("length = 1").select(
        F.col("items")[0].alias("consequent"), F.col("count").alias("consequent_count")
    )
    kept, best = [], None
    for size in range(2, longest + 1):
        level = (
            frame.where(F.col("length") == size)
            .select(F.col("count").alias("pair_count"), "items", F.explode("items").alias("consequent"))
            .select(
                "pair_count", "consequent", F.filter("items", lambda x: x != F.col("consequent")).alias("antecedent")
            )
            .join(counts, "antecedent")
            .join(F.broadcast(singles), "consequent")
        )
        confidence = F.col("pair_count") / F.col("antecedent_count")
        consequent_support = F.col("consequent_count") / F.lit(n)
        level = level.withColumns({"_confidence": confidence, "consequent_support": consequent_support})
        general = F.col("consequent_support")
        if best is not None:
            general = F.greatest(general, F.coalesce(F.col("_general"), general))
            level = level.join(_best_generalisation(level, best), ["antecedent", "consequent"], "left")
        level = level.withColumn("_general", general)
        # This level's best confidence of each rule or a generalisation: what the next level compares with.
        best = level.select("antecedent", "consequent", F.greatest("_confidence", "_general").alias("_best"))
        level = with_kernel(
            level, _verdicts(config), ["_confidence", "consequent_support", "_general"], {"_verdict": "byte"}
        )
        kept.append(level.where(F.col("_verdict") == KEPT).select("antecedent", "consequent", *RULE_COUNTS))
    if not kept:
        rules = counts.where(F.lit(False)).select(
            "antecedent",
            F.lit("").alias("consequent"),
            "antecedent_count",
            F.lit(0).cast("long").alias("consequent_count"),
            F.lit(0).cast("long").alias("pair_count"),
        )
    else:
        rules = kept[0]
        for more in kept[1:]:
            rules = rules.unionByName(more)
    rules = with_measures(rules, n)
    if config.max_p_value is not None:
        rules = _significant(rules, n, config)
    else:
        rules = rules.withColumns(
            {"p_value": F.lit(None).cast("double"), "p_value_adjusted": F.lit(None).cast("double")}
        )
    return rules.withColumn("consequent_support", F.col("consequent_count") / F.lit(n))


def _best_generalisation(level: DataFrame, best: DataFrame) -> DataFrame:
    """For each rule, the best confidence among the rules one product shorter (same consequent).

    Each of those carries the best of its own generalisations, so one step
    covers every proper subset, as in :func:`pipeline.local.rules._general_confidence`.
    """
    from pyspark.sql import functions as F

    dropped = level.select("antecedent", "consequent", F.explode("antecedent").alias("_drop")).select(
        "antecedent", "consequent", F.filter("antecedent", lambda x: x != F.col("_drop")).alias("_shorter")
    )
    shorter = best.withColumnRenamed("antecedent", "_shorter")
    return (
        dropped.join(shorter, ["_shorter", "consequent"])
        .groupBy("antecedent", "consequent")
        .agg(F.max("_best").alias("_general"))
    )


def _verdicts(config: RulesConfig):  # type: ignore[no-untyped-def]
    """The rule policy's verdict kernel over (confidence, consequent support, best general confidence)."""

    def verdicts(confidence: np.ndarray, support: np.ndarray, general: np.ndarray) -> dict[str, np.ndarray]:
        return {"_verdict": rule_verdicts(confidence, support, general if config.drop_redundant else None, config)}

    return verdicts


def with_measures(rules: DataFrame, n: int) -> DataFrame:
    """``rules`` (with the three counts) plus every measure, computed on the executors by the policy's code."""

    def measured(*counts: np.ndarray) -> dict[str, np.ndarray]:
        return interest_measures(n, *counts)

    return with_kernel(rules, measured, RULE_COUNTS, dict.fromkeys(MEASURES, "double"))


def _significant(rules: DataFrame, n: int, config: RulesConfig) -> DataFrame:
    """Rules whose Fisher p-value, corrected over all rules (:func:`pipeline.policy.measures.adjust_p_values`),
    passes ``rules.max_p_value`` (:func:`pipeline.policy.rules.significant`).

    The correction ranks every p-value at once: the rules meet in one partition
    (as a global sort would put them) and the policy's functions run there.
    """
    from pyspark.sql import types as T

    def tested(*counts: np.ndarray) -> dict[str, np.ndarray]:
        return {"p_value": fisher_p_values(n, *counts)}

    rules = with_kernel(rules, tested, RULE_COUNTS, {"p_value": "double"})
    schema = T.StructType([*rules.schema.fields, T.StructField("p_value_adjusted", T.DoubleType())])

    def corrected(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        held = list(batches)
        p = np.concatenate([b.column("p_value").to_numpy(zero_copy_only=False) for b in held] or [np.empty(0)])
        adjusted = adjust_p_values(p, config.p_adjust)
        keep = significant(adjusted, config)
        start = 0
        for batch in held:
            part = slice(start, start + batch.num_rows)
            start += batch.num_rows
            column = pa.array(adjusted[part], pa.float64())
            added = pa.RecordBatch.from_arrays(
                [*batch.columns, column], names=[*batch.schema.names, "p_value_adjusted"]
            )
            yield added.filter(pa.array(keep[part]))

    return map_in_arrow(rules.repartition(1), corrected, schema)


def pair_itemsets(
    baskets: DataFrame, count: int, min_count: int, model: ModelConfig | None = None
) -> tuple[SparkItemsets, tuple[np.ndarray, np.ndarray] | None]:
    """Every product and every pair of products in at least ``min_count`` baskets, counted exactly, persisted,
    each pair with its distinct ``customers`` (:func:`pair_customers`); with ``model``, the item model's
    Gram matrix and products too (:func:`model_gram`), from the same count.

    The pairs come from each basket's products joined with themselves
    (:func:`pipeline.local.itemsets.pair_itemsets` counts the same with a sparse
    product): one self-join of the baskets serves the pairs, their customers
    and the Gram matrix, which took three.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    ids, counts = _product_counts(baskets)
    chosen = ids[model_products(ids, counts, model)] if model is not None else ids[:0]
    frequent = ids[counts >= min_count]
    together = _co_occurrences(baskets, np.union1d(frequent, chosen), chosen, owners=True)
    together = together.persist(StorageLevel.MEMORY_AND_DISK)
    singles = baskets.sparkSession.createDataFrame(
        [([str(p)], 1, int(n), None) for p, n in zip(ids, counts, strict=True) if n >= min_count],
        "items array<string>, length int, count long, customers long",
    )
    pairs = together.where((F.col("a") < F.col("c")) & (F.col("count") >= min_count))
    frame = singles.unionByName(
        pairs.select(F.array("a", "c").alias("items"), F.lit(2).alias("length"), "count", "customers")
    )
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    by_length = {int(k): int(v) for k, v in frame.groupBy("length").count().collect()}
    gram = _gram(together, chosen) if model is not None else None
    together.unpersist()
    log.info(
        "pairs: %d products and %d pairs in at least %d baskets", by_length.get(1, 0), by_length.get(2, 0), min_count
    )
    return SparkItemsets(frame, count, min_count, by_length), gram


def pair_customers(rules: DataFrame, pairs: DataFrame) -> DataFrame:
    """``rules`` (one-product antecedents) with ``customers``: the distinct customers with a basket holding
    both products (a basket without customer id is its own customer), as :func:`pair_itemsets` counted
    them with the ``pairs``."""
    from pyspark.sql import functions as F

    a, c = F.col("antecedent")[0], F.col("consequent")
    counted = pairs.where(F.col("length") == 2).select(
        F.col("items")[0].alias("_a"), F.col("items")[1].alias("_c"), "customers"
    )
    return (
        rules.withColumns({"_a": F.least(a, c), "_c": F.greatest(a, c)})
        .join(counted, ["_a", "_c"], "left")
        .drop("_a", "_c")
        .fillna(0, ["customers"])
    )


def model_gram(baskets: DataFrame, config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """The item model's Gram matrix (:meth:`pipeline.engine.OfferEngine.model_gram`) from the cluster.

    The products' basket counts come to the driver (one row per product),
    which picks the model's products as the local engine does; their pair
    counts (at most ``max_items^2 / 2`` rows, the bound of the dense model) are
    counted by a self-join of the baskets and collected into the matrix.
    """
    ids, counts = _product_counts(baskets)
    chosen = ids[model_products(ids, counts, config)]
    return _gram(_co_occurrences(baskets, chosen, chosen), chosen)


def _product_counts(baskets: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Every product id and its basket count, on the driver (one row per product)."""
    from pyspark.sql import functions as F

    counted = baskets.select(F.explode("items").alias("product_id")).groupBy("product_id").count().toArrow()
    ids = np.asarray(counted.column("product_id").to_pylist(), dtype=object)
    return ids, counted.column("count").to_numpy().astype(np.int64)


def _co_occurrences(baskets: DataFrame, products: np.ndarray, chosen: np.ndarray, owners: bool = False) -> DataFrame:
    """``a``, ``c`` (product ids, ``a <= c``), ``count``: the baskets holding both, for every pair of
    ``products`` bought together, and each one's position among ``chosen`` (``a_at``, ``c_at``; -1 outside);
    with ``owners``, ``customers`` too: the distinct customers of those baskets (a basket without
    customer id is its own customer), counted as the baskets of each (pair, customer) in one
    aggregation and those in a second, over the same join."""
    from pyspark.sql import functions as F

    at = {product: i for i, product in enumerate(chosen)}
    members = baskets.sparkSession.createDataFrame(
        [(str(p), at.get(p, -1)) for p in products], "product_id string, position int"
    )
    # Whose basket: the customer, or the basket itself without one (the two kinds of id kept apart).
    owner = F.coalesce(F.concat(F.lit("c"), "customer_id"), F.concat(F.lit("o"), "order_id"))
    inside = (
        baskets.select("order_id", owner.alias("owner"), F.explode("items").alias("product_id"))
        .join(F.broadcast(members), "product_id")
        .select("order_id", "owner", "product_id", "position")
    )
    first = inside.select("order_id", "owner", F.col("product_id").alias("a"), F.col("position").alias("a_at"))
    second = inside.select("order_id", F.col("product_id").alias("c"), F.col("position").alias("c_at"))
    joined = first.join(second, "order_id").where(F.col("a") <= F.col("c"))
    pair = ["a", "c", "a_at", "c_at"]
    if not owners:
        return joined.groupBy(*pair).agg(F.count("*").alias("count"))
    return (
        joined.groupBy(*pair, "owner")
        .agg(F.count("*").alias("count"))
        .groupBy(*pair)
        .agg(F.sum("count").alias("count"), F.count("*").alias("customers"))
    )


def _gram(together: DataFrame, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Gram matrix of ``chosen`` from their co-occurrences (:func:`_co_occurrences`), collected as
    Arrow batches (millions of pairs), and ``chosen``."""
    from pyspark.sql import functions as F

    pairs = together.where((F.col("a_at") >= 0) & (F.col("c_at") >= 0)).select("a_at", "c_at", "count").toArrow()
    gram = np.zeros((chosen.size, chosen.size))
    a, c, n = (pairs.column(name).to_numpy().astype(np.int64) for name in ("a_at", "c_at", "count"))
    gram[a, c] = n
    gram[c, a] = n
    return gram, chosen
