"""``basket evaluate`` on the full Online Retail export at two revisions: time, peak memory, same metrics.

Usage::

    python benchmarks/evaluate.py --base main~2            # against two commits ago
    python benchmarks/evaluate.py --base 4f2f4f5 --repeats 5
    python benchmarks/evaluate.py --base main~1 --answers-differ   # a scoring change: time and memory only

The evaluation of ``configs/default.toml`` on the full export (trained before
2011-10-01, the rest replayed: the issue's split) runs in a fresh process per
measurement at both revisions, alternating (``revisions.py``); the hash covers
every metric of every strategy, so a speed-up that changes a figure stops the
benchmark (unless ``--answers-differ`` says it is meant to: then
``results/evaluate_answers_differ.*``). Results go to ``benchmarks/results/evaluate.json`` and ``evaluate.md``;
skips with a message where ``../shared/datasets`` is absent.
"""

from __future__ import annotations

from engines import ROOT
from revisions import REPORT, arguments, compared

_RETAIL = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
#: Run in the measured process, with the revision's package first on the path.
_MEASURE = (
    """
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
"""
    + REPORT
)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    args = parser.parse_args()
    if not _RETAIL.exists():
        raise SystemExit(f"skipped: {_RETAIL} is not here (see ../shared/datasets/README.md)")
    inputs = [("Online Retail, full year (CSV)", _RETAIL, str(ROOT / "configs" / "default.toml"))]
    what = "`basket evaluate` (the issue's split, `configs/default.toml`)"
    compared("evaluate", _MEASURE, inputs, args, what, "both give the same metrics")


if __name__ == "__main__":
    main()
