"""Arrow's allocator: the command's jemalloc against the pyarrow wheel's default mimalloc, whole runs.

Usage::

    python benchmarks/allocator.py                    # 1M baskets (text and integer ids), Online Retail
    python benchmarks/allocator.py --baskets 300000 --repeats 5

``basket run`` sets Arrow's default memory pool to jemalloc unless
``ARROW_DEFAULT_MEMORY_POOL`` names one (``pipeline/cli.py``). Each input runs
as a whole ``basket run`` process twice per repeat, alternating: once as the
command sets it, once with ``ARROW_DEFAULT_MEMORY_POOL=mimalloc``. Wall time
and the peak resident set (sampled from ``/proc`` as in ``engines.py``);
medians over ``--repeats``; the ratios are taken within the run. Results go to
``benchmarks/results/allocator.json`` and ``allocator.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import tomllib
from pathlib import Path

from engines import ROOT, dataset, measure, write_results

_CONFIG = """
[input]
paths = ["{input}"]
{mapping}
[clean]
max_basket_size = 1000000
[mine]
min_support = {support}
max_len = 3
[gates]
enabled = false
"""
_RETAIL = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
#: The Online Retail export's column names, as the sample config maps them.
_RETAIL_COLUMNS = "[input.columns]\n" + "".join(
    f'{canon} = "{name}"\n'
    for canon, name in tomllib.loads((ROOT / "configs" / "default.toml").read_text())["input"]["columns"].items()
)


def run_once(config: Path, output: Path, pool: str | None) -> tuple[float | None, float | None, str]:
    """One ``basket run`` with Arrow's pool as the command sets it (None) or forced to ``pool``."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    command = [sys.executable, "-m", "pipeline", "-q", "run", "--config", str(config), "--output", str(output)]
    return measure(command, timeout=1800, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    inputs = [
        (f"synthetic {args.baskets:,} baskets, text ids", dataset(args.baskets, text_ids=True), "", 0.0005),
        (f"synthetic {args.baskets:,} baskets, integer ids", dataset(args.baskets), "", 0.0005),
    ]
    if _RETAIL.exists():
        inputs.append(("Online Retail, full year (CSV)", _RETAIL, _RETAIL_COLUMNS, 0.01))
    rows = []
    for name, path, mapping, support in inputs:
        with tempfile.TemporaryDirectory() as work:
            config = Path(work) / "config.toml"
            config.write_text(_CONFIG.format(input=path, mapping=mapping, support=support))
            runs: dict[str, list[tuple[float, float]]] = {"jemalloc": [], "mimalloc": []}
            for _ in range(args.repeats):
                for label, pool in (("jemalloc", None), ("mimalloc", "mimalloc")):
                    seconds, peak, status = run_once(config, Path(work) / label, pool)
                    if seconds is None or peak is None:
                        raise SystemExit(f"{name} with {label}: {status}")
                    runs[label].append((seconds, peak))
        row: dict[str, object] = {"input": name}
        for label, found in runs.items():
            row[f"{label}_s"] = statistics.median(s for s, _ in found)
            row[f"{label}_rss_mb"] = statistics.median(m for _, m in found)
        row["time_ratio"] = float(row["jemalloc_s"]) / float(row["mimalloc_s"])  # type: ignore[arg-type]
        row["rss_ratio"] = float(row["jemalloc_rss_mb"]) / float(row["mimalloc_rss_mb"])  # type: ignore[arg-type]
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results(
        "allocator",
        rows,
        f"Whole `basket run`, medians of {args.repeats}; ratio = jemalloc (the command's) / mimalloc (the wheel's).",
        [
            ("input", "input", ""),
            ("jemalloc s", "jemalloc_s", ".1f"),
            ("mimalloc s", "mimalloc_s", ".1f"),
            ("time ratio", "time_ratio", ".2f"),
            ("jemalloc peak MB", "jemalloc_rss_mb", ",.0f"),
            ("mimalloc peak MB", "mimalloc_rss_mb", ",.0f"),
            ("peak ratio", "rss_ratio", ".2f"),
        ],
    )


if __name__ == "__main__":
    main()
