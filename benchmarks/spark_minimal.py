"""The Spark engine against a minimal hand-written Spark job on the same export: how much the pipeline adds.

Usage::

    python benchmarks/spark_minimal.py                      # 100,000 synthetic baskets, local[2]
    python benchmarks/spark_minimal.py --baskets 300000 --repeats 5
    python benchmarks/spark_minimal.py --set pairs.enabled=false --set rank.by=confidence \
        --set post_purchase.enabled=false --set upsell.enabled=false --set bundles.enabled=false

Both run in fresh processes, one after the other, ``--repeats`` times each, on
the synthetic Instacart-like Parquet export of ``engines.py`` with the same
master and session settings (``pipeline.spark.session``: the shuffle partitions
and adaptive execution a ``local`` master gets):

- **ours**: ``basket run --engine spark`` with ``engines.py``'s config
  (support 0.0005, ``max_len`` 3, gates off; everything else at its default:
  the product page's pairs and their customer floor, the item model, the
  post-purchase rules, buy-again, the published tables);
- **minimal**: read the Parquet file, drop lines without ids or with a
  quantity or price at or below zero, group the lines into baskets, MLlib's
  ``FPGrowth`` at the same support, itemsets of at most 3 products,
  ``associationRules`` at the default confidence, itemsets and rules written
  as Parquet: what a data engineer writes in an afternoon, without the
  cleaning's reasons, the item model or any placement.

Medians; ratio = ours / minimal within the run. Results go to
``benchmarks/results/spark_minimal.json`` and ``.md`` (``spark_minimal_set``
with ``--set``: ours with config overrides, such as the minimal job's outputs
only).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engines import ROOT, RUN_CONFIG, dataset, write_results

#: The minimal job, run as ``python -c``: input path, master, support, confidence, output directory.
_MINIMAL = """
import sys
from pyspark.ml.fpm import FPGrowth
from pyspark.sql import functions as F
from pipeline.config import SparkConfig
from pipeline.spark.session import spark_session
path, master, support, confidence, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
spark = spark_session(SparkConfig(master=master, conf={"spark.ui.enabled": False, "spark.driver.memory": "12g"}))
lines = spark.read.parquet(path).where(
    F.col("order_id").isNotNull() & F.col("product_id").isNotNull()
    & (F.col("quantity") > 0) & (F.col("unit_price") > 0)
)
baskets = lines.groupBy("order_id").agg(F.collect_set(F.col("product_id").cast("string")).alias("items"))
model = FPGrowth(itemsCol="items", minSupport=support, minConfidence=confidence).fit(baskets)
model.freqItemsets.where(F.size("items") <= 3).write.parquet(out + "/itemsets")
model.associationRules.where(F.size("antecedent") <= 2).write.parquet(out + "/rules")
spark.stop()
"""


def timed(command: list[str]) -> float:
    """Wall seconds of one process, which must succeed."""
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, default=100_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for ours (repeatable): e.g. the minimal job's outputs only",
    )
    args = parser.parse_args()
    path = dataset(args.baskets)
    ours: list[float] = []
    minimal: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "run.toml"
        config.write_text(RUN_CONFIG.format(engine="spark", input=path))
        for repeat in range(args.repeats):
            out = Path(work) / f"run{repeat}"
            run = ["-q", "run", "--config", str(config), "--output", str(out), "--set", f"spark.master={args.master}"]
            run += [f"--set={override}" for override in args.overrides]
            ours.append(timed([sys.executable, "-m", "pipeline", *run]))
            job = [
                sys.executable,
                "-c",
                _MINIMAL,
                str(path),
                args.master,
                "0.0005",
                "0.05",
                str(Path(work) / f"m{repeat}"),
            ]
            minimal.append(timed(job))
            print(f"ours {ours[-1]:.1f} s, minimal {minimal[-1]:.1f} s", flush=True)
    row = {
        "baskets": args.baskets,
        "master": args.master,
        "ours_set": " ".join(args.overrides) or "defaults",
        "ours_s": statistics.median(ours),
        "minimal_s": statistics.median(minimal),
        "ratio": statistics.median(ours) / statistics.median(minimal),
    }
    write_results(
        "spark_minimal_set" if args.overrides else "spark_minimal",
        [row],
        f"`basket run --engine spark` (ours) against a minimal FPGrowth job on the same synthetic Parquet "
        f"export, `{args.master}`, medians of {args.repeats} processes each, one after the other; "
        "ratio = ours / minimal.",
        [
            ("baskets", "baskets", ","),
            ("master", "master", ""),
            ("ours with", "ours_set", ""),
            ("ours s", "ours_s", ".1f"),
            ("minimal s", "minimal_s", ".1f"),
            ("ratio", "ratio", ".2f"),
        ],
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
