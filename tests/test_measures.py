"""Interest measures against hand-computed values, significance against scipy's own
Fisher test, and redundancy pruning against a brute-force reading of arules' definition."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact
from test_mining import BASKETS, baskets_of

from pipeline.config import MineConfig, RulesConfig
from pipeline.local.itemsets import frequent_itemsets
from pipeline.local.rules import association_rules
from pipeline.policy.measures import MEASURES, adjust_p_values, fisher_p_values, interest_measures

# n = 10 baskets, n(A) = 4, n(C) = 5, n(A u C) = 3: every value below worked out by hand.
HAND = {
    "support": 3 / 10,
    "confidence": 3 / 4,
    "lift": (3 / 4) / (5 / 10),  # 1.5
    "leverage": 3 / 10 - (4 / 10) * (5 / 10),  # 0.1
    "conviction": (1 - 5 / 10) / (1 - 3 / 4),  # 2.0
    "all_confidence": 3 / 5,  # n(AC) / max(n(A), n(C))
    "kulczynski": (3 / 4 + 3 / 5) / 2,  # 0.675
    "jaccard": 3 / (4 + 5 - 3),  # 0.5
    "certainty": (3 / 4 - 5 / 10) / (1 - 5 / 10),  # 0.5
    # (0.3 - 0.2) / max(0.3 x 0.6, 0.4 x (0.5 - 0.3)) = 0.1 / 0.18
    "zhang": 0.1 / 0.18,
}


def test_measures_match_hand_computed_values() -> None:
    measures = interest_measures(10, np.array([4]), np.array([5]), np.array([3]))
    assert set(measures) == set(HAND)
    for name, value in HAND.items():
        assert measures[name][0] == pytest.approx(value, rel=1e-12), name


def test_negative_association_gives_negative_certainty_and_zhang() -> None:
    # n(A) = 5, n(C) = 5, together only once in 10: confidence 0.2 < support(C) 0.5.
    m = {k: v[0] for k, v in interest_measures(10, np.array([5]), np.array([5]), np.array([1])).items()}
    assert m["certainty"] == pytest.approx((0.2 - 0.5) / 0.5)
    assert m["zhang"] == pytest.approx((0.1 - 0.25) / max(0.1 * 0.5, 0.5 * (0.5 - 0.1)))
    assert m["lift"] < 1 and m["leverage"] < 0


def test_confidence_one_leaves_conviction_undefined() -> None:
    m = interest_measures(10, np.array([3]), np.array([5]), np.array([3]))
    assert np.isnan(m["conviction"][0]) and m["certainty"][0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "n, a, c, ac", [(10, 4, 5, 3), (100, 20, 30, 15), (50, 10, 10, 1), (1000, 40, 25, 12), (7, 7, 3, 3)]
)
def test_fisher_p_value_matches_scipy_on_the_2x2_table(n: int, a: int, c: int, ac: int) -> None:
    table = [[ac, a - ac], [c - ac, n - a - c + ac]]
    expected = fisher_exact(table, alternative="greater").pvalue
    got = fisher_p_values(n, np.array([a]), np.array([c]), np.array([ac]))[0]
    assert got == pytest.approx(expected, rel=1e-9)


def test_fisher_p_value_hand_computed() -> None:
    # P(X >= 3), X ~ hypergeometric(10 baskets, 5 with C, 4 drawn) = (C(5,3)C(5,1) + C(5,4)) / C(10,4) = 55/210.
    assert fisher_p_values(10, np.array([4]), np.array([5]), np.array([3]))[0] == pytest.approx(55 / 210)


def test_p_value_adjustments_hand_computed() -> None:
    p = np.array([0.01, 0.04, 0.03])
    # Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04, then running max.
    assert adjust_p_values(p, "holm").tolist() == pytest.approx([0.03, 0.06, 0.06])
    # BH: times 3/1, 3/2, 3/3 = 0.03, 0.045, 0.04, then running min from the largest.
    assert adjust_p_values(p, "bh").tolist() == pytest.approx([0.03, 0.04, 0.04])
    assert adjust_p_values(p, None).tolist() == p.tolist()
    assert adjust_p_values(np.array([0.5, 0.9]), "holm").tolist() == [1.0, 1.0]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(p=st.lists(st.floats(0, 1), max_size=30), method=st.sampled_from(["holm", "bh"]))
def test_adjusted_p_values_are_monotone_and_never_smaller(p: list[float], method: str) -> None:
    raw = np.array(p)
    adjusted = adjust_p_values(raw, method)  # type: ignore[arg-type]
    assert (adjusted >= raw - 1e-15).all() and (adjusted <= 1).all()
    order = np.argsort(raw, kind="stable")
    assert (np.diff(adjusted[order]) >= -1e-15).all()
    assert (adjust_p_values(raw, "holm") >= adjust_p_values(raw, "bh") - 1e-15).all()


def _brute_force_non_redundant(groups: list[set[str]], min_confidence: float) -> set[tuple[tuple[str, ...], str]]:
    """Rules kept by arules' definition, counted from the baskets with exact fractions."""
    n = len(groups)

    def count(items: tuple[str, ...]) -> int:
        return sum(1 for g in groups if set(items) <= g)

    def confidence(antecedent: tuple[str, ...], consequent: str) -> Fraction:
        base = count(antecedent) if antecedent else n
        return Fraction(count((*antecedent, consequent)), base)

    products = sorted(set().union(*groups))
    kept = set()
    for size in (2, 3):
        for itemset in combinations(products, size):
            if count(itemset) == 0:
                continue
            for consequent in itemset:
                antecedent = tuple(p for p in itemset if p != consequent)
                conf = confidence(antecedent, consequent)
                lift_ok = conf > confidence((), consequent)  # lift > 1
                if conf < Fraction(min_confidence).limit_denominator(10**9) or not lift_ok:
                    continue
                general = [sub for k in range(len(antecedent)) for sub in combinations(antecedent, k)]
                if all(confidence(sub, consequent) < conf for sub in general):
                    kept.add((antecedent, consequent))
    return kept


@settings(max_examples=60, deadline=None, derandomize=True)
@given(groups=BASKETS, min_confidence=st.sampled_from([0.0, 0.2, 0.5]))
def test_redundant_rules_are_exactly_those_arules_calls_redundant(
    groups: list[set[str]], min_confidence: float
) -> None:
    baskets = baskets_of(groups)
    itemsets = frequent_itemsets(baskets, MineConfig(min_count=1, max_len=3))
    rules = association_rules(itemsets, RulesConfig(min_confidence=min_confidence, min_lift=1.0))
    rows = itemsets.rows()
    found = {
        (tuple(str(baskets.items[c]) for c in rows[r.antecedent]), str(baskets.items[r.consequent]))
        for r in rules.itertuples()
    }
    assert found == _brute_force_non_redundant([set(g) for g in groups], min_confidence)


def test_significance_filter_drops_chance_rules() -> None:
    # a and b always together in 30 of 200 baskets: significant. c and d (20 baskets each)
    # meet in 3 where chance gives 2: lift 1.5, but p = 0.32.
    groups = [{"a", "b"}] * 30 + [{"c", "d"}] * 3 + [{"c"}] * 17 + [{"d"}] * 17 + [{"e"}] * 133
    baskets = baskets_of(groups)
    itemsets = frequent_itemsets(baskets, MineConfig(min_count=1, max_len=2))
    loose = association_rules(itemsets, RulesConfig(min_confidence=0.0, min_lift=1.0))
    strict = association_rules(itemsets, RulesConfig(min_confidence=0.0, min_lift=1.0, max_p_value=0.05))
    label = {i: str(p) for i, p in enumerate(baskets.items)}

    def pairs(rules: pd.DataFrame) -> set[tuple[str, str]]:
        return {(label[int(itemsets.codes[r.antecedent, 0])], label[r.consequent]) for r in rules.itertuples()}

    assert pairs(loose) == {("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")}
    assert pairs(strict) == {("a", "b"), ("b", "a")}
    assert (strict["p_value_adjusted"] <= 0.05).all() and (strict["p_value_adjusted"] >= strict["p_value"]).all()


def test_the_declared_measures_are_those_computed() -> None:
    """Rule tables (both engines) take their measure columns from ``MEASURES``: it must name every measure."""
    computed = interest_measures(10, np.array([4]), np.array([5]), np.array([2]))
    assert tuple(computed) == MEASURES
