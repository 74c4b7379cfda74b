"""Candidate thresholds in, what each would give out: pick a support in seconds, not by trial and error.

The exports are read, cleaned and turned into baskets once; then, for each
candidate value of one mining or rule key (``mine.min_support``,
``mine.max_len``, ``rules.min_confidence``, ...), itemsets, rules and the
ranked offers are computed exactly as ``basket run`` would, and counted.
Nothing is published. The explosion guard (``mine.max_itemsets``) still
applies: a candidate that would exhaust memory is reported as stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import ValidationError

from pipeline.baskets import itemset_labels
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.inputs import prepare_inputs
from pipeline.itemsets import frequent_itemsets
from pipeline.recommendations import rank_rules
from pipeline.rules import association_rules

log = logging.getLogger(__name__)

#: Keys a sweep may vary: everything after the baskets.
SWEEPABLE = ("mine.", "rules.", "margin.", "rank.")


@dataclass(frozen=True)
class Sweep:
    """One key and the values to try, parsed from ``key=v1,v2,...``."""

    key: str
    values: list[Any]

    @classmethod
    def parse(cls, text: str) -> Sweep:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"--sweep {text!r}: expected key=value,value,..., e.g. mine.min_support=0.01,0.005")
        if not key.startswith(SWEEPABLE):
            raise ConfigError(f"--sweep {key}: only {', '.join(k + '*' for k in SWEEPABLE)} keys change after the baskets")
        return cls(key, [v.strip() for v in values.split(",") if v.strip()])


def tune(config: Config, sweep: Sweep) -> pd.DataFrame:
    """One row per candidate value: itemsets, rules, antecedents with offers, products offered
    (``covered_products``), the share of products whose page gets an offer, and seconds (or why it stopped)."""
    candidates = [(value, _with(config, sweep.key, value)) for value in sweep.values]
    inputs = prepare_inputs(config)
    baskets, rows = inputs.baskets, []
    for value, candidate in candidates:
        started = time.perf_counter()
        row: dict[str, Any] = {sweep.key: value}
        try:
            itemsets = frequent_itemsets(baskets, candidate.mine)
            rules = association_rules(itemsets, candidate.rules)
            labels = itemset_labels(itemsets.codes, itemsets.length, baskets.items)
            ranked = rank_rules(rules, itemsets, labels, baskets.items, inputs.catalog, candidate)
        except ConfigError as exc:
            row.update(status=f"stopped: {str(exc).split(';')[0]}", seconds=time.perf_counter() - started)
            rows.append(row)
            continue
        offers = ranked.rules[ranked.rules["rank"] <= candidate.output.top_k]
        row.update(
            min_count=itemsets.min_count,
            itemsets=len(itemsets),
            rules=len(ranked.rules),
            antecedents=int(offers["antecedent_key"].nunique()),
            covered_products=int(offers["consequent"].nunique()),
            # Share of the products sold whose product page gets at least one offer.
            pages_with_offers=offers.loc[offers["antecedent_size"] == 1, "antecedent_key"].nunique()
            / max(len(baskets.items), 1),
            seconds=time.perf_counter() - started,
            status="ok",
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _with(config: Config, key: str, value: str) -> Config:
    """``config`` with one ``section.name`` key set to ``value`` (validated like the file)."""
    section, _, name = key.partition(".")
    current = getattr(config, section, None)
    if current is None or name not in type(current).model_fields:
        raise ConfigError(f"--sweep {key}: no such key (see docs/config.md)")
    try:
        updated = type(current).model_validate({**current.model_dump(), name: value})
    except ValidationError as exc:
        raise ConfigError(f"--sweep {key}={value}: {exc.errors()[0]['msg']}") from None
    return config.model_copy(update={section: updated})
