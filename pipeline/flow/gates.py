"""A finished run in, the reasons not to publish it out (an empty list: publish).

Like dbt refusing a run whose tests fail, the nightly job refuses to replace
yesterday's table with one that is suspicious: too few baskets, too much of the
export rejected, no rules, a basket count, a rule count or a set of recommended
products that changed too much since the last published run, a metric that is
not a finite number, or a table that does not match its declared schema. Each
gate is a ``gates.*`` key; ``gates.enabled = false`` or ``basket run --force``
overrides.

The change gates compare like with like: lines a date window leaves out
(``--as-of``, ``clean.window_days``) are not rejects of a broken export, and a
run made with other settings (an analyst changed the thresholds, a new version
changed a default) is not compared with the last one (:func:`changed_settings`).
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.config import Config
from pipeline.contract.counts import RunCounts
from pipeline.contract.manifest import Manifest

log = logging.getLogger(__name__)

#: Reject reasons of a date window: a rolling window leaves these out every night by design.
WINDOW_REASONS = ("after_as_of", "outside_window")
#: Settings that change from night to night without making runs incomparable.
_NIGHTLY: dict[str, Any] = {
    "input": {"paths"},
    "catalog": {"path"},
    "as_of": True,
    "evaluate": True,
    "output": True,
    "gates": True,
    "spark": True,
    "engine": True,
}


def gate_failures(
    config: Config,
    counts: RunCounts,
    problems: list[str],
    previous: Manifest | None,
) -> list[str]:
    """Every gate the run fails, each as a sentence naming the gate key and the numbers.

    ``problems`` are what the engine found wrong in the tables themselves
    (:func:`pipeline.contract.checks.table_problems` for Arrow tables). ``previous`` is the manifest of
    the run ``latest`` points at (None on the first run): the change gates
    compare against it when it was made with the same settings.
    """
    gates = config.gates
    if not gates.enabled:
        return []
    failures: list[str] = []
    if counts.baskets < gates.min_baskets:
        failures.append(f"gates.min_baskets: {counts.baskets} baskets after cleaning, fewer than {gates.min_baskets}")
    windowed = sum(counts.rejected.get(reason, 0) for reason in WINDOW_REASONS)
    considered = counts.rows_in - windowed
    share = (counts.rows_rejected - windowed) / considered if considered else 1.0
    if share > gates.max_reject_share:
        failures.append(
            f"gates.max_reject_share: {share:.1%} of rows rejected, more than {gates.max_reject_share:.1%}"
            + (f" (the {windowed:,} rows outside the date window not counted)" if windowed else "")
        )
    if counts.rules < gates.min_rules:
        failures.append(f"gates.min_rules: {counts.rules} rules, fewer than {gates.min_rules}")
    changed = [] if previous is None else changed_settings(config, previous.config)
    if previous is not None and changed:
        log.warning(
            "the change gates are skipped: run %s was made with other settings (%s)",
            previous.run_id,
            ", ".join(changed[:5]),
        )
    else:
        failures += _change_failures(config, counts, previous)
    return failures + problems


def changed_settings(config: Config, other: Config) -> list[str]:
    """The dotted keys whose values differ between two configs, the nightly ones aside (input and catalog
    paths, ``as_of``, ``output``, ``gates``, ``evaluate``, ``spark``, ``engine``): none when the runs'
    settings are comparable."""
    mine, theirs = config.model_dump(exclude=_NIGHTLY), other.model_dump(exclude=_NIGHTLY)
    return sorted(_differences(mine, theirs))


def _differences(mine: object, theirs: object, prefix: str = "") -> list[str]:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return [
            d
            for key in sorted(set(mine) | set(theirs))
            for d in _differences(mine.get(key), theirs.get(key), f"{prefix}{key}.")
        ]
    return [] if mine == theirs else [prefix.rstrip(".")]


def _change_failures(config: Config, counts: RunCounts, previous: Manifest | None) -> list[str]:
    if previous is None:
        return []
    gates = config.gates
    failures = []
    old_baskets = previous.counts.baskets
    if gates.max_basket_drop is not None and old_baskets and counts.baskets < (1 - gates.max_basket_drop) * old_baskets:
        failures.append(
            f"gates.max_basket_drop: {counts.baskets} baskets against {old_baskets} in run {previous.run_id}, "
            f"{1 - counts.baskets / old_baskets:.0%} fewer, more than {gates.max_basket_drop:.0%}: "
            "is the export complete?"
        )
    old_rules = previous.counts.rules
    if gates.max_rule_change is not None and old_rules:
        change = abs(counts.rules - old_rules) / old_rules
        if change > gates.max_rule_change:
            failures.append(
                f"gates.max_rule_change: {counts.rules} rules against {old_rules} in run "
                f"{previous.run_id}, a change of {change:.0%}, more than {gates.max_rule_change:.0%}"
            )
    old_products = set(previous.counts.covered_products)
    new_products = set(counts.covered_products)
    union = old_products | new_products
    if gates.max_product_change is not None and old_products and union:
        distance = 1 - len(old_products & new_products) / len(union)
        if distance > gates.max_product_change:
            failures.append(
                f"gates.max_product_change: the recommended products changed by {distance:.0%} "
                f"(Jaccard distance) against run {previous.run_id}, more than {gates.max_product_change:.0%}"
            )
    return failures
