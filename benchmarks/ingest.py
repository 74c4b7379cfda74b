"""Ingest, cleaning and baskets at two revisions of the code: time, peak memory, and the same answer.

Usage::

    python benchmarks/ingest.py --base d834800~1          # against the commit before d834800
    python benchmarks/ingest.py --base main~3 --baskets 300000 --repeats 5

The stages up to the baskets (``pipeline.flow.inputs.prepare_inputs``: read,
clean, group) run in a fresh process per measurement, once with the working
tree's code and once with the code of ``--base`` (checked out in a temporary
git worktree), alternating, ``--repeats`` times each, with Arrow's jemalloc
pool as the ``basket`` command sets it. Each process reports its wall time,
its peak resident set (``ru_maxrss``) and a hash of what it produced (the
basket matrix, product and order ids, order attributes, rejects, counts);
the two revisions must produce the same hash, or the benchmark stops. Inputs:
a synthetic export with text ids (``synthetic.py --text-ids``), the same with
integer ids, and the full Online Retail CSV when ``../shared`` has it.
Medians; the ratios (working tree / base) are taken within the run. Results go
to ``benchmarks/results/ingest.json`` and ``ingest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from engines import ROOT, dataset, write_results

_RETAIL = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
#: Run in the measured process, with the revision's package first on the path.
_MEASURE = """
import hashlib, json, resource, sys, time
import pandas as pd
from pipeline.config import load_config
from pipeline.flow.inputs import prepare_inputs
path, config_file = sys.argv[1], sys.argv[2] or None
config = load_config(config_file, values={"input.paths": [path], "clean.max_basket_size": None})
started = time.perf_counter()
prepared = prepare_inputs(config)
seconds = time.perf_counter() - started
baskets, cleaned = prepared.baskets, prepared.cleaned
digest = hashlib.sha256()
for part in (
    baskets.matrix.indptr.tobytes(),
    baskets.matrix.indices.tobytes(),
    "|".join(map(str, baskets.items)).encode(),
    "|".join(map(str, baskets.orders)).encode(),
    pd.util.hash_pandas_object(baskets.order_info.astype(str), index=False).to_numpy().tobytes(),
    pd.util.hash_pandas_object(cleaned.rejects.astype(str), index=False).to_numpy().tobytes(),
    json.dumps(cleaned.counts, sort_keys=True).encode(),
):
    digest.update(part)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "hash": digest.hexdigest()[:16]}))
"""


def measure(code_root: Path, path: Path, config: str) -> dict[str, float | str]:
    """One process of the stages up to the baskets, with the package at ``code_root``."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), config],
        env=env,
        cwd=code_root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{code_root} on {path}: exit {done.returncode}: {done.stderr.strip()[-2000:]}")
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--baskets", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    inputs = [
        (f"synthetic {args.baskets:,} baskets, text ids", dataset(args.baskets, text_ids=True), ""),
        (f"synthetic {args.baskets:,} baskets, integer ids", dataset(args.baskets), ""),
    ]
    if _RETAIL.exists():
        inputs.append(("Online Retail, full year (CSV)", _RETAIL, str(ROOT / "configs" / "default.toml")))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        base = Path(work) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True)
        try:
            for name, path, config in inputs:
                runs: dict[str, list[dict[str, float | str]]] = {"tree": [], "base": []}
                for _ in range(args.repeats):
                    runs["base"].append(measure(base, path, config))
                    runs["tree"].append(measure(ROOT, path, config))
                hashes = {str(r["hash"]) for found in runs.values() for r in found}
                if len(hashes) != 1:
                    raise SystemExit(f"{name}: the two revisions produce different baskets or rejects: {hashes}")
                row: dict[str, object] = {"input": name, "base": args.base}
                for label, found in runs.items():
                    row[f"{label}_s"] = statistics.median(float(r["seconds"]) for r in found)
                    row[f"{label}_peak_mb"] = statistics.median(float(r["peak_mb"]) for r in found)
                row["time_ratio"] = float(row["tree_s"]) / float(row["base_s"])  # type: ignore[arg-type]
                row["peak_ratio"] = float(row["tree_peak_mb"]) / float(row["base_peak_mb"])  # type: ignore[arg-type]
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    write_results(
        "ingest",
        rows,
        f"Read, clean and group into baskets (`prepare_inputs`), medians of {args.repeats} processes each; "
        f"ratio = working tree / `{args.base}`; both produce the same hash.",
        [
            ("input", "input", ""),
            ("tree s", "tree_s", ".2f"),
            ("base s", "base_s", ".2f"),
            ("time ratio", "time_ratio", ".2f"),
            ("tree peak MB", "tree_peak_mb", ",.0f"),
            ("base peak MB", "base_peak_mb", ",.0f"),
            ("peak ratio", "peak_ratio", ".2f"),
        ],
    )


if __name__ == "__main__":
    main()
