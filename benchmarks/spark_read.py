"""The Spark engine's cleaning of typed Parquet columns: cast as typed against the text round trip.

Usage::

    python benchmarks/spark_read.py                     # 100k and 300k synthetic baskets, 3 repeats
    python benchmarks/spark_read.py --baskets 300000 --repeats 5

In one Spark session (``spark.master`` default, ``local[*]``: both cores here), the lines of a synthetic Parquet export
(``benchmarks/synthetic.py``: integer quantity, float price, timestamp columns)
are cleaned by ``pipeline.spark.lines`` twice per repeat, alternating: as read
(numbers and timestamps typed, cast as they are) and with those columns cast
to text first, which is what the engine did before: render every value as
text, match it with a pattern, parse it back. Each measurement is one scan to
the count of kept lines and the counts per reason; both must agree. Medians;
the ratio typed / text is taken within the run. Results go to
``benchmarks/results/spark_read.json`` and ``spark_read.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from engines import dataset, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pyspark.sql import functions as F

    from pipeline.config import load_config
    from pipeline.spark.lines import _cleaned, read_lines
    from pipeline.spark.session import spark_session

    rows = []
    for baskets in args.baskets:
        path = dataset(baskets)
        config = load_config(values={"input.paths": [str(path)], "clean.max_basket_size": None, "engine": "spark"})
        spark = spark_session(config.spark)
        raw, files = read_lines(spark, config.input)
        typed = [f"raw_{c}" for c in ("quantity", "unit_price", "timestamp")]
        as_text = raw.withColumns({c: F.col(c).cast("string") for c in typed})
        seconds: dict[str, list[float]] = {"typed": [], "text": []}
        answers = set()
        for _ in range(args.repeats):
            for name, frame in (("text", as_text), ("typed", raw)):
                start = time.perf_counter()
                lines = _cleaned(frame, files, config)
                kept = lines.kept.count()
                seconds[name].append(time.perf_counter() - start)
                answers.add((kept, json.dumps(lines.counts, sort_keys=True)))
                # Cleaning persists its lines: the next measurement must not find them cached.
                spark.catalog.clearCache()
        if len(answers) != 1:
            raise SystemExit(f"{path}: the two readings clean differently: {answers}")
        row: dict[str, object] = {"baskets": baskets, "lines": files[0].rows}
        for name, found in seconds.items():
            row[f"{name}_s"] = statistics.median(found)
        row["ratio"] = float(row["typed_s"]) / float(row["text_s"])  # type: ignore[arg-type]
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results(
        "spark_read",
        rows,
        f"Spark engine, cleaning to the kept-line count (`local[*]`, 2 cores), medians of {args.repeats}; "
        "ratio = typed columns cast as read / the text round trip; the same kept lines and reasons.",
        [
            ("baskets", "baskets", ","),
            ("lines", "lines", ","),
            ("typed s", "typed_s", ".1f"),
            ("text s", "text_s", ".1f"),
            ("ratio", "ratio", ".2f"),
        ],
    )


if __name__ == "__main__":
    main()
