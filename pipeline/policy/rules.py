"""Which association rules are kept: one verdict per rule, for every engine and for ``basket explain``.

A candidate rule ``A -> c`` is judged, in this order, by

1. ``rules.min_confidence``: confidence ``n(Ac) / n(A)`` at least this;
2. ``rules.min_lift``: lift, confidence over ``c``'s support, above this;
3. ``rules.drop_redundant``: a more general rule (same consequent, an
   antecedent that is a proper subset, the empty one included) with at least
   the same confidence makes it redundant (arules' ``is.redundant``);
4. ``rules.max_p_value``: Fisher's exact test, corrected for the number of
   rules tested (``rules.p_adjust``), must reject independence.

The first three are :func:`rule_verdicts`, a kernel over arrays; the fourth
needs every kept rule's p-value at once (the correction ranks them) and is
:func:`significant` over the corrected values. Post-purchase rules have their
own confidence floor (:func:`post_purchase_kept`).
"""

from __future__ import annotations

import numpy as np

from pipeline.config import Config, PairsConfig, RulesConfig

#: Verdict codes of :func:`rule_verdicts`, and what each means.
KEPT, LOW_CONFIDENCE, LOW_LIFT, REDUNDANT = 0, 1, 2, 3


def rule_verdicts(
    confidence: np.ndarray, consequent_support: np.ndarray, general: np.ndarray | None, config: RulesConfig
) -> np.ndarray:
    """The verdict of each candidate rule (:data:`KEPT` or the first filter that stops it).

    ``general`` is, per rule, the best confidence of a more general rule with
    the same consequent (the consequent's support for a one-product
    antecedent); None when redundancy is not judged.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = confidence / np.asarray(consequent_support, dtype=np.float64)
    verdict = np.full(confidence.shape, KEPT, dtype=np.int8)
    if config.drop_redundant and general is not None:
        verdict[np.asarray(general) >= confidence] = REDUNDANT
    verdict[~(lift > config.min_lift)] = LOW_LIFT
    verdict[~(confidence >= config.min_confidence)] = LOW_CONFIDENCE
    return verdict


def verdict_reason(
    verdict: int, confidence: float, lift: float, general: float, general_rule: str, config: RulesConfig
) -> str:
    """A sentence naming the filter behind ``verdict`` and the numbers (for ``basket explain``).

    ``general`` is the best confidence of a more general rule, ``general_rule`` that rule (``a|b -> c``).
    """
    measures = f"confidence {confidence:.3f}, lift {lift:.2f}"
    if verdict == LOW_CONFIDENCE:
        return f"{measures}: confidence below rules.min_confidence {config.min_confidence}"
    if verdict == LOW_LIFT:
        return f"{measures}: lift not above rules.min_lift {config.min_lift}"
    if verdict == REDUNDANT:
        return f"{measures}: redundant, {general_rule} has confidence {general:.3f}"
    return f"{measures}: passed the rule filters"


def significant(p_value_adjusted: np.ndarray, config: RulesConfig) -> np.ndarray:
    """Rules whose corrected p-value passes ``rules.max_p_value`` (all of them when it is unset)."""
    p = np.asarray(p_value_adjusted, dtype=np.float64)
    if config.max_p_value is None:
        return np.ones(p.shape, dtype=bool)
    return p <= config.max_p_value


def post_purchase_kept(confidence: np.ndarray, lift: np.ndarray, config: Config) -> np.ndarray:
    """Post-purchase rules kept: confidence at least ``post_purchase.min_confidence``, lift above ``rules.min_lift``."""
    return (np.asarray(confidence) >= config.post_purchase.min_confidence) & (np.asarray(lift) > config.rules.min_lift)


def enough_customers(customers: np.ndarray, config: PairsConfig) -> np.ndarray:
    """Pair rules backed by at least ``pairs.min_customers`` distinct customers: a market signal, not a habit."""
    return np.asarray(customers) >= config.min_customers


def passed_filters(config: Config, post_purchase: bool) -> list[str]:
    """The filters a published rule has passed, as ``basket explain`` lists them."""
    rules, margin = config.rules, config.margin
    if post_purchase:
        passed = [f"confidence >= {config.post_purchase.min_confidence}", f"lift > {rules.min_lift}"]
    else:
        passed = [f"confidence >= {rules.min_confidence}", f"lift > {rules.min_lift}"]
        if rules.drop_redundant:
            passed.append("not redundant")
    if rules.max_p_value is not None:
        passed.append(f"{rules.p_adjust or 'unadjusted'} p-value <= {rules.max_p_value}")
    if margin.min_margin is not None:
        passed.append(f"margin >= {margin.min_margin}")
    if margin.min_margin_rate is not None:
        passed.append(f"margin rate >= {margin.min_margin_rate}")
    return passed
