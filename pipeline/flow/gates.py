"""A finished run in, the reasons not to publish it out (an empty list: publish).

Like dbt refusing a run whose tests fail, the nightly job refuses to replace
yesterday's table with one that is suspicious: too few baskets, too much of the
export rejected, no rules, a rule count or a set of recommended products that
changed too much since the last published run, a metric that is not a finite
number, or a table that does not match its declared schema. Each gate is a
``gates.*`` key; ``gates.enabled = false`` or ``basket run --force`` overrides.
"""

from __future__ import annotations

from pipeline.config import GatesConfig
from pipeline.contract.counts import RunCounts
from pipeline.contract.manifest import Manifest


def gate_failures(
    config: GatesConfig,
    counts: RunCounts,
    problems: list[str],
    previous: Manifest | None,
) -> list[str]:
    """Every gate the run fails, each as a sentence naming the gate key and the numbers.

    ``problems`` are what the engine found wrong in the tables themselves
    (:func:`pipeline.contract.checks.table_problems` for Arrow tables). ``previous`` is the manifest of
    the run ``latest`` points at (None on the first run): the change gates
    compare against it.
    """
    if not config.enabled:
        return []
    failures: list[str] = []
    if counts.baskets < config.min_baskets:
        failures.append(f"gates.min_baskets: {counts.baskets} baskets after cleaning, fewer than {config.min_baskets}")
    share = counts.rows_rejected / counts.rows_in if counts.rows_in else 1.0
    if share > config.max_reject_share:
        failures.append(
            f"gates.max_reject_share: {share:.1%} of rows rejected, more than {config.max_reject_share:.1%}"
        )
    if counts.rules < config.min_rules:
        failures.append(f"gates.min_rules: {counts.rules} rules, fewer than {config.min_rules}")
    failures += _change_failures(config, counts, previous)
    return failures + problems


def _change_failures(config: GatesConfig, counts: RunCounts, previous: Manifest | None) -> list[str]:
    if previous is None:
        return []
    failures = []
    old_rules = previous.counts.rules
    if config.max_rule_change is not None and old_rules:
        change = abs(counts.rules - old_rules) / old_rules
        if change > config.max_rule_change:
            failures.append(
                f"gates.max_rule_change: {counts.rules} rules against {old_rules} in run "
                f"{previous.run_id}, a change of {change:.0%}, more than {config.max_rule_change:.0%}"
            )
    old_products = set(previous.counts.covered_products)
    new_products = set(counts.covered_products)
    union = old_products | new_products
    if config.max_product_change is not None and old_products and union:
        distance = 1 - len(old_products & new_products) / len(union)
        if distance > config.max_product_change:
            failures.append(
                f"gates.max_product_change: the recommended products changed by {distance:.0%} "
                f"(Jaccard distance) against run {previous.run_id}, more than {config.max_product_change:.0%}"
            )
    return failures
