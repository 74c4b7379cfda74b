"""Itemsets and rules against a brute-force count, and their invariants as properties."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import MineConfig, RulesConfig, load_config
from pipeline.contract.schema import TEXT
from pipeline.errors import ConfigError
from pipeline.flow.inputs import prepare_inputs
from pipeline.local.baskets import Baskets, baskets_from_lines, itemset_labels
from pipeline.local.itemsets import Itemsets, frequent_itemsets, min_count_for
from pipeline.local.rules import association_rules

import oracle
from conftest import SAMPLE_CONFIG, SHARED


def baskets_of(groups: list[set[str]]) -> Baskets:
    rows = [(str(i), item) for i, group in enumerate(groups) for item in sorted(group)]
    lines = pd.DataFrame(rows, columns=["order_id", "product_id"], dtype=TEXT)
    return baskets_from_lines(lines)


def mined(baskets: Baskets, itemsets: Itemsets) -> dict[tuple[str, ...], int]:
    labels = itemset_labels(itemsets.codes, itemsets.length, baskets.items).lists.to_pylist()
    return {tuple(k): int(v) for k, v in zip(labels, itemsets.count, strict=True)}


def as_sets(baskets: Baskets) -> list[set[str]]:
    matrix = baskets.matrix.tocsr()
    return [
        {str(baskets.items[j]) for j in matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]]}
        for i in range(baskets.count)
    ]


@pytest.fixture(scope="module")
def sample_baskets() -> Baskets:
    """The embedded sample's baskets, cut to small ones so brute force stays fast."""
    config = load_config(SAMPLE_CONFIG, values={"clean.max_basket_size": 25})
    return prepare_inputs(config).baskets


@pytest.fixture(scope="module")
def sample_oracle(sample_baskets: Baskets) -> Callable[[int, int], dict[tuple[str, ...], int]]:
    """Brute-force frequent itemsets of the sample, computed once per threshold."""
    return functools.cache(functools.partial(oracle.frequent, as_sets(sample_baskets)))


ENGINES = [("fim", "fpgrowth"), ("fim", "apriori"), ("mlxtend", "fpgrowth"), ("mlxtend", "apriori"), ("count", "-")]


def mine_config(engine: str, algorithm: str, **values: object) -> MineConfig | None:
    """The settings of one engine, or None where it does not apply (``count`` mines 2 or 3 products)."""
    if engine == "count" and values.get("max_len", 3) not in (2, 3):
        return None
    chosen = {"engine": engine} if engine == "count" else {"engine": engine, "algorithm": algorithm}
    return MineConfig.model_validate({**values, **chosen})


@pytest.mark.parametrize("engine, algorithm", ENGINES)
@pytest.mark.parametrize("min_support, max_len", [(0.02, 3), (0.01, 2), (0.015, 4)])
def test_itemsets_match_brute_force_on_the_sample(
    sample_baskets: Baskets,
    sample_oracle: Callable[[int, int], dict[tuple[str, ...], int]],
    engine: str,
    algorithm: str,
    min_support: float,
    max_len: int,
) -> None:
    config = mine_config(engine, algorithm, min_support=min_support, max_len=max_len)
    if config is None:
        pytest.skip("count mines itemsets of 2 or 3 products")
    itemsets = frequent_itemsets(sample_baskets, config)
    assert itemsets.method.split()[0] == engine
    expected = sample_oracle(itemsets.min_count, max_len)
    assert itemsets.min_count == math.ceil(min_support * sample_baskets.count)
    assert mined(sample_baskets, itemsets) == expected
    assert len(expected) > 50  # the comparison is not vacuous


@pytest.mark.skipif(not (SHARED / "groceries.csv").exists(), reason="../shared/datasets not present")
@pytest.mark.parametrize("engine, algorithm", ENGINES)
def test_itemsets_and_rules_match_brute_force_on_groceries(engine: str, algorithm: str) -> None:
    config = load_config(
        values={
            "input.paths": [str(SHARED / "groceries.csv")],
            "input.format": "baskets",
            "clean.max_basket_size": None,
        }
    )
    baskets = prepare_inputs(config).baskets
    assert baskets.count == 9835 and len(baskets.items) == 169
    itemsets = frequent_itemsets(baskets, mine_config(engine, algorithm, min_support=0.01, max_len=3))  # type: ignore[arg-type]
    sets = as_sets(baskets)
    assert mined(baskets, itemsets) == oracle.frequent(sets, itemsets.min_count, 3)
    rules = association_rules(itemsets, RulesConfig(min_confidence=0.3, min_lift=1.0))
    assert len(rules) > 50
    rows = itemsets.rows()
    for row in rules.sample(30, random_state=1).itertuples():
        antecedent = tuple(str(baskets.items[c]) for c in rows[row.antecedent])
        expected = oracle.rule_metrics(sets, antecedent, str(baskets.items[row.consequent]))
        for metric, value in expected.items():
            assert getattr(row, metric) == pytest.approx(value, rel=1e-12), metric


def test_support_threshold_is_exact_on_the_boundary() -> None:
    # 100 baskets, pair in exactly 1: min_support 0.01 must find it (0.01 x 100 = 1.0000000000000002).
    groups = [{"a", "b"}] + [{"c"}] * 99
    baskets = baskets_of(groups)
    itemsets = frequent_itemsets(baskets, MineConfig(min_support=0.01))
    assert itemsets.min_count == 1
    assert ("a", "b") in mined(baskets, itemsets)
    assert min_count_for(MineConfig(min_support=0.5, min_count=7), 100) == 7


def test_no_frequent_item_gives_an_empty_typed_result() -> None:
    baskets = baskets_of([{"a"}, {"b"}, {"c"}])
    itemsets = frequent_itemsets(baskets, MineConfig(min_support=0.9))
    assert len(itemsets) == 0 and itemsets.codes.shape == (0, 1) and itemsets.count.dtype == np.int64
    rules = association_rules(itemsets, RulesConfig())
    assert rules.empty and "confidence" in rules.columns


@pytest.mark.parametrize("engine, algorithm", ENGINES)
def test_products_in_every_basket_are_mined_too(engine: str, algorithm: str) -> None:
    # pyfim alone omits itemsets made only of products present in every transaction.
    groups = [{"a", "b", "c"}] * 3 + [{"a", "b"}]
    baskets = baskets_of(groups)
    config = mine_config(engine, algorithm, min_count=1)
    assert mined(baskets, frequent_itemsets(baskets, config)) == oracle.frequent(groups, 1, 3)  # type: ignore[arg-type]


def test_itemset_explosion_is_stopped_with_advice() -> None:
    # 12 products in every basket: 2^12 - 1 = 4,095 itemsets at any support.
    baskets = baskets_of([set("abcdefghijkl")] * 5)
    config = MineConfig(min_count=1, max_len=None, max_itemsets=4_000)
    with pytest.raises(
        ConfigError,
        match=r"mine.max_itemsets: this data would give 4,095 frequent itemsets "
        r"\(12 of length 1, 66 of length 2.*raise mine.min_support",
    ):
        frequent_itemsets(baskets, config)
    assert len(frequent_itemsets(baskets, config.model_copy(update={"max_len": 3}))) == 12 + 66 + 220


def test_repeated_lines_count_once_per_basket() -> None:
    lines = pd.DataFrame({"order_id": ["1", "1", "1", "2"], "product_id": ["a", "a", "b", "a"]}, dtype=TEXT)
    baskets = baskets_from_lines(lines)
    assert baskets.item_counts().tolist() == [2, 1]
    assert baskets.lines == 4 and baskets.matrix.nnz == 3


# --- properties -------------------------------------------------------------------------------

ITEM_IDS = st.sampled_from(["0001", "001", "1", "a", "A", "é", "日本", "x y", "22386", "85099B"])
BASKETS = st.lists(st.sets(ITEM_IDS, min_size=1, max_size=6), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(groups=BASKETS, min_count=st.integers(1, 4), max_len=st.one_of(st.none(), st.integers(2, 4)))
def test_fpgrowth_equals_apriori_equals_brute_force(
    groups: list[set[str]], min_count: int, max_len: int | None
) -> None:
    baskets = baskets_of(groups)
    expected = oracle.frequent(groups, min_count, max_len or 6)
    for engine, algorithm in ENGINES:
        config = mine_config(engine, algorithm, min_count=min_count, max_len=max_len)
        if config is not None:
            assert mined(baskets, frequent_itemsets(baskets, config)) == expected, (engine, algorithm)


WIDE_BASKETS = st.lists(st.sets(st.integers(0, 14).map(str), min_size=1, max_size=12), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(groups=WIDE_BASKETS, min_count=st.integers(1, 6), max_len=st.sampled_from([2, 3]))
def test_counting_equals_brute_force_on_baskets_of_many_sizes(
    groups: list[set[str]], min_count: int, max_len: int
) -> None:
    # Baskets of 1 to 12 products: every size is a separate block of the counting, and products in
    # fewer than two frequent pairs are left out of the triples.
    baskets = baskets_of(groups)
    itemsets = frequent_itemsets(baskets, MineConfig(min_count=min_count, max_len=max_len, engine="count"))
    assert itemsets.method == "count"
    assert mined(baskets, itemsets) == oracle.frequent(groups, min_count, max_len)


def test_auto_counts_many_short_baskets_and_grows_a_few_long_ones() -> None:
    rng = np.random.default_rng(7)
    short = [set(rng.choice(40, size=3, replace=False).astype(str)) for _ in range(20_000)]
    found = frequent_itemsets(baskets_of(short), MineConfig(min_count=20))
    assert found.method == "count" and found.why.startswith("auto: counting about")
    # Sixty baskets of sixty different sizes: one numpy step per position pair of each size.
    long = [set(rng.choice(80, size=n, replace=False).astype(str)) for n in range(3, 63)]
    grown = frequent_itemsets(baskets_of(long), MineConfig(min_count=5))
    assert grown.method == "fim fpgrowth" and grown.why.startswith("auto: counting about")
    # Itemsets of any length are grown, whatever the baskets.
    assert frequent_itemsets(baskets_of(short), MineConfig(min_count=20, max_len=None)).method == "fim fpgrowth"


def test_counting_falls_back_or_refuses_when_its_table_would_be_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.local.counting.MAX_TABLE", 20)
    monkeypatch.setattr("pipeline.local.itemsets.MAX_TABLE", 20)
    groups = [set("abcdef")] * 3 + [set("abc")] * 2
    baskets = baskets_of(groups)
    auto = frequent_itemsets(baskets, MineConfig(min_count=2))
    assert auto.method == "fim fpgrowth" and "too many to count" in auto.why
    assert mined(baskets, auto) == oracle.frequent(groups, 2, 3)
    with pytest.raises(ConfigError, match=r"mine.engine = count: counting pairs of 6 products needs a table of 36"):
        frequent_itemsets(baskets, MineConfig(min_count=2, engine="count"))


def test_counting_stops_at_the_guard_as_soon_as_a_length_is_counted() -> None:
    baskets = baskets_of([set("abcdefghijkl")] * 5)  # 12 + 66 pairs + 220 triples at any support
    counted = MineConfig(min_count=1, max_len=3, engine="count")
    with pytest.raises(ConfigError, match=r"would give 298 frequent itemsets \(12 of length 1, 66 of length 2, 220 of"):
        frequent_itemsets(baskets, counted.model_copy(update={"max_itemsets": 200}))
    # Past the limit with the pairs alone: stopped before the triples are counted.
    with pytest.raises(ConfigError, match=r"would give 78 frequent itemsets \(12 of length 1, 66 of length 2\)"):
        frequent_itemsets(baskets, counted.model_copy(update={"max_itemsets": 70}))
    assert len(frequent_itemsets(baskets, counted.model_copy(update={"max_itemsets": 298}))) == 298


def test_count_engine_is_refused_for_longer_itemsets() -> None:
    with pytest.raises(ValueError, match=r"mine.engine = 'count' counts itemsets of 2 or 3 products"):
        MineConfig(engine="count", max_len=None)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(groups=BASKETS, min_count=st.integers(1, 4))
def test_support_is_anti_monotone(groups: list[set[str]], min_count: int) -> None:
    baskets = baskets_of(groups)
    found = mined(baskets, frequent_itemsets(baskets, MineConfig(min_count=min_count, max_len=4)))
    for itemset, count in found.items():
        for size in range(1, len(itemset)):
            for subset in combinations(itemset, size):
                assert subset in found and found[subset] >= count


@settings(max_examples=60, deadline=None, derandomize=True)
@given(groups=BASKETS, min_count=st.integers(1, 3))
def test_rule_measures_follow_their_definitions(groups: list[set[str]], min_count: int) -> None:
    baskets = baskets_of(groups)
    itemsets = frequent_itemsets(baskets, MineConfig(min_count=min_count, max_len=3))
    rows = itemsets.rows()
    counts = dict(zip(rows, itemsets.count.tolist(), strict=True))
    rules = association_rules(itemsets, RulesConfig(min_confidence=0.0, min_lift=0.0, drop_redundant=False))
    n = baskets.count
    lift_of: dict[tuple[tuple[int, ...], int], float] = {}
    for row in rules.itertuples():
        antecedent = rows[row.antecedent]
        union = tuple(sorted((*antecedent, row.consequent)))
        assert row.confidence == pytest.approx((counts[union] / n) / (counts[antecedent] / n))
        assert row.lift == pytest.approx(row.confidence / (counts[(row.consequent,)] / n))
        assert row.support == pytest.approx(counts[union] / n) and row.pair_count == counts[union]
        assert 0 < row.confidence <= 1
        if row.confidence < 1:
            assert row.conviction == pytest.approx((1 - counts[(row.consequent,)] / n) / (1 - row.confidence))
        else:
            assert math.isnan(row.conviction)
        lift_of[(antecedent, row.consequent)] = row.lift
    # Lift is symmetric: lift(a -> b) == lift(b -> a).
    for (antecedent, consequent), lift in lift_of.items():
        if len(antecedent) == 1:
            assert lift == pytest.approx(lift_of[((consequent,), antecedent[0])])
    # Every itemset of two or more gives one rule per member.
    assert len(rules) == sum(len(k) for k in counts if len(k) > 1)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(groups=BASKETS, min_confidence=st.floats(0, 1), min_lift=st.floats(0, 3))
def test_rule_filters_hold(groups: list[set[str]], min_confidence: float, min_lift: float) -> None:
    baskets = baskets_of(groups)
    itemsets = frequent_itemsets(baskets, MineConfig(min_count=1, max_len=3))
    rules = association_rules(itemsets, RulesConfig(min_confidence=min_confidence, min_lift=min_lift))
    assert (rules["confidence"] >= min_confidence).all() and (rules["lift"] > min_lift).all()


@pytest.mark.slow
@pytest.mark.parametrize("min_support, max_len", [(0.01, 3), (0.008, None)])
def test_engines_give_identical_rules_on_the_sample(
    sample_baskets: Baskets, min_support: float, max_len: int | None
) -> None:
    outputs = []
    for engine in ("fim", "mlxtend"):
        itemsets = frequent_itemsets(
            sample_baskets, MineConfig(min_support=min_support, max_len=max_len, engine=engine)
        )
        rules = association_rules(itemsets, RulesConfig(min_confidence=0.0, min_lift=0.0, drop_redundant=False))
        outputs.append((itemsets, rules))
    (fim_sets, fim_rules), (ml_sets, ml_rules) = outputs
    assert np.array_equal(fim_sets.codes, ml_sets.codes) and np.array_equal(fim_sets.count, ml_sets.count)
    pd.testing.assert_frame_equal(fim_rules, ml_rules)
    assert len(fim_rules) > 100


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "fimi" / "retail.dat").exists(), reason="../shared/datasets not present")
def test_engines_agree_on_fimi_retail() -> None:
    config = load_config(
        values={
            "input.paths": [str(SHARED / "fimi" / "retail.dat")],
            "input.format": "baskets",
            "input.delimiter": " ",
            "clean.max_basket_size": None,
        }
    )
    baskets = prepare_inputs(config).baskets
    found = [
        frequent_itemsets(baskets, MineConfig(min_support=0.005, max_len=None, engine=e)) for e in ("fim", "mlxtend")
    ]
    assert np.array_equal(found[0].codes, found[1].codes) and np.array_equal(found[0].count, found[1].count)
    assert len(found[0]) > 500


def test_too_many_candidate_rules_stop_before_any_is_built() -> None:
    groups = [{"a", "b", "c", "d"}] * 5 + [{"a", "b"}] * 3
    itemsets = frequent_itemsets(baskets_of(groups), MineConfig(min_count=2, max_len=None))
    # Every subset of {a, b, c, d}: 6 pairs x 2 + 4 triples x 3 + 1 x 4 = 28 candidates.
    candidates = int(itemsets.length[itemsets.length >= 2].sum())
    assert candidates == 28
    assert len(association_rules(itemsets, RulesConfig(max_candidates=28, drop_redundant=False, min_lift=0))) > 0
    with pytest.raises(ConfigError, match=r"rules\.max_candidates: 15 itemsets give 28 candidate rules, more than 27"):
        association_rules(itemsets, RulesConfig(max_candidates=27))
