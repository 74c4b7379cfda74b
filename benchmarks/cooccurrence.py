"""The pairs and the item model's Gram matrix: counted in one sparse product, or in two.

Usage::

    python benchmarks/cooccurrence.py                    # synthetic 1 M and 3 M baskets
    python benchmarks/cooccurrence.py --baskets 300000 --repeats 5

With ``pairs.enabled`` and ``rank.by = "model_margin"`` (the defaults) a run
needs every pair in ``pairs.min_count`` baskets and the Gram matrix of the
``model.max_items`` best-selling products. Both are entries of ``X'X``. The
local engine counts them in the pairs' blockwise product
(``LocalEngine.pair_itemsets(..., with_gram=True)``); the baseline is what it
did before, and what it still does with ``pairs.enabled = false``: the pairs,
then ``LocalEngine.model_gram``'s own product. Each measurement is a fresh
process loading the saved baskets (:mod:`mining`'s method), the two
alternating, ``--repeats`` times each; both must give the same pairs and the
same Gram matrix (same hash). Medians; ratio = shared / separate within the
run. Results go to ``benchmarks/results/cooccurrence.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from engines import dataset, write_results
from mining import measured, save_baskets

#: Run in the measured process: load the saved baskets, count, report.
_MEASURE = """
import hashlib, json, resource, sys, time
import numpy as np, pandas as pd, scipy.sparse as sp
from pipeline.config import load_config
from pipeline.local.baskets import Baskets
from pipeline.local.engine import LocalEngine
matrix = sp.load_npz(sys.argv[1]).tocsr()
items = np.array([f"{i:06d}" for i in range(matrix.shape[1])], dtype=object)
baskets = Baskets(np.arange(matrix.shape[0]), items, matrix, matrix.nnz, pd.DataFrame())
config = load_config(values={"input.paths": ["unused"]})
engine = LocalEngine(config, items, None, None)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if sys.argv[2] == "shared":
    pairs, gram = engine.pair_itemsets(baskets, config.pairs.min_count, True)
else:
    pairs, _ = engine.pair_itemsets(baskets, config.pairs.min_count, False)
    gram = engine.model_gram(baskets)
seconds = time.perf_counter() - started
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
found = pairs.itemsets
digest = hashlib.sha256(found.codes.tobytes() + found.count.tobytes() + gram[0].tobytes()).hexdigest()[:16]
print(json.dumps({"seconds": seconds, "peak_mb": peak, "hash": digest, "pairs": int((found.length == 2).sum()),
                  "model_products": len(gram[1])}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, nargs="*", default=[1_000_000, 3_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for size in args.baskets:
            matrix = Path(work) / "baskets.npz"
            save_baskets(dataset(size), {}, matrix)
            runs: dict[str, list[dict[str, object]]] = {"separate": [], "shared": []}
            for _ in range(args.repeats):
                for how, found in runs.items():
                    found.append(measured(_MEASURE, str(matrix), how))
            hashes = {r["hash"] for found in runs.values() for r in found}
            if len(hashes) != 1:
                raise SystemExit(f"{size} baskets: the two ways counted differently: {hashes}")
            first = runs["shared"][0]
            row: dict[str, object] = {"baskets": size, "pairs": first["pairs"], "products": first["model_products"]}
            for how, found in runs.items():
                row[f"{how}_s"] = statistics.median(float(r["seconds"]) for r in found)  # type: ignore[arg-type]
                row[f"{how}_peak_mb"] = statistics.median(float(r["peak_mb"]) for r in found)  # type: ignore[arg-type]
            row["ratio"] = float(row["shared_s"]) / float(row["separate_s"])  # type: ignore[arg-type]
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_results(
        "cooccurrence",
        rows,
        f"Every pair in `pairs.min_count` baskets and the item model's Gram matrix, counted in one sparse product "
        f"(shared) or in two (separate), synthetic baskets, default config; medians of {args.repeats} processes "
        "each; peak = resident memory above the loaded baskets; ratio = shared / separate; same pairs and Gram "
        "matrix both ways (same hash).",
        [
            ("baskets", "baskets", ","),
            ("pairs", "pairs", ","),
            ("model products", "products", ","),
            ("separate s", "separate_s", ".2f"),
            ("shared s", "shared_s", ".2f"),
            ("ratio", "ratio", ".2f"),
            ("separate peak MB", "separate_peak_mb", ",.0f"),
            ("shared peak MB", "shared_peak_mb", ",.0f"),
        ],
    )


if __name__ == "__main__":
    main()
