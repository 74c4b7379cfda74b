"""``basket evaluate`` on the full Online Retail export at two revisions: time, peak memory, same metrics.

Usage::

    python benchmarks/evaluate.py --base main~2            # against two commits ago
    python benchmarks/evaluate.py --base 4f2f4f5 --repeats 5

The evaluation of ``configs/default.toml`` on the full export (trained before
2011-10-01, the rest replayed: the issue's split) runs in a fresh process per
measurement at both revisions, alternating (``revisions.py``); the hash covers
every metric of every strategy, so a speed-up that changes a figure stops the
benchmark. Results go to ``benchmarks/results/evaluate.json`` and ``evaluate.md``;
skips with a message where ``../shared/datasets`` is absent.
"""

from __future__ import annotations

import argparse

from engines import ROOT, write_results
from revisions import COLUMNS, compare

_RETAIL = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
#: Run in the measured process, with the revision's package first on the path.
_MEASURE = """
import hashlib, json, resource, sys, time
import pandas as pd
from pipeline.config import load_config
from pipeline.flow.evaluate import evaluate
path, config_file = sys.argv[1], sys.argv[2]
config = load_config(config_file, values={"input.paths": [path], "evaluate.cutoff": "2011-10-01"})
started = time.perf_counter()
metrics = evaluate(config).metrics
seconds = time.perf_counter() - started
digest = hashlib.sha256(pd.util.hash_pandas_object(metrics.round(12).astype(str), index=False).to_numpy().tobytes())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "hash": digest.hexdigest()[:16]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not _RETAIL.exists():
        raise SystemExit(f"skipped: {_RETAIL} is not here (see ../shared/datasets/README.md)")
    inputs = [("Online Retail, full year (CSV)", _RETAIL, str(ROOT / "configs" / "default.toml"))]
    rows = compare(args.base, _MEASURE, inputs, args.repeats)
    write_results(
        "evaluate",
        rows,
        f"`basket evaluate` (the issue's split, `configs/default.toml`), medians of {args.repeats} processes "
        f"each; ratio = working tree / `{args.base}`; both give the same metrics (hash).",
        COLUMNS,
    )


if __name__ == "__main__":
    main()
