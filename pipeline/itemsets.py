"""Baskets in, frequent itemsets out: every product set bought together often enough.

mlxtend is the engine (``fpgrowth`` by default, ``apriori`` on request; both
return the same itemsets), fed a sparse encoding from which products below
the support threshold were already removed. The threshold is a whole number of
baskets: ``mine.min_count`` when given, else ``ceil(mine.min_support x
baskets)``; mlxtend is asked for exactly that count, so there is no
floating-point doubt about an itemset on the boundary.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.baskets import Baskets
from pipeline.config import MineConfig

with warnings.catch_warnings():
    # mlxtend sets warnings.simplefilter("always", DeprecationWarning) for the
    # whole process when imported; catch_warnings restores the filters after.
    from mlxtend.frequent_patterns import apriori, fpgrowth

log = logging.getLogger(__name__)

_ENGINES = {"fpgrowth": fpgrowth, "apriori": apriori}


@dataclass(frozen=True)
class Itemsets:
    """Frequent itemsets as sorted tuples of product codes, with their basket counts."""

    frame: pd.DataFrame
    baskets: int
    min_count: int

    def counts(self) -> dict[tuple[int, ...], int]:
        """Itemset -> number of baskets holding it, for rule metrics."""
        return dict(zip(self.frame["items"], self.frame["count"].tolist(), strict=True))


def min_count_for(config: MineConfig, baskets: int) -> int:
    """The support threshold as a number of baskets (at least 1)."""
    if config.min_count is not None:
        return config.min_count
    # The epsilon keeps 0.01 x 100 (= 1.0000000000000002 in floating point) at 1.
    return max(1, math.ceil(config.min_support * baskets - 1e-9))


def frequent_itemsets(baskets: Baskets, config: MineConfig) -> Itemsets:
    """Every itemset of at most ``mine.max_len`` products in at least ``min_count`` baskets.

    The frame has columns ``items`` (a sorted tuple of product codes),
    ``length`` and ``count``, ordered by length, then items: the same order
    whichever algorithm found them.
    """
    min_count = min_count_for(config, baskets.count)
    frequent = np.flatnonzero(baskets.item_counts() >= min_count)
    if baskets.count == 0 or frequent.size == 0:
        frame = pd.DataFrame({"items": [], "length": [], "count": []})
    else:
        frame = _mine(baskets, frequent, min_count, config)
    frame = frame.astype({"length": "int64", "count": "int64"})
    frame = frame.sort_values(["length", "items"], kind="stable", ignore_index=True)
    log.info(
        "itemsets: %d frequent itemsets (%s) with %s at min count %d of %d baskets",
        len(frame),
        ", ".join(f"{n} of length {k}" for k, n in frame["length"].value_counts().sort_index().items())
        or "none",
        config.algorithm,
        min_count,
        baskets.count,
    )
    return Itemsets(frame=frame, baskets=baskets.count, min_count=min_count)


def _mine(baskets: Baskets, frequent: np.ndarray, min_count: int, config: MineConfig) -> pd.DataFrame:
    """Run mlxtend on the frequent products' columns only."""
    encoded = pd.DataFrame.sparse.from_spmatrix(
        baskets.matrix[:, frequent], columns=range(frequent.size)
    )
    # Asking for (count - 1/2) / n makes "support >= threshold" mean "count >= min_count".
    threshold = (min_count - 0.5) / baskets.count
    found = _ENGINES[config.algorithm](
        encoded, min_support=threshold, use_colnames=False, max_len=config.max_len
    )
    items = [tuple(sorted(int(frequent[c]) for c in itemset)) for itemset in found["itemsets"]]
    counts = np.rint(found["support"].to_numpy(dtype="float64") * baskets.count)
    return pd.DataFrame(
        {"items": items, "length": [len(i) for i in items], "count": counts.astype("int64")}
    )
