"""Interest measures of rules ``A -> C`` from four counts, and their significance.

Every measure is a vectorised function of the number of baskets ``n`` and the
basket counts ``n(A)``, ``n(C)``, ``n(A u C)``; ``docs/measures.md`` gives each
formula, its range and how to read it. Significance is Fisher's exact test,
one-sided (is ``C`` bought with ``A`` more often than chance?), as R's arules
computes it in ``is.significant``, with a correction for testing many rules.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

PAdjust = Literal["holm", "bh"] | None

#: The measures :func:`interest_measures` returns, in its order: every rule table's measure columns.
MEASURES = (
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "all_confidence",
    "kulczynski",
    "jaccard",
    "certainty",
    "zhang",
)
#: The counts every measure is a function of, as rule tables name them: n(A), n(C), n(A u C).
RULE_COUNTS = ("antecedent_count", "consequent_count", "pair_count")


def interest_measures(
    n: int, antecedent: np.ndarray, consequent: np.ndarray, pair: np.ndarray
) -> dict[str, np.ndarray]:
    """Every published measure of the rules with these counts (arrays of equal length).

    NaN where a measure is undefined (conviction and the certainty factor when
    confidence is 1 or the consequent is in every basket); the tables publish
    NaN as null.
    """
    n = max(int(n), 1)
    a, c, ac = (np.asarray(x, dtype=np.float64) for x in (antecedent, consequent, pair))
    support, support_a, support_c = ac / n, a / n, c / n
    confidence = ac / np.maximum(a, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = confidence / support_c
        conviction = np.where(confidence < 1, (1 - support_c) / (1 - confidence), np.nan)
        gain = confidence - support_c
        certainty = np.where(gain >= 0, gain / (1 - support_c), gain / support_c)
        zhang = (support - support_a * support_c) / np.maximum(
            support * (1 - support_a), support_a * (support_c - support)
        )
    return {
        "support": support,
        "confidence": confidence,
        "lift": lift,
        "leverage": support - support_a * support_c,
        "conviction": conviction,
        "all_confidence": ac / np.maximum(np.maximum(a, c), 1),
        "kulczynski": 0.5 * (ac / np.maximum(a, 1) + ac / np.maximum(c, 1)),
        "jaccard": jaccard(a, c, ac),
        "certainty": certainty,
        "zhang": zhang,
    }


def jaccard(antecedent: np.ndarray, consequent: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Jaccard similarity of two products' basket sets: n(A u C) / (n(A) + n(C) - n(A u C)), 0 for two
    products never sold. SAR's item similarity; the arrays broadcast (a Gram matrix against its diagonal).

    One array of the result's size is allocated, and the arithmetic runs in it: over a Gram matrix of
    ``model.max_items`` products that is the one dense matrix ``memory_budget`` counts for it.
    """
    a, c, ac = (np.asarray(x, dtype=np.float64) for x in (antecedent, consequent, pair))
    either = np.add(a, c, out=np.empty(np.broadcast_shapes(a.shape, c.shape, ac.shape)))
    np.subtract(either, ac, out=either)
    np.maximum(either, 1, out=either)
    return np.divide(ac, either, out=either)


def fisher_p_values(n: int, antecedent: np.ndarray, consequent: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """One-sided Fisher exact test p-value of each rule: P(X >= n(A u C)).

    ``X`` is the number of baskets with ``C`` among ``n(A)`` baskets drawn
    without replacement from ``n`` of which ``n(C)`` hold ``C`` (the
    hypergeometric law of the 2x2 table with fixed margins).
    """
    # scipy.stats takes half a second to import: only runs that test significance pay it.
    from scipy.stats import hypergeom

    return np.asarray(hypergeom.sf(np.asarray(pair) - 1, n, consequent, antecedent), dtype=np.float64)


def adjust_p_values(p: np.ndarray, method: PAdjust) -> np.ndarray:
    """p-values corrected for testing ``len(p)`` rules at once.

    ``holm``: Holm's step-down method (controls the family-wise error rate, as
    arules' default). ``bh``: Benjamini-Hochberg (controls the false discovery
    rate; keeps more rules). ``None``: unchanged.
    """
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if method is None or m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        stepped = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        stepped = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
