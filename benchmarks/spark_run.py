"""``basket run`` on the Spark engine at two revisions: time, the driver's peak memory, the same tables.

Usage::

    python benchmarks/spark_run.py --base main~1
    python benchmarks/spark_run.py --base 4f2f4f5 --repeats 5 --master 'local-cluster[1,2,1024]'
    python benchmarks/spark_run.py --base main~1 --baskets 100000   # a synthetic Parquet export instead

The job of ``configs/default.toml`` on the embedded sample (two months of
Online Retail, 145k lines) runs with ``engine = "spark"`` in a fresh process per
measurement at both revisions, alternating (``revisions.py``); a new Spark
session each time, so its start is in the time, as in a nightly run. The hash
covers every published table but the run's own ids, so a speed-up that changes
a row stops the benchmark. ``--master`` defaults to ``local[2]`` (every core of
this machine); the test suite's ``local-cluster`` master runs the executor in a
JVM of its own. ``--baskets N`` measures the synthetic Instacart-like Parquet
export of ``engines.py`` instead (its config: support 0.0005, ``max_len`` 3,
gates off, no catalog). Results go to ``benchmarks/results/spark_run.json`` and ``.md``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from engines import ROOT, RUN_CONFIG, dataset
from revisions import REPORT, arguments, compared

#: Run in the measured process, with the revision's package first on the path.
_MEASURE = (
    """
import hashlib, json, resource, sys, tempfile, time
import pyarrow.parquet as pq
from pipeline import load_config, run
from pipeline.contract.schema import TABLES
path, config_file, master = sys.argv[1], sys.argv[2], MASTER
with tempfile.TemporaryDirectory() as out:
    values = {"input.paths": [path], "output.dir": out, "engine": "spark", "spark.master": master}
    config = load_config(config_file, values=values)
    started = time.perf_counter()
    result = run(config)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    for name in sorted(TABLES):
        table = pq.read_table(result.run_dir / f"{name}.parquet")
        table = table.drop_columns([c for c in ("run_id",) if c in table.column_names])
        digest.update(name.encode() + table.to_pandas().round(9).to_csv(index=False).encode())
"""
    + REPORT
)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]", help="spark.master for both revisions")
    parser.add_argument("--baskets", type=int, nargs="+", help="synthetic Parquet exports of these sizes instead")
    args = parser.parse_args()
    script = _MEASURE.replace("MASTER", repr(args.master))
    with tempfile.TemporaryDirectory() as work:
        if args.baskets:
            inputs = []
            for baskets in args.baskets:
                path = dataset(baskets)
                config = Path(work) / f"synthetic_{baskets}.toml"
                config.write_text(RUN_CONFIG.format(engine="spark", input=path))
                inputs.append((f"{baskets:,} synthetic baskets (Parquet)", path, str(config)))
        else:
            sample = ROOT / "data" / "online_retail_2011-10_2011-11.csv.gz"
            inputs = [("the embedded sample (CSV)", sample, str(ROOT / "configs" / "default.toml"))]
        what = (
            f"`basket run` with `engine = \"spark\"` (`spark.master` {args.master}), the driver's peak (not the JVM's)"
        )
        compared("spark_run", script, inputs, args, what, "the same tables")


if __name__ == "__main__":
    main()
