"""The product page's customer floor: distinct customers behind each pair rule, read two ways.

Usage::

    python benchmarks/customer_floor.py                  # synthetic 1 M and 3 M baskets
    python benchmarks/customer_floor.py --baskets 300000 --repeats 5

``pairs.min_customers`` needs, for every pair rule, the distinct customers
with a basket holding both products. ``pair_customers`` reads the baskets
holding each rule's first product; the baseline reads all of them, the
default reads only the baskets of a customer who bought that product in
several baskets and subtracts their repeats from the rule's ``pair_count``.
The baskets and the rules are prepared once per size (default config, the
issue's support 0.0005 and ``max_len`` 3); the two ways then alternate in the
same process, ``--repeats`` times each, and must give the same counts.
Medians; ratio = given the pair counts / reading every basket. Results go to
``benchmarks/results/customer_floor.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from engines import dataset, write_results

from pipeline.config import load_config
from pipeline.flow.inputs import prepare_inputs
from pipeline.local.baskets import pair_customers
from pipeline.local.engine import LocalEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, nargs="*", default=[1_000_000, 3_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for size in args.baskets:
        values = {"input.paths": [str(dataset(size))], "mine.min_support": 0.0005, "mine.max_len": 3}
        config = load_config(values={**values, "clean.max_basket_size": None})
        baskets = prepare_inputs(config).baskets
        engine = LocalEngine(config, baskets.items, None, None)
        pairs, _ = engine.pair_itemsets(baskets, config.pairs.min_count, False)
        rules = engine.association_rules(pairs)
        first = pairs.itemsets.codes[rules["antecedent"].to_numpy(dtype=np.int64), 0].astype(np.int64)
        second = rules["consequent"].to_numpy(dtype=np.int64)
        together = rules["pair_count"].to_numpy(dtype=np.int64)
        seconds: dict[str, list[float]] = {"every basket": [], "pair counts given": []}
        found: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for how in seconds:
                started = time.perf_counter()
                found[how] = pair_customers(baskets, first, second, together if how == "pair counts given" else None)
                seconds[how].append(time.perf_counter() - started)
        if not np.array_equal(found["every basket"], found["pair counts given"]):
            raise SystemExit(f"{size} baskets: the two ways counted different customers")
        row: dict[str, object] = {
            "baskets": size,
            "rules": len(rules),
            "every_s": statistics.median(seconds["every basket"]),
            "given_s": statistics.median(seconds["pair counts given"]),
        }
        row["ratio"] = float(row["given_s"]) / float(row["every_s"])  # type: ignore[arg-type]
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results(
        "customer_floor",
        rows,
        f"Distinct customers of every pair rule (`pair_customers`), synthetic baskets, medians of {args.repeats} "
        "alternating runs in one process; ratio = pair counts given / every basket read; same counts both ways.",
        [
            ("baskets", "baskets", ","),
            ("pair rules", "rules", ","),
            ("every basket s", "every_s", ".2f"),
            ("pair counts given s", "given_s", ".2f"),
            ("ratio", "ratio", ".2f"),
        ],
    )


if __name__ == "__main__":
    main()
