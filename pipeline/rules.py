"""Frequent itemsets in, association rules ``antecedent -> one product`` out.

Every frequent itemset ``S`` of two or more products gives one rule per
product ``c`` in it: ``S - {c} -> c``. A single consequent is what a shop can
show (one product to recommend); antecedents have every size up to
``max_len - 1``. All counts come from the itemsets (every subset of a frequent
itemset is frequent), so no basket is read again.

Measures, with ``n`` baskets and counts ``n(X)``:

- support    = n(A u C) / n
- confidence = n(A u C) / n(A)
- lift       = confidence / (n(C) / n)
- leverage   = support - n(A) n(C) / n^2
- conviction = (1 - n(C)/n) / (1 - confidence); null when confidence = 1
  (infinite: the consequent is never missing when the antecedent is there)
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.config import RulesConfig
from pipeline.itemsets import Itemsets

log = logging.getLogger(__name__)

RULE_COLUMNS: tuple[str, ...] = (
    "antecedent",
    "consequent",
    "antecedent_count",
    "consequent_count",
    "pair_count",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "consequent_support",
)


def association_rules(itemsets: Itemsets, config: RulesConfig) -> pd.DataFrame:
    """Rules with ``confidence >= rules.min_confidence`` and ``lift > rules.min_lift``.

    ``antecedent`` is a sorted tuple of product codes, ``consequent`` a code.
    The frame is ordered by antecedent, then consequent.
    """
    counts = itemsets.counts()
    antecedents: list[tuple[int, ...]] = []
    consequents: list[int] = []
    pair_counts: list[int] = []
    for items, count in counts.items():
        if len(items) < 2:
            continue
        for position, consequent in enumerate(items):
            antecedents.append(items[:position] + items[position + 1 :])
            consequents.append(consequent)
            pair_counts.append(count)
    n = float(itemsets.baskets)
    pair = np.asarray(pair_counts, dtype=np.int64)
    antecedent_count = np.asarray([counts[a] for a in antecedents], dtype=np.int64)
    consequent_count = np.asarray([counts[(c,)] for c in consequents], dtype=np.int64)
    support = pair / n if n else pair.astype(float)
    confidence = pair / np.maximum(antecedent_count, 1)
    consequent_support = consequent_count / n if n else consequent_count.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = confidence / consequent_support
        conviction = np.where(confidence < 1, (1 - consequent_support) / (1 - confidence), np.nan)
    rules = pd.DataFrame(
        {
            "antecedent": pd.Series(antecedents, dtype=object),
            "consequent": np.asarray(consequents, dtype=np.int64),
            "antecedent_count": antecedent_count,
            "consequent_count": consequent_count,
            "pair_count": pair,
            "support": support,
            "confidence": confidence,
            "lift": lift,
            "leverage": support - (antecedent_count / n if n else 0) * consequent_support,
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
