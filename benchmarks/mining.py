"""The itemset stage by counting and by pyfim on the same baskets: time, peak memory, and what ``auto`` chose.

Usage::

    python benchmarks/mining.py                      # public datasets and synthetic 100k, 1M, 3M baskets
    python benchmarks/mining.py --baskets 100000 --repeats 5
    make bench-mining

For each input the baskets are prepared once (``prepare_inputs``) and saved as
a sparse matrix; then ``frequent_itemsets`` runs in a fresh process per
measurement that loads only that matrix, once with ``mine.engine = "count"``
and once with ``"fim"``, alternating, ``--repeats`` times each. Each process
reports its wall time for the stage, the stage's peak memory above the loaded
matrix (``ru_maxrss`` after the stage minus before it), a hash of the itemsets
(the two methods must agree, or the benchmark stops) and, from a run with
``"auto"``, the method it chose and its estimates. Medians; the ratio count /
fim is taken within the run. The coefficients of the estimate
(:mod:`pipeline.local.counting`) come from these figures. Results go to
``benchmarks/results/mining.json`` and ``mining.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from engines import ROOT, dataset, write_results

SHARED = ROOT.parent / "shared" / "datasets"
#: Run in the measured process: load the saved baskets, mine once, report.
_MEASURE = """
import hashlib, json, resource, sys, time
import numpy as np, pandas as pd, scipy.sparse as sp
from pipeline.config import MineConfig
from pipeline.local.baskets import Baskets
from pipeline.local.itemsets import frequent_itemsets
matrix = sp.load_npz(sys.argv[1]).tocsr()
baskets = Baskets(np.arange(matrix.shape[0]), np.arange(matrix.shape[1]), matrix, matrix.nnz, pd.DataFrame())
config = MineConfig(min_support=float(sys.argv[2]), max_len=3, max_itemsets=None, engine=sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
itemsets = frequent_itemsets(baskets, config)
seconds = time.perf_counter() - started
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
digest = hashlib.sha256(itemsets.codes.tobytes() + itemsets.count.tobytes()).hexdigest()[:16]
print(json.dumps({"seconds": seconds, "peak_mb": peak, "hash": digest, "itemsets": len(itemsets),
                  "method": itemsets.method, "why": itemsets.why}))
"""
#: Baskets files, one basket per line.
_BASKET_FILES = {"retail.dat": " ", "T10I4D100K.dat": " ", "chess.dat": " ", "groceries.csv": ","}


def inputs(sizes: list[int]) -> list[tuple[str, Path, dict[str, object], list[float]]]:
    """(name, file, settings, supports) of every input present here."""
    found: list[tuple[str, Path, dict[str, object], list[float]]] = []
    retail = SHARED / "online_retail" / "online_retail.csv.gz"
    if retail.exists():
        found.append(("Online Retail", retail, {"config": ROOT / "configs" / "default.toml"}, [0.01, 0.005, 0.002]))
    for name, supports in (
        ("groceries.csv", [0.001]),
        ("fimi/retail.dat", [0.001]),
        ("fimi/T10I4D100K.dat", [0.002]),
        ("fimi/chess.dat", [0.6]),
    ):
        path = SHARED / name
        if path.exists():
            values = {"input.format": "baskets", "input.delimiter": _BASKET_FILES[path.name]}
            found.append((path.name, path, values, supports))
    for baskets in sizes:
        found.append((f"synthetic {baskets:,} baskets", dataset(baskets), {}, [0.0005]))
    return found


def save_baskets(path: Path, settings: dict[str, object], out: Path) -> None:
    """Prepare ``path``'s baskets in a child process and save the matrix to ``out`` (``.npz``)."""
    config_file = settings.get("config")
    values = {k: v for k, v in settings.items() if k != "config"}
    code = (
        "import sys, scipy.sparse as sp\n"
        "from pipeline.config import load_config\n"
        "from pipeline.flow.inputs import prepare_inputs\n"
        f"config = load_config({str(config_file) if config_file else None!r}, values={{'input.paths': [sys.argv[1]], "
        f"'clean.max_basket_size': None, **{values!r}}})\n"
        "sp.save_npz(sys.argv[2], prepare_inputs(config).baskets.matrix.tocsr())\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(out)], cwd=ROOT, check=True, capture_output=True)


def measure(matrix: Path, support: float, engine: str) -> dict[str, object]:
    """One process mining the saved baskets with ``engine``."""
    return measured(_MEASURE, str(matrix), str(support), engine)


def measured(code: str, *args: str) -> dict[str, object]:
    """A fresh process running ``code`` with ``args``: its last line of output, a JSON object."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, nargs="*", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, path, settings, supports in inputs(args.baskets):
            matrix = Path(work) / "baskets.npz"
            save_baskets(path, settings, matrix)
            for support in supports:
                runs: dict[str, list[dict[str, object]]] = {"count": [], "fim": []}
                for _ in range(args.repeats):
                    for engine, found in runs.items():
                        found.append(measure(matrix, support, engine))
                auto = measure(matrix, support, "auto")
                hashes = {r["hash"] for found in runs.values() for r in found} | {auto["hash"]}
                if len(hashes) != 1:
                    raise SystemExit(f"{name} at {support}: the methods found different itemsets: {hashes}")
                row: dict[str, object] = {"input": name, "min_support": support, "itemsets": auto["itemsets"]}
                for engine, found in runs.items():
                    row[f"{engine}_s"] = statistics.median(float(r["seconds"]) for r in found)  # type: ignore[arg-type]
                    row[f"{engine}_peak_mb"] = statistics.median(float(r["peak_mb"]) for r in found)  # type: ignore[arg-type]
                row["ratio"] = float(row["count_s"]) / float(row["fim_s"])  # type: ignore[arg-type]
                row["auto"] = auto["method"]
                row["why"] = auto["why"]
                faster = "count" if row["ratio"] < 1 else "fim fpgrowth"  # type: ignore[operator]
                row["auto_right"] = "yes" if auto["method"] == faster else "no"
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results(
        "mining",
        rows,
        f"The itemset stage at `mine.max_len = 3`, counting against pyfim on the same saved baskets, medians of "
        f"{args.repeats} processes each; peak = the stage's peak resident memory above the loaded baskets; "
        "ratio = count / fim; every method found the same itemsets (same hash).",
        [
            ("input", "input", ""),
            ("min support", "min_support", "g"),
            ("itemsets", "itemsets", ","),
            ("count s", "count_s", ".2f"),
            ("fim s", "fim_s", ".2f"),
            ("ratio", "ratio", ".2f"),
            ("count peak MB", "count_peak_mb", ",.0f"),
            ("fim peak MB", "fim_peak_mb", ",.0f"),
            ("auto chose", "auto", ""),
            ("the faster?", "auto_right", ""),
            ("auto's estimate", "why", ""),
        ],
    )


if __name__ == "__main__":
    main()
