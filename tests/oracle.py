"""A slow, obviously correct miner to check the fast one against.

It enumerates every subset (up to ``max_len``) of every basket and counts
them: exponential, fine for the small inputs tests give it, and sharing no
code with the pipeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import combinations


def itemset_counts(baskets: Iterable[set[str]], max_len: int) -> Counter[tuple[str, ...]]:
    """Basket count of every itemset of at most ``max_len`` products that occurs at all."""
    counts: Counter[tuple[str, ...]] = Counter()
    for basket in baskets:
        items = sorted(basket)
        for size in range(1, min(max_len, len(items)) + 1):
            counts.update(combinations(items, size))
    return counts


def frequent(baskets: list[set[str]], min_count: int, max_len: int) -> dict[tuple[str, ...], int]:
    return {k: v for k, v in itemset_counts(baskets, max_len).items() if v >= min_count}


def rule_metrics(baskets: list[set[str]], antecedent: tuple[str, ...], consequent: str) -> dict[str, float]:
    """Support, confidence and lift of one rule, counted straight from the baskets."""
    n = len(baskets)
    a = sum(1 for b in baskets if set(antecedent) <= b)
    c = sum(1 for b in baskets if consequent in b)
    both = sum(1 for b in baskets if set(antecedent) <= b and consequent in b)
    return {
        "pair_count": both,
        "support": both / n,
        "confidence": both / a,
        "lift": (both / a) / (c / n),
        "leverage": both / n - (a / n) * (c / n),
    }
