"""Frequent itemsets in, association rules ``antecedent -> one product`` out.

Every frequent itemset ``S`` of two or more products gives one rule per
product ``c`` in it: ``S - {c} -> c``. A single consequent is what a shop can
show (one product to recommend); antecedents have every size up to
``max_len - 1``. Every subset of a frequent itemset is frequent, so the
antecedent is itself one of the itemsets: rules refer to it by its row number
(``antecedent``), and every count comes from the itemsets, not the baskets.
The generation is vectorised over each itemset length: millions of itemsets
take seconds.

Which rules are kept (confidence, lift, redundancy, significance) is
:mod:`pipeline.policy.rules`; this module computes, per candidate, what those
filters read: the confidence, the consequent's support and the best
confidence of a more general rule. The measures are in
:mod:`pipeline.policy.measures` and ``docs/measures.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import RulesConfig
from pipeline.local.itemsets import Itemsets
from pipeline.policy.guards import check_candidates
from pipeline.policy.measures import adjust_p_values, fisher_p_values, interest_measures
from pipeline.policy.rules import KEPT, REDUNDANT, rule_verdicts, significant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Block:
    """The candidate rules of the itemsets of one length.

    Column ``p`` of each matrix is the rule whose consequent is the itemset's
    ``p``-th product: ``without[:, p]`` is the position of its antecedent (the
    itemset minus that product) among the itemsets one shorter.
    """

    rows: np.ndarray  # itemset rows, shape (k,)
    members: np.ndarray  # their product codes, shape (k, size)
    without: np.ndarray  # antecedent positions among the shorter itemsets, shape (k, size)
    shorter: np.ndarray  # itemset rows of the shorter itemsets


def association_rules(itemsets: Itemsets, config: RulesConfig) -> pd.DataFrame:
    """Rules that pass every configured filter, with their counts and measures.

    Columns: ``antecedent`` (row number in ``itemsets``), ``consequent``
    (product code), the three counts, every measure of
    :func:`pipeline.policy.measures.interest_measures`, ``p_value`` and
    ``p_value_adjusted`` (NaN unless ``rules.max_p_value`` is set). Ordered by
    antecedent row, then consequent.
    Candidates are filtered block by block (one itemset length at a time), so
    memory follows the rules kept, not the candidates.
    """
    lengths, per_length = np.unique(itemsets.length, return_counts=True)
    check_candidates(dict(zip(lengths.tolist(), per_length.tolist(), strict=True)), config)
    n = max(itemsets.baskets, 1)
    item_count = _item_counts(itemsets)
    empty = np.empty(0, np.int64)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(empty, empty, empty)]
    candidates = redundant_total = 0
    # Per rule of the previous length: the best confidence of it or of a generalisation.
    best_general: np.ndarray | None = None
    for block in _blocks(itemsets):
        antecedent = block.shorter[block.without]
        pair = np.repeat(itemsets.count[block.rows][:, None], block.members.shape[1], axis=1)
        confidence = pair / itemsets.count[antecedent]
        consequent_support = item_count[block.members] / n
        candidates += confidence.size
        general = None
        if config.drop_redundant:
            general = _general_confidence(block, best_general, consequent_support)
            best_general = np.maximum(confidence, general)
        verdict = rule_verdicts(confidence, consequent_support, general, config)
        redundant_total += int((verdict == REDUNDANT).sum())
        keep = verdict == KEPT
        kept.append((antecedent[keep], block.members[keep].astype(np.int64), pair[keep]))
    antecedent, consequent, pair = (np.concatenate(column) for column in zip(*kept, strict=True))
    order = np.lexsort([consequent, antecedent])
    antecedent, consequent, pair = antecedent[order], consequent[order], pair[order]
    counts = {"antecedent_count": itemsets.count[antecedent], "consequent_count": item_count[consequent]}
    rules = pd.DataFrame(
        {
            "antecedent": antecedent,
            "consequent": consequent,
            **counts,
            "pair_count": pair,
            **interest_measures(n, counts["antecedent_count"], counts["consequent_count"], pair),
        }
    )
    rules["consequent_support"] = rules["consequent_count"] / n
    tested = len(rules)
    if config.max_p_value is None:
        # Fisher's test costs tens of microseconds a rule: only when asked for.
        rules["p_value"] = rules["p_value_adjusted"] = np.nan
    else:
        rules["p_value"] = fisher_p_values(n, counts["antecedent_count"], counts["consequent_count"], pair)
        rules["p_value_adjusted"] = adjust_p_values(rules["p_value"].to_numpy(), config.p_adjust)
        rules = rules[significant(rules["p_value_adjusted"].to_numpy(), config)].reset_index(drop=True)
    log.info(
        "rules: %d of %d candidate rules kept (confidence >= %g and lift > %g; %s; %s)",
        len(rules),
        candidates,
        config.min_confidence,
        config.min_lift,
        f"{redundant_total} redundant dropped" if config.drop_redundant else "redundant kept",
        f"{tested - len(rules)} not significant at p <= {config.max_p_value:g}, {config.p_adjust or 'no'} correction"
        if config.max_p_value is not None
        else "no significance filter",
    )
    return rules


def _general_confidence(block: _Block, best_shorter: np.ndarray | None, consequent_support: np.ndarray) -> np.ndarray:
    """For each candidate, the best confidence of a more general rule with the same consequent.

    The empty antecedent's confidence is the consequent's support. Dropping
    product ``q`` from the antecedent of the rule with consequent ``p`` gives a
    rule of the shorter itemset without ``q``, in which the consequent sits at
    position ``p`` or ``p - 1``; its best generalisation was computed one
    length earlier, so one step covers every proper subset.
    """
    general = consequent_support.copy()
    size = block.members.shape[1]
    if best_shorter is None:
        return general
    for p in range(size):
        for q in range(size):
            if q != p:
                candidate = best_shorter[block.without[:, q], p - (p > q)]
                np.maximum(general[:, p], candidate, out=general[:, p])
    return general


def _blocks(itemsets: Itemsets) -> Iterator[_Block]:
    """The candidate rules of each itemset length from 2 up, in order."""
    for size in range(2, int(itemsets.length.max(initial=0)) + 1):
        rows = np.flatnonzero(itemsets.length == size)
        shorter = np.flatnonzero(itemsets.length == size - 1)
        members = itemsets.codes[rows, :size]
        table = itemsets.codes[shorter, : size - 1]
        without = np.stack([_find_rows(table, np.delete(members, q, axis=1)) for q in range(size)], axis=1)
        yield _Block(rows, members, without, shorter)


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
