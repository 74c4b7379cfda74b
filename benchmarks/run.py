"""The benchmark suite: whole ``basket run`` invocations and the mining stage, against baselines.

Usage::

    python benchmarks/run.py            # everything (about 40 minutes here)
    python benchmarks/run.py --quick    # a subset in under a minute
    python benchmarks/run.py --only "10,000,000" --merge   # one scenario, into the full results
    make bench / make bench-quick       # the same, in the project's .venv

Each scenario runs, in the same invocation and on the same machine:

- **ours end to end**: ``basket run`` as a subprocess, input file in, published
  Parquet out; wall time and that process's peak RSS;
- **baseline end to end**: ``benchmarks/baseline_mlxtend.py`` (pandas read and
  clean, ``TransactionEncoder``, mlxtend ``fpgrowth``, ``association_rules``,
  ``to_parquet``), measured the same way, where it can run at all;
- **mining stage**: our ``frequent_itemsets`` (engine ``fim``), mlxtend's
  fpgrowth through the same code (engine ``mlxtend``), and a bare pyfim call on
  the same baskets, in one process.

Times are medians over ``--repeats`` runs; ratios are taken within the run,
because the machine is shared and absolute times drift. Results go to
``benchmarks/results/results.json`` and ``results.md``; the scaling series also
draws ``docs/performance_scaling.png``. Data sets come from ``../shared/datasets``
(scenarios whose file is absent are skipped) and from ``benchmarks/synthetic.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / ".cache"
ONLINE_RETAIL = SHARED / "online_retail" / "online_retail.csv.gz"

_OR_CONFIG = """
[input]
paths = ["{input}"]
[input.columns]
order_id = "InvoiceNo"
product_id = "StockCode"
quantity = "Quantity"
unit_price = "UnitPrice"
timestamp = "InvoiceDate"
customer_id = "CustomerID"
segment = "Country"
[clean]
non_product_ids = ["POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"]
max_basket_size = 1000000
"""
_BASKETS_CONFIG = """
[input]
paths = ["{input}"]
format = "baskets"
delimiter = " "
[clean]
max_basket_size = 1000000
"""
_SYNTHETIC_CONFIG = """
[input]
paths = ["{input}"]
[clean]
max_basket_size = 1000000
"""


@dataclass
class Scenario:
    """One benchmark: an input, thresholds, and which measurements make sense for it."""

    name: str
    kind: str  # "online_retail", "baskets" or "synthetic"
    input: Path
    min_support: float
    max_len: int | None
    baseline: bool = True
    mining: bool = True
    quick: bool = False
    synthetic_baskets: int = 0
    #: The exit code of a successful measurement: 2 where the itemset guard must stop the run.
    expect_exit: int = 0
    results: dict[str, float | str | None] = field(default_factory=dict)


def scenarios() -> list[Scenario]:
    fimi = SHARED / "fimi"
    found = [
        Scenario(
            f"online_retail {s} max_len {m or 'unlimited'}",
            "online_retail",
            ONLINE_RETAIL,
            s,
            m,
            quick=(s == 0.01 and m == 3),
        )
        for s in (0.01, 0.005, 0.002)
        for m in (3, None)
        if (s, m) != (0.002, None)
    ]
    # 8.2 million itemsets: the guard (mine.max_itemsets, 5 million) stops the run.
    found.append(
        Scenario(
            "online_retail 0.002 max_len unlimited (guard stops it)",
            "online_retail",
            ONLINE_RETAIL,
            0.002,
            None,
            baseline=False,
            mining=False,
            expect_exit=2,
        )
    )
    found += [
        Scenario("retail.dat 0.001", "baskets", fimi / "retail.dat", 0.001, None),
        Scenario("chess.dat 0.52 (~0.9M itemsets)", "baskets", fimi / "chess.dat", 0.52, None),
    ]
    for baskets in (10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000):
        found.append(
            Scenario(
                f"synthetic {baskets:,} baskets",
                "synthetic",
                CACHE / f"synthetic_{baskets}.parquet",
                0.0005,
                3,
                baseline=False,
                mining=baskets <= 300_000,
                quick=baskets in (10_000, 100_000),
                synthetic_baskets=baskets,
            )
        )
    return found


def measure_process(command: list[str], timeout: float, expect_exit: int = 0) -> tuple[float | None, float | None, str]:
    """Wall seconds and peak RSS (MiB) of one child process ending with ``expect_exit``, or None and why not."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > timeout:
            process.send_signal(signal.SIGKILL)
            os.wait4(process.pid, 0)
            return None, None, f"timeout after {timeout:.0f} s"
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code == -signal.SIGKILL:
        return None, None, f"killed by the kernel after {elapsed:.0f} s (out of memory)"
    error = process.stderr.read().decode(errors="replace").strip().splitlines() if process.stderr else []
    if code != expect_exit:
        return None, None, f"failed: {error[-1] if error else code}"
    return elapsed, usage.ru_maxrss / 1024, "ok" if code == 0 else f"exit {code}, as expected"


def ours_command(scenario: Scenario, work: Path) -> list[str]:
    template = {"online_retail": _OR_CONFIG, "baskets": _BASKETS_CONFIG, "synthetic": _SYNTHETIC_CONFIG}
    config = work / "config.toml"
    config.write_text(template[scenario.kind].format(input=scenario.input))
    sets = [
        f"mine.min_support={scenario.min_support}",
        f"mine.max_len={scenario.max_len or 'none'}",
        "gates.enabled=false",
    ]
    command = [sys.executable, "-m", "pipeline", "-q", "run", "--config", str(config), "--output", str(work / "out")]
    for item in sets:
        command += ["--set", item]
    return command


def baseline_command(scenario: Scenario, work: Path) -> list[str]:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "baseline_mlxtend.py"),
        str(scenario.input),
        str(work / "baseline.parquet"),
        "--min-support",
        str(scenario.min_support),
    ]
    if scenario.max_len is not None:
        command += ["--max-len", str(scenario.max_len)]
    if scenario.kind == "baskets":
        command += ["--format", "baskets", "--delimiter", " "]
    return command


def mining_times(scenario: Scenario, repeats: int, work: Path) -> dict[str, float | None]:
    """Median seconds of the mining stage: ours, mlxtend through our code, bare pyfim."""
    import fim
    import numpy as np

    from pipeline.config import load_config
    from pipeline.flow.inputs import prepare_inputs
    from pipeline.local.itemsets import frequent_itemsets, min_count_for

    ours_command(scenario, work)  # writes the config
    values = {"mine.min_support": scenario.min_support, "mine.max_len": scenario.max_len, "gates.enabled": False}
    config = load_config(work / "config.toml", values=values)
    baskets = prepare_inputs(config).baskets
    matrix = baskets.matrix.tocsr()
    transactions = [row.tolist() for row in np.split(matrix.indices, matrix.indptr[1:-1])]
    min_count = min_count_for(config.mine, baskets.count)

    def median(run: object) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    result: dict[str, float | None] = {
        "baskets": float(baskets.count),
        "itemsets": float(len(frequent_itemsets(baskets, config.mine))),
        "mining_ours_s": median(lambda: frequent_itemsets(baskets, config.mine)),
        "mining_pyfim_s": median(
            lambda: fim.fpgrowth(transactions, supp=-min_count, zmax=scenario.max_len or 1 << 16, report="a")
        ),
        "mining_mlxtend_s": None,
    }
    if scenario.baseline:
        mlxtend = config.mine.model_copy(update={"engine": "mlxtend"})
        result["mining_mlxtend_s"] = median(lambda: frequent_itemsets(baskets, mlxtend))
    return result


def run_scenario(scenario: Scenario, repeats: int, timeout: float) -> None:
    """Measure one scenario. Heavy work runs in child processes, so that this
    process stays small: a child's peak RSS would otherwise include its parent's."""
    if scenario.kind == "synthetic" and not scenario.input.exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "synthetic.py"),
                "--baskets",
                str(scenario.synthetic_baskets),
                "--out",
                str(scenario.input),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if not scenario.input.exists():
        scenario.results["skipped"] = f"{scenario.input} not present"
        return
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        runs = _repeat(ours_command(scenario, work), repeats, timeout, scenario.expect_exit)
        ok = [r for r in runs if r[0] is not None]
        scenario.results["lines"] = _lines(scenario)
        scenario.results["ours_s"] = statistics.median(r[0] for r in ok) if ok else None
        scenario.results["ours_rss_mb"] = statistics.median(r[1] for r in ok) if ok else None
        scenario.results["ours_status"] = runs[-1][2]
        if scenario.baseline:
            base = _repeat(baseline_command(scenario, work), repeats, timeout)
            done = [r for r in base if r[0] is not None]
            scenario.results["baseline_s"] = statistics.median(r[0] for r in done) if done else None
            scenario.results["baseline_rss_mb"] = statistics.median(r[1] for r in done) if done else None
            scenario.results["baseline_status"] = base[-1][2]
        else:
            scenario.results["baseline_status"] = "not run (see docs/performance.md)"
        if scenario.mining:
            child = subprocess.run(
                [sys.executable, __file__, "--mining", scenario.name, "--repeats", str(repeats)],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            scenario.results.update(json.loads(child.stdout.strip().splitlines()[-1]))


def _repeat(
    command: list[str], repeats: int, timeout: float, expect_exit: int = 0
) -> list[tuple[float | None, float | None, str]]:
    """``repeats`` measurements of ``command``; after a failure or a timeout, no more."""
    runs = [measure_process(command, timeout, expect_exit)]
    while len(runs) < repeats and runs[-1][0] is not None:
        runs.append(measure_process(command, timeout, expect_exit))
    return runs


def _lines(scenario: Scenario) -> int | None:
    if scenario.kind != "synthetic":
        return None
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import pyarrow.parquet as pq; print(pq.ParquetFile({str(scenario.input)!r}).metadata.num_rows)",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def markdown(found: list[Scenario]) -> str:
    def fmt(value: object, digits: int = 2) -> str:
        return "–" if value is None else f"{value:,.{digits}f}" if isinstance(value, float) else str(value)

    def ratio(a: object, b: object) -> str:
        return f"{b / a:.1f}×" if isinstance(a, float) and isinstance(b, float) and a > 0 else "–"

    rows = [
        "| scenario | ours s | ours RSS MB | baseline s | baseline RSS MB | end-to-end speed-up | "
        "mining ours s | mining mlxtend s | mining pyfim s | mining vs mlxtend | mining / pyfim |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in found:
        r = s.results
        if "skipped" in r:
            rows.append(f"| {s.name} | skipped: {r['skipped']} |" + " |" * 9)
            continue
        ours, base = r.get("ours_s"), r.get("baseline_s")
        mo, mm, mp = r.get("mining_ours_s"), r.get("mining_mlxtend_s"), r.get("mining_pyfim_s")
        baseline = fmt(base) if base is not None else str(r.get("baseline_status"))
        status = r.get("ours_status")
        ours_cell = fmt(ours) if status == "ok" else f"{fmt(ours)} ({status})"
        per_pyfim = f"{mo / mp:.2f}" if isinstance(mo, float) and isinstance(mp, float) and mp > 0 else "–"
        rows.append(
            f"| {s.name} | {ours_cell} | {fmt(r.get('ours_rss_mb'), 0)} | {baseline} | "
            f"{fmt(r.get('baseline_rss_mb'), 0)} | {ratio(ours, base)} | {fmt(mo, 3)} | {fmt(mm, 3)} | "
            f"{fmt(mp, 3)} | {ratio(mo, mm)} | {per_pyfim} |"
        )
    return "\n".join(rows) + "\n"


def plot_scaling(found: list[Scenario], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [
        (s.results["lines"], s.results["ours_s"])
        for s in found
        if s.kind == "synthetic" and s.results.get("ours_s") and s.results.get("lines")
    ]
    if len(points) < 2:
        return
    lines, seconds = zip(*sorted(points), strict=True)
    # The slope above a million lines, where the fixed cost (start-up, imports) no longer dominates.
    big = [(math.log(n), math.log(t)) for n, t in zip(lines, seconds, strict=True) if n >= 1_000_000]
    slope = _slope(big) if len(big) >= 2 else float("nan")
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.loglog(lines, seconds, "o-", label=f"basket run, end to end (slope {slope:.2f} above 1M lines)")
    axis.loglog(
        lines,
        [seconds[-1] * n / lines[-1] for n in lines],
        "--",
        color="grey",
        label="linear (slope 1) through the largest",
    )
    axis.set_xlabel("order lines (synthetic, Parquet)")
    axis.set_ylabel("wall time, s (median)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y on x."""
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)


def _saved() -> list[Scenario]:
    """The scenarios of the last full results.json, with their results."""
    found = []
    for entry in json.loads((RESULTS / "results.json").read_text()):
        entry["input"] = Path(entry["input"])
        found.append(Scenario(**entry))
    return found


def _merged(measured: list[Scenario]) -> list[Scenario]:
    """The full results with ``measured`` in place of the saved rows of the same name, in scenario order
    (a size added to the series after the last full run joins it without re-running the 40 minutes)."""
    rows = {s.name: s for s in _saved()} | {s.name: s for s in measured}
    known = [s.name for s in scenarios()]
    return sorted(rows.values(), key=lambda s: known.index(s.name) if s.name in known else len(known))


def _replot() -> None:
    """Redraw the scaling plot and the table from the last full results.json."""
    found = _saved()
    plot_scaling(found, ROOT / "docs" / "performance_scaling.png")
    (RESULTS / "results.md").write_text(markdown(found))


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark basket run against mlxtend and pyfim.")
    parser.add_argument("--quick", action="store_true", help="only the quick scenarios (under a minute)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per measurement (default 3, quick 1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a process is killed")
    parser.add_argument("--only", help="run scenarios whose name contains this text")
    parser.add_argument("--mining", metavar="SCENARIO", help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--replot", action="store_true", help="only redraw the plot and table from results.json")
    parser.add_argument(
        "--merge", action="store_true", help="with --only: replace those scenarios' rows in the full results.json"
    )
    args = parser.parse_args()
    if args.merge and (args.quick or not args.only):
        parser.error("--merge needs --only (and not --quick)")
    if args.replot:
        _replot()
        return
    repeats = args.repeats or (1 if args.quick else 3)
    if args.mining:
        (scenario,) = [s for s in scenarios() if s.name == args.mining]
        with tempfile.TemporaryDirectory() as directory:
            sys.stdout.write(json.dumps(mining_times(scenario, repeats, Path(directory))) + "\n")
        return
    found = [s for s in scenarios() if (s.quick or not args.quick) and (not args.only or args.only in s.name)]
    for scenario in found:
        run_scenario(scenario, repeats, args.timeout)
        sys.stdout.write(f"{scenario.name}: {json.dumps(scenario.results)}\n")
        sys.stdout.flush()
    RESULTS.mkdir(exist_ok=True)
    if args.merge:
        found = _merged(found)
    # A partial run (--quick, --only) never overwrites the full results, unless merged into them.
    suffix = "-quick" if args.quick else "-only" if args.only and not args.merge else ""
    (RESULTS / f"results{suffix}.json").write_text(
        json.dumps([{**asdict(s), "input": str(s.input)} for s in found], indent=2) + "\n"
    )
    table = markdown(found)
    (RESULTS / f"results{suffix}.md").write_text(table)
    if not suffix:
        plot_scaling(found, ROOT / "docs" / "performance_scaling.png")
    sys.stdout.write(table)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
