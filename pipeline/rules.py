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
    consequent.
    """
    antecedent, consequent, pair = _candidates(itemsets)
    n = float(max(itemsets.baskets, 1))
    antecedent_count = itemsets.count[antecedent]
    consequent_count = _item_counts(itemsets)[consequent]
    support = pair / n
    confidence = pair / np.maximum(antecedent_count, 1)
    consequent_support = consequent_count / n
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = confidence / consequent_support
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
            "lift": lift,
            "leverage": support - (antecedent_count / n) * consequent_support,
            "conviction": conviction,
            "consequent_support": consequent_support,
        }
    )
    candidates = len(rules)
    keep = (rules["confidence"] >= config.min_confidence) & (rules["lift"] > config.min_lift)
    rules = rules[keep].sort_values(["antecedent", "consequent"], kind="stable", ignore_index=True)
    log.info(
        "rules: %d of %d candidate rules pass confidence >= %g and lift > %g",
        len(rules),
        candidates,
        config.min_confidence,
        config.min_lift,
    )
    return rules


def _candidates(itemsets: Itemsets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(antecedent row, consequent code, pair count) of every rule of every itemset."""
    antecedents, consequents, pairs = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for size in range(2, int(itemsets.length.max(initial=0)) + 1):
        rows = np.flatnonzero(itemsets.length == size)
        table = np.flatnonzero(itemsets.length == size - 1)
        members = itemsets.codes[rows, :size]
        for position in range(size):
            rest = np.delete(members, position, axis=1)
            antecedents.append(table[_find_rows(itemsets.codes[table, : size - 1], rest)])
            consequents.append(members[:, position].astype(np.int64))
            pairs.append(itemsets.count[rows])
    return np.concatenate(antecedents), np.concatenate(consequents), np.concatenate(pairs)


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
