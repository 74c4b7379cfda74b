"""Ingest, cleaning and baskets at two revisions of the code: time, peak memory, and the same answer.

Usage::

    python benchmarks/ingest.py --base d834800~1          # against the commit before d834800
    python benchmarks/ingest.py --base main~3 --baskets 300000 --repeats 5

The stages up to the baskets (``pipeline.flow.inputs.prepare_inputs``: read,
clean, group) are measured at both revisions as ``revisions.py`` says; the
hash covers the basket matrix, product and order ids, order attributes,
rejects and counts. Inputs:
a synthetic export with text ids (``synthetic.py --text-ids``), the same with
integer ids, and the full Online Retail CSV when ``../shared`` has it.
Medians; the ratios (working tree / base) are taken within the run. Results go
to ``benchmarks/results/ingest.json`` and ``ingest.md``.
"""

from __future__ import annotations

from engines import ROOT, dataset
from revisions import REPORT, arguments, compared

_RETAIL = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
#: Run in the measured process, with the revision's package first on the path.
_MEASURE = (
    """
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
"""
    + REPORT
)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, default=1_000_000)
    args = parser.parse_args()
    inputs = [
        (f"synthetic {args.baskets:,} baskets, text ids", dataset(args.baskets, text_ids=True), ""),
        (f"synthetic {args.baskets:,} baskets, integer ids", dataset(args.baskets), ""),
    ]
    if _RETAIL.exists():
        inputs.append(("Online Retail, full year (CSV)", _RETAIL, str(ROOT / "configs" / "default.toml")))
    what = "Read, clean and group into baskets (`prepare_inputs`)"
    compared("ingest", _MEASURE, inputs, args, what, "both produce the same lines, rejects and counts")


if __name__ == "__main__":
    main()
