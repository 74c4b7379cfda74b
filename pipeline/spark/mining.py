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
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pipeline.local.baskets import ORDER_COLUMNS
from pipeline.config import MineConfig, RulesConfig, SparkConfig
from pipeline.errors import ConfigError
from pipeline.local.itemsets import min_count_for
from pipeline.policy.measures import fisher_p_values, interest_measures

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

#: The measures :func:`interest_measures` returns, in its order.
MEASURES = (
    "support", "confidence", "lift", "leverage", "conviction", "all_confidence", "kulczynski", "jaccard",
    "certainty", "zhang",
)


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
    baskets = lines.groupBy("order_id").agg(F.array_sort(F.collect_set("product_id")).alias("items"), first.alias("first"))
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
    by_length = dict(frame.groupBy("length").count().collect())
    total = sum(by_length.values())
    shown = ", ".join(f"{n:,} of length {k}" for k, n in sorted(by_length.items()))
    if mine.max_itemsets is not None and total > mine.max_itemsets:
        frame.unpersist()
        raise ConfigError(
            f"mine.max_itemsets: this data gave {total:,} frequent itemsets ({shown}), more than "
            f"{mine.max_itemsets:,}; raise mine.min_support (now {min_count} baskets) or lower mine.max_len "
            f"(now {mine.max_len}), or raise mine.max_itemsets if the cluster's memory allows"
        )
    log.info("itemsets: %d frequent itemsets (%s) with spark fpgrowth at min count %d of %d baskets",
             total, shown or "none", min_count, count)
    return SparkItemsets(frame, count, min_count, {int(k): int(v) for k, v in by_length.items()})


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
    # Every itemset of k >= 2 products gives k candidate rules, known before any is built.
    candidates = sum(k * n for k, n in itemsets.by_length.items() if k >= 2)
    if config.max_candidates is not None and candidates > config.max_candidates:
        raise ConfigError(
            f"rules.max_candidates: {itemsets.count:,} itemsets give {candidates:,} candidate rules, more than "
            f"{config.max_candidates:,}; raise mine.min_support or lower mine.max_len, "
            "or raise rules.max_candidates"
        )
    counts = frame.select(F.col("items").alias("antecedent"), F.col("count").alias("antecedent_count"))
    singles = frame.where("length = 1").select(F.col("items")[0].alias("consequent"), F.col("count").alias("consequent_count"))
    kept, best = [], None
    for size in range(2, longest + 1):
        level = (
            frame.where(F.col("length") == size)
            .select(F.col("count").alias("pair_count"), "items", F.explode("items").alias("consequent"))
            .select("pair_count", "consequent", F.filter("items", lambda x: x != F.col("consequent")).alias("antecedent"))
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
        keep = (F.col("_confidence") >= config.min_confidence) & (F.col("_confidence") / consequent_support > config.min_lift)
        if config.drop_redundant:
            keep = keep & (F.col("_general") < F.col("_confidence"))
        kept.append(level.where(keep).select("antecedent", "consequent", "antecedent_count", "consequent_count", "pair_count"))
    if not kept:
        rules = counts.where(F.lit(False)).select(
            "antecedent", F.lit("").alias("consequent"), "antecedent_count",
            F.lit(0).cast("long").alias("consequent_count"), F.lit(0).cast("long").alias("pair_count"),
        )
    else:
        rules = kept[0]
        for more in kept[1:]:
            rules = rules.unionByName(more)
    rules = with_measures(rules, n)
    if config.max_p_value is not None:
        rules = _significant(rules, n, config)
    else:
        rules = rules.withColumns({"p_value": F.lit(None).cast("double"), "p_value_adjusted": F.lit(None).cast("double")})
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
    return dropped.join(shorter, ["_shorter", "consequent"]).groupBy("antecedent", "consequent").agg(
        F.max("_best").alias("_general")
    )


def with_measures(rules: DataFrame, n: int) -> DataFrame:
    """``rules`` (with the three counts) plus every measure, computed on the executors by the local engine's code."""
    from pyspark.sql import types as T

    schema = T.StructType(
        [*rules.schema.fields, *(T.StructField(name, T.DoubleType()) for name in MEASURES)]
    )

    def measured(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            values = interest_measures(n, *_rule_counts(batch))
            yield _append(batch, {name: values[name] for name in MEASURES})

    return map_in_arrow(rules, measured, schema)


def _significant(rules: DataFrame, n: int, config: RulesConfig) -> DataFrame:
    """Fisher's p-value of each rule, corrected over all rules (:func:`pipeline.policy.measures.adjust_p_values`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType([*rules.schema.fields, T.StructField("p_value", T.DoubleType())])

    def tested(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield _append(batch, {"p_value": fisher_p_values(n, *_rule_counts(batch))})

    rules = map_in_arrow(rules, tested, schema)
    m = rules.count()
    # The corrections read the p-values in order: one ordered pass (ties give equal adjusted values).
    ranked = Window.orderBy("p_value", "antecedent", "consequent")
    position = F.row_number().over(ranked)
    if config.p_adjust == "holm":
        stepped = F.max(F.col("p_value") * (F.lit(m) - position + 1)).over(ranked.rowsBetween(Window.unboundedPreceding, 0))
        adjusted = F.least(F.lit(1.0), stepped)
    elif config.p_adjust == "bh":
        scaled = rules.withColumn("_scaled", F.col("p_value") * F.lit(m) / position)
        down = Window.orderBy(F.desc("p_value"), F.desc("antecedent"), F.desc("consequent"))
        stepped = F.min("_scaled").over(down.rowsBetween(Window.unboundedPreceding, 0))
        return scaled.withColumn("p_value_adjusted", F.least(F.lit(1.0), stepped)).drop("_scaled").where(
            F.col("p_value_adjusted") <= config.max_p_value
        )
    else:
        adjusted = F.col("p_value")
    rules = rules.withColumn("p_value_adjusted", adjusted)
    return rules.where(F.col("p_value_adjusted") <= config.max_p_value)


def _rule_counts(batch: pa.RecordBatch) -> list[np.ndarray]:
    """n(A), n(C) and n(A u C) of a batch of rules, the arguments of every measure."""
    return [batch.column(c).to_numpy(zero_copy_only=False) for c in ("antecedent_count", "consequent_count", "pair_count")]


def _append(batch: pa.RecordBatch, columns: dict[str, np.ndarray]) -> pa.RecordBatch:
    """``batch`` with float columns added; NaN becomes null, as the local tables publish it."""
    arrays = [*batch.columns, *(pa.array(v, pa.float64(), from_pandas=True) for v in columns.values())]
    return pa.RecordBatch.from_arrays(arrays, names=[*batch.schema.names, *columns])


def map_in_arrow(frame: DataFrame, function: object, schema: object) -> DataFrame:
    """``frame.mapInArrow``: Arrow batches in and out on the executors, no pandas involved.

    pyspark checks the pandas version before any Arrow UDF and warns that
    pandas 3 is not fully supported; this path never converts to pandas, so
    that warning does not apply here and is silenced for this call only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        return frame.mapInArrow(function, schema)  # type: ignore[arg-type]
