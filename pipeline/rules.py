"""Frequent itemsets in, association rules ``antecedent -> one product`` out.

Every frequent itemset ``S`` of two or more products gives one rule per
product ``c`` in it: ``S - {c} -> c``. A single consequent is what a shop can
show (one product to recommend); antecedents have every size up to
``max_len - 1``. Every subset of a frequent itemset is frequent, so the
antecedent is itself one of the itemsets: rules refer to it by its row number
(``antecedent``), and every count comes from the itemsets, not the baskets.
The generation is vectorised over each itemset length: millions of itemsets
take seconds.

Measures, with ``n`` baskets and counts ``n(X)``:

- support    = n(A u C) / n
- confidence = n(A u C) / n(A)
- lift       = confidence / (n(C) / n)
- leverage   = support - n(A) n(C) / n^2
- conviction = (1 - n(C)/n) / (1 - confidence); NaN (published as null) when
  confidence = 1: infinite, the consequent is never missing when the
  antecedent is there
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd

from pipeline.config import RulesConfig
from pipeline.itemsets import Itemsets

log = logging.getLogger(__name__)


def association_rules(itemsets: Itemsets, config: RulesConfig) -> pd.DataFrame:
    """Rules with ``confidence >= rules.min_confidence`` and ``lift > rules.min_lift``.

    Columns: ``antecedent`` (row number in ``itemsets``), ``consequent``
    (product code), the three counts and the measures, plus
    ``consequent_support`` for the ranking. Ordered by antecedent row, then
    consequent. Candidates are filtered block by block (one itemset length and
    consequent position at a time), so memory follows the rules kept, not the
    candidates: long itemsets give many candidates and few survivors.
    """
    n = float(max(itemsets.baskets, 1))
    item_count = _item_counts(itemsets)
    item_support = item_count / n
    empty = np.empty(0, np.int64)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(empty, empty, empty)]
    candidates = 0
    for antecedent, consequent, pair in _candidates(itemsets):
        candidates += pair.size
        confidence = pair / itemsets.count[antecedent]
        lift = confidence / item_support[consequent]
        keep = (confidence >= config.min_confidence) & (lift > config.min_lift)
        kept.append((antecedent[keep], consequent[keep], pair[keep]))
    antecedent, consequent, pair = (np.concatenate(column) for column in zip(*kept, strict=True))
    antecedent_count = itemsets.count[antecedent]
    consequent_count = item_count[consequent]
    consequent_support = consequent_count / n
    support = pair / n
    confidence = pair / np.maximum(antecedent_count, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        conviction = np.where(confidence < 1, (1 - consequent_support) / (1 - confidence), np.nan)
    rules = pd.DataFrame(
        {
            "antecedent": antecedent,
            "consequent": consequent,
            "antecedent_count": antecedent_count,
            "consequent_count": consequent_count,
            "pair_count": pair,
            "support": support,
            "confidence": confidence,
            "lift": confidence / consequent_support,
            "leverage": support - (antecedent_count / n) * consequent_support,
            "conviction": conviction,
            "consequent_support": consequent_support,
        }
    )
    rules = rules.sort_values(["antecedent", "consequent"], kind="stable", ignore_index=True)
    log.info(
        "rules: %d of %d candidate rules pass confidence >= %g and lift > %g",
        len(rules),
        candidates,
        config.min_confidence,
        config.min_lift,
    )
    return rules


def _candidates(itemsets: Itemsets) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(antecedent row, consequent code, pair count) of the rules of each itemset length and position."""
    for size in range(2, int(itemsets.length.max(initial=0)) + 1):
        rows = np.flatnonzero(itemsets.length == size)
        table = np.flatnonzero(itemsets.length == size - 1)
        members = itemsets.codes[rows, :size]
        for position in range(size):
            rest = np.delete(members, position, axis=1)
            antecedent = table[_find_rows(itemsets.codes[table, : size - 1], rest)]
            yield antecedent, members[:, position].astype(np.int64), itemsets.count[rows]


def _find_rows(table: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position in ``table`` of each row of ``queries`` (each is known to be there).

    Rows are folded column by column into one int64 key, re-numbered densely
    whenever the next fold could overflow, so any width works exactly.
    """
    both = np.concatenate([table, queries]).astype(np.int64)
    base = int(both.max(initial=0)) + 1
    key = both[:, 0].copy()
    for column in range(1, both.shape[1]):
        if int(key.max(initial=0)) >= np.iinfo(np.int64).max // base:
            key = pd.factorize(key)[0].astype(np.int64)
        key = key * base + both[:, column]
    table_key, query_key = key[: len(table)], key[len(table) :]
    order = np.argsort(table_key, kind="stable")
    found = order[np.searchsorted(table_key, query_key, sorter=order)]
    if not np.array_equal(table_key[found], query_key):
        raise AssertionError("an antecedent is missing from the frequent itemsets")
    return found


def _item_counts(itemsets: Itemsets) -> np.ndarray:
    """Basket count of each frequent product, indexed by product code."""
    singles = itemsets.length == 1
    codes = itemsets.codes[singles, 0]
    counts = np.zeros(int(codes.max(initial=-1)) + 1, dtype=np.int64)
    counts[codes] = itemsets.count[singles]
    return counts
