"""``basket run`` at two revisions, either engine: time, peak memory, the same tables.

Usage::

    python benchmarks/whole_run.py --base main~1                       # local engine, the embedded sample
    python benchmarks/whole_run.py --base main~1 --baskets 3000000 --text-ids
    python benchmarks/whole_run.py --base faf7a9d --engine spark
    python benchmarks/whole_run.py --base 4f2f4f5 --engine spark --master 'local-cluster[1,2,1024]'

Each measurement is the ``basket`` command itself (its ``main``, in a fresh
process, so Arrow's allocator is set up as the command sets it) at one
revision, alternating base and working tree (``revisions.py``). The embedded
sample runs ``configs/default.toml``; ``--baskets N`` the synthetic
Instacart-like Parquet export of ``engines.py`` instead (its config: support
0.0005, ``max_len`` 3, gates off, no catalog; ``--text-ids`` for order and
product ids as zero-padded text, as ``synthetic.py`` writes them). On Spark a
new session each time, so its start is in the time, as in a nightly run; the
peak is the driver's (not the JVM's). The hash covers every published table but
the run's own ids (row by row in Arrow and pandas: through CSV it took about
a minute a measurement at 3 M baskets), so a speed-up that changes a row stops
the benchmark.
Results go to ``benchmarks/results/whole_run_<engine>.json`` and ``.md``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from engines import ROOT, RUN_CONFIG, dataset
from revisions import REPORT, arguments, compared

#: Run in the measured process, with the revision's package first on the path.
_MEASURE = (
    """
import hashlib, sys, tempfile, time
from pathlib import Path
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pipeline.cli import main
from pipeline.contract.schema import TABLES
path, config_file = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as out:
    options = ["-q", "run", "--config", config_file, "--input", path, "--output", out, *OPTIONS]
    started = time.perf_counter()
    main.main(options, prog_name="basket", standalone_mode=False)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256()

    def hashed(array):
        # Hashes of a column's values row by row (floats to 9 decimals), a list's lengths and items too.
        if pa.types.is_list(array.type):
            return [pc.list_value_length(array).fill_null(-1).to_numpy(), *hashed(pc.list_flatten(array))]
        if pa.types.is_floating(array.type):
            array = pc.round(array, 9)
        return [pd.util.hash_pandas_object(array.to_pandas(), index=False).to_numpy()]

    for name in sorted(TABLES):
        table = pq.read_table(Path(out) / "latest" / f"{name}.parquet")
        table = table.drop_columns([c for c in ("run_id",) if c in table.column_names])
        digest.update(name.encode() + str([(f.name, str(f.type)) for f in table.schema]).encode())
        for column in table.columns:
            for values in hashed(column.combine_chunks()):
                digest.update(values.tobytes())
"""
    + REPORT
)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--master", default="local[2]", help="spark.master for both revisions (spark engine)")
    parser.add_argument("--baskets", type=int, nargs="+", help="synthetic Parquet exports of these sizes instead")
    parser.add_argument("--text-ids", action="store_true", help="the synthetic exports' ids as text")
    args = parser.parse_args()
    options = ["--engine", args.engine]
    if args.engine == "spark":
        options += ["--set", f"spark.master={args.master}"]
    script = _MEASURE.replace("OPTIONS", repr(options))
    with tempfile.TemporaryDirectory() as work:
        if args.baskets:
            inputs = []
            for baskets in args.baskets:
                path = dataset(baskets, text_ids=args.text_ids)
                config = Path(work) / f"synthetic_{baskets}.toml"
                config.write_text(RUN_CONFIG.format(engine=args.engine, input=path))
                ids = "text" if args.text_ids else "integer"
                inputs.append((f"{baskets:,} synthetic baskets (Parquet, {ids} ids)", path, str(config)))
        else:
            sample = ROOT / "data" / "online_retail_2011-10_2011-11.csv.gz"
            inputs = [("the embedded sample (CSV)", sample, str(ROOT / "configs" / "default.toml"))]
        where = f", `spark.master` {args.master}, the driver's peak (not the JVM's)" if args.engine == "spark" else ""
        what = f'`basket run` with `engine = "{args.engine}"`{where}'
        compared(f"whole_run_{args.engine}", script, inputs, args, what, "the same tables")


if __name__ == "__main__":
    main()
