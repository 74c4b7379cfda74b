"""The two engines on the same input at growing sizes: wall time and peak memory, and where they cross.

Usage::

    python benchmarks/engines.py            # 10k, 100k, 300k, 1M baskets (about an hour; 25 min without 1M)
    python benchmarks/engines.py --baskets 10000 100000 --repeats 3
    make bench-engines

Each size is a synthetic Instacart-like export (``benchmarks/synthetic.py``,
about 10.5 order lines a basket, cached in ``benchmarks/.cache``), run as a
whole ``basket run`` process with ``engine = "local"`` and with
``engine = "spark"`` (``local[*]``: every core of this machine), same config,
one after the other in this invocation. Peak memory is the largest sum of the
resident sets of the process and all its descendants (the Spark engine's JVM is
a child of the Python driver), sampled every 50 ms from ``/proc``. Medians over
``--repeats``; the ratio spark / local is taken within the run. Results go to
``benchmarks/results/engines.json`` and ``engines.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
#: The config of every benchmarked run (engine and input filled in): support 0.0005, max_len 3, gates off.
RUN_CONFIG = """
engine = "{engine}"
[input]
paths = ["{input}"]
[clean]
max_basket_size = 1000000
[mine]
min_support = 0.0005
max_len = 3
[gates]
enabled = false
[spark]
master = "local[*]"
conf = {{ "spark.ui.enabled" = false, "spark.driver.memory" = "12g" }}
"""


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every descendant, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * 4096
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def measure(
    command: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[float | None, float | None, str]:
    """Wall seconds and peak tree RSS (MiB) of one run (``env``: its environment), or None and why not."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        if time.perf_counter() - start > timeout:
            process.kill()
            process.wait()
            return None, None, f"timeout after {timeout:.0f} s"
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        error = (
            (process.stderr.read().decode(errors="replace").strip().splitlines() or ["?"])[-1]
            if process.stderr
            else "?"
        )
        return None, None, f"exit {process.returncode}: {error}"
    return elapsed, peak / 2**20, "ok"


def dataset(baskets: int, text_ids: bool = False) -> Path:
    """The cached synthetic export of ``baskets`` baskets (made on first use); ``text_ids``: ids as text."""
    path = CACHE / f"synthetic_{baskets}{'_text' if text_ids else ''}.parquet"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "synthetic.py"), "--baskets", str(baskets), "--out", str(path)]
            + (["--text-ids"] if text_ids else []),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, nargs="+", default=[10_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    rows = []
    for baskets in args.baskets:
        path = dataset(baskets)
        import pyarrow.parquet as pq

        row: dict[str, object] = {"baskets": baskets, "lines": pq.ParquetFile(path).metadata.num_rows}
        for engine in ("local", "spark"):
            with tempfile.TemporaryDirectory() as work:
                config = Path(work) / "config.toml"
                config.write_text(RUN_CONFIG.format(engine=engine, input=path))
                command = [
                    sys.executable,
                    "-m",
                    "pipeline",
                    "-q",
                    "run",
                    "--config",
                    str(config),
                    "--output",
                    str(Path(work) / "out"),
                ]
                runs = [measure(command, args.timeout) for _ in range(args.repeats)]
            done = [r for r in runs if r[0] is not None]
            row[f"{engine}_s"] = statistics.median(r[0] for r in done) if done else None
            row[f"{engine}_rss_mb"] = statistics.median(r[1] for r in done) if done else None
            row[f"{engine}_runs"] = len(done)
            row[f"{engine}_status"] = runs[-1][2]
        if row["local_s"] and row["spark_s"]:
            row["spark_over_local"] = row["spark_s"] / row["local_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engines.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS / "engines.md").write_text(markdown(rows))


def write_results(name: str, rows: list[dict[str, object]], title: str, columns: list[tuple[str, str, str]]) -> None:
    """``rows`` as ``results/<name>.json`` and as a markdown table under ``title`` in ``results/<name>.md``.

    ``columns``: (header, key, format spec) per column of the table.
    """
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [title, "", "| " + " | ".join(h for h, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format(row[key], spec) for _, key, spec in columns) + " |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def markdown(rows: list[dict[str, object]]) -> str:
    """The results as the table docs/spark.md quotes."""

    def fmt(value: object, digits: int = 1) -> str:
        return "" if value is None else f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"

    lines = [
        "| baskets | order lines | local s | local peak MiB | spark s | spark peak MiB | spark / local |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {fmt(row['baskets'])} | {fmt(row['lines'])} | {fmt(row['local_s'])} | {fmt(row['local_rss_mb'], 0)} "
            f"| {fmt(row['spark_s'])} | {fmt(row['spark_rss_mb'], 0)} | {fmt(row.get('spark_over_local'), 2)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
