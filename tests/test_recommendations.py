"""Margins, filters, scores and ranks on baskets whose right answer is known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_mining import baskets_of

from pipeline.config import Config, load_config
from pipeline.contract.schema import RECOMMENDATIONS, TEXT
from pipeline.local.baskets import itemset_labels
from pipeline.local.itemsets import frequent_itemsets
from pipeline.local.recommendations import rank_rules, top_recommendations
from pipeline.local.rules import association_rules
from pipeline.policy.offers import CART_ORDER, sorted_by

# "phone" is bought with "case" (cheap, high margin), "charger" (dear, low margin),
# "cable" (sold below cost) and "sticker" (not in the catalog).
GROUPS = (
    [{"phone", "case", "charger", "cable", "sticker"}] * 6
    + [{"phone", "case"}] * 4
    + [{"phone", "charger"}] * 2
    + [{"case"}, {"charger"}, {"cable"}, {"sticker"}, {"book"}, {"book"}]
)
CATALOG = pd.DataFrame(
    {
        "product_id": pd.array(["phone", "case", "charger", "cable", "book"], dtype=TEXT),
        "name": pd.array(["Phone", "Case", "Charger", "Cable", "Book"], dtype=TEXT),
        "category": pd.array(["a"] * 5, dtype=TEXT),
        "price": [500.0, 20.0, 40.0, 10.0, 15.0],
        "cost": [450.0, 5.0, 36.0, 12.0, 10.0],
    }
)
CATALOG["margin"] = CATALOG["price"] - CATALOG["cost"]
CATALOG["margin_rate"] = CATALOG["margin"] / CATALOG["price"]


def ranked(catalog: pd.DataFrame | None = CATALOG, **values: object):
    config: Config = load_config(
        values={
            "mine.min_count": 2,
            "mine.max_len": 2,
            "rules.min_confidence": 0.0,
            "margin.min_margin": None,
            # rank.by's definitions on every placement; rank.page_by and rank.page_margin_power have their own.
            "rank.page_by": "same",
            "rank.page_margin_power": "none",
            **values,
        }
    )
    return rank(GROUPS, catalog, config)


def rank(groups: list[set[str]], catalog: pd.DataFrame | None, config: Config):
    baskets = baskets_of(groups)
    itemsets = frequent_itemsets(baskets, config.mine)
    rules = association_rules(itemsets, config.rules)
    labels = itemset_labels(itemsets.codes, itemsets.length, baskets.items)
    return rank_rules(rules, itemsets, labels, baskets.items, catalog, config)


def _labels():
    config = load_config(values={"mine.min_count": 2, "mine.max_len": 2})
    baskets = baskets_of(GROUPS)
    itemsets = frequent_itemsets(baskets, config.mine)
    return itemset_labels(itemsets.codes, itemsets.length, baskets.items)


def offers(frame: pd.DataFrame, antecedent: str) -> pd.DataFrame:
    return frame[frame["antecedent_key"] == antecedent].set_index("consequent")


def test_margins_and_scores_follow_their_definitions() -> None:
    phone = offers(ranked().rules, "phone")
    n = len(GROUPS)
    case = phone.loc["case"]
    assert case["confidence"] == pytest.approx(10 / 12)
    assert case["consequent_margin"] == 15.0 and case["consequent_price"] == 20.0
    assert case["expected_margin"] == pytest.approx(10 / 12 * 15)
    # The margin enters as margin ** rank.margin_power: the default's alpha, 1 for the margin earned.
    alpha = load_config().rank.margin_power
    assert 0 < alpha < 1
    assert case["score"] == pytest.approx((10 / 12 - 11 / n) * 15**alpha)
    assert offers(ranked(**{"rank.margin_power": 1}).rules, "phone").loc["case", "score"] == pytest.approx(
        (10 / 12 - 11 / n) * 15
    )
    assert offers(ranked(**{"rank.margin_power": 0}).rules, "phone").loc["case", "score"] == pytest.approx(
        10 / 12 - 11 / n
    )
    similar = offers(ranked(**{"rank.by": "similar_margin"}).rules, "phone").loc["case"]
    assert similar["score"] == pytest.approx(similar["jaccard"] * 15**alpha)
    assert case["consequent_name"] == "Case"


def test_a_product_page_is_scored_by_rank_page_by_and_a_carts_rules_by_rank_by() -> None:
    rules = ranked(**{"mine.max_len": 3, "rank.page_by": "expected_margin"}).rules
    page, cart = rules["placement"] == "product", rules["placement"] == "cart"
    assert page.any() and cart.any()
    margin = rules["consequent_margin"] ** load_config().rank.margin_power
    assert rules.loc[page, "score"].to_numpy() == pytest.approx(
        (rules["confidence"] * margin)[page].to_numpy(), nan_ok=True
    )
    same = ranked(**{"mine.max_len": 3}).rules
    # Cart rows keep rank.by's score (here incremental margin: no item model), whatever the page's.
    merged = rules[cart].merge(same, on=["antecedent_key", "consequent"], suffixes=("", "_same"))
    assert len(merged) == cart.sum()
    assert merged["score"].to_numpy() == pytest.approx(merged["score_same"].to_numpy(), nan_ok=True)


def test_a_product_page_weighs_the_margin_by_rank_page_margin_power_and_a_cart_by_rank_margin_power() -> None:
    values = {"mine.max_len": 3, "rank.margin_power": 0.5, "rank.page_margin_power": 2.0}
    rules = ranked(**values).rules
    page, cart = rules["placement"] == "product", rules["placement"] == "cart"
    added = rules["confidence"] - rules["confidence"] / rules["lift"]  # incremental margin: no item model here
    assert rules.loc[page, "score"].to_numpy() == pytest.approx(
        (added * rules["consequent_margin"] ** 2.0)[page].to_numpy(), nan_ok=True
    )
    # The cart rows keep rank.margin_power's score, and with "none" the page follows rank.margin_power too.
    same = ranked(**{**values, "rank.page_margin_power": "none"}).rules
    merged = rules[cart].merge(same, on=["antecedent_key", "consequent", "placement"], suffixes=("", "_same"))
    assert len(merged) == cart.sum()
    assert merged["score"].to_numpy() == pytest.approx(merged["score_same"].to_numpy(), nan_ok=True)
    on_page = same["placement"] == "product"
    assert same.loc[on_page, "score"].to_numpy() == pytest.approx(
        (same["confidence"] - same["confidence"] / same["lift"]).mul(same["consequent_margin"] ** 0.5)[on_page],
        nan_ok=True,
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.sampled_from("abcdef"), min_size=1), min_size=4, max_size=30), st.integers(1, 3))
def test_a_page_ordered_by_its_own_score_keeps_the_cart_blocks_candidates(groups: list[set[str]], top_k: int) -> None:
    """With rank.page_by, a page shows what rank.page_by alone would; the cart block still finds every offer
    rank.by alone would have put on the page: the rest are the product's cart rows, scored by rank.by."""

    def shown(page_by: str, by: str) -> pd.DataFrame:
        values = {"mine.min_count": 2, "mine.max_len": 2, "rules.min_confidence": 0.0, "output.top_k": top_k}
        config = load_config(values={**values, "rank.by": by, "rank.page_by": page_by})
        rules = rank(groups, None, config).rules
        return rules[(rules["rank"] <= top_k) & (rules["antecedent_size"] == 1)]

    def offers(rows: pd.DataFrame, placement: str) -> set[tuple[str, str]]:
        chosen = rows[rows["placement"] == placement]
        return set(zip(chosen["antecedent_key"], chosen["consequent"], strict=True))

    paged, by_page, by_cart = shown("confidence", "lift"), shown("same", "confidence"), shown("same", "lift")
    assert offers(paged, "product") == offers(by_page, "product")
    assert offers(paged, "product") | offers(paged, "cart") >= offers(by_cart, "product")
    copies = paged[paged["placement"] == "cart"]
    assert copies["score"].to_numpy() == pytest.approx(copies["lift"].to_numpy())


def test_ranking_by_incremental_margin_puts_the_profitable_offer_first() -> None:
    phone = offers(ranked().rules, "phone").sort_values("rank")
    assert phone.index[0] == "case"
    assert phone["rank"].tolist() == list(range(1, len(phone) + 1))
    # The product the catalog lacks keeps a null margin and ranks after every scored offer.
    assert phone.index[-1] == "sticker"
    assert pd.isna(phone.loc["sticker", "score"]) and pd.isna(phone.loc["sticker", "consequent_margin"])


def test_rank_by_lift_and_confidence() -> None:
    for by in ("lift", "confidence"):
        phone = offers(ranked(**{"rank.by": by}).rules, "phone").sort_values("rank")
        assert phone[by].is_monotonic_decreasing, by


def test_min_margin_drops_products_sold_below_cost() -> None:
    result = ranked(**{"margin.min_margin": 0.0})
    assert "cable" not in set(result.rules["consequent"])
    # cable is bought with phone, case, charger and sticker: four rules recommend it.
    assert result.dropped["margin_below_minimum"] == 4
    # Margin rates: case 0.75, phone 0.1, charger 0.1, cable < 0; sticker unknown (kept).
    rate = ranked(**{"margin.min_margin_rate": 0.2}).rules
    assert set(rate["consequent"]) == {"case", "sticker"}


def test_missing_catalog_products_dropped_on_request() -> None:
    result = ranked(**{"catalog.missing": "drop"})
    assert "sticker" not in set(result.rules["consequent"])
    assert result.dropped["consequent_not_in_catalog"] == 4  # phone, case, charger, cable -> sticker


def test_without_a_catalog_margins_are_null_and_score_is_added_value() -> None:
    result = ranked(catalog=None)
    rules = result.rules
    assert rules["consequent_margin"].isna().all() and rules["expected_margin"].isna().all()
    n = len(GROUPS)
    case = offers(rules, "phone").loc["case"]
    assert case["score"] == pytest.approx(10 / 12 - 11 / n)


@pytest.mark.parametrize("by", ["incremental_margin", "similar_margin", "expected_margin"])
def test_a_catalog_of_names_without_prices_ranks_as_no_catalog(by: str) -> None:
    # Names, no price, cost or rate: no margin is known; every score was NaN, the order arbitrary.
    names_only = CATALOG.assign(price=np.nan, cost=np.nan, margin=np.nan, margin_rate=np.nan)
    named, bare = ranked(names_only, **{"rank.by": by}).rules, ranked(None, **{"rank.by": by}).rules
    assert np.isfinite(named["score"]).all()
    assert named["score"].tolist() == bare["score"].tolist()
    assert named["consequent"].tolist() == bare["consequent"].tolist()
    assert named.set_index("consequent")["consequent_name"].dropna().to_dict()["case"] == "Case"


def test_top_k_keeps_the_best_ranks_and_the_schema() -> None:
    result = ranked()
    table = top_recommendations(result.rules, top_k=2, run_id="r1")
    assert table.groupby("antecedent_key")["rank"].max().le(2).all()
    assert (table["run_id"] == "r1").all()
    arrow = result.table(RECOMMENDATIONS, table)
    assert arrow.schema.equals(RECOMMENDATIONS) and arrow.num_rows == len(table)
    for antecedent, key in zip(arrow["antecedent"].to_pylist(), arrow["antecedent_key"].to_pylist(), strict=True):
        assert "|".join(antecedent) == key
    keys = list(zip(table["segment"], table["antecedent_key"], table["rank"], strict=True))
    assert keys == sorted(keys)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    groups=st.lists(st.sets(st.sampled_from(list("abcdefg")), min_size=1, max_size=5), min_size=2, max_size=40),
    by=st.sampled_from(["incremental_margin", "expected_margin", "lift", "confidence"]),
    prices=st.lists(st.floats(0.5, 100), min_size=7, max_size=7),
)
def test_ranks_are_contiguous_and_scores_never_increase(groups: list[set[str]], by: str, prices: list[float]) -> None:
    catalog = pd.DataFrame(
        {"product_id": pd.array(list("abcdefg"), dtype=TEXT), "name": pd.array([None] * 7, dtype=TEXT)}
    )
    catalog["price"] = prices
    catalog["margin"] = np.asarray(prices) * np.linspace(-0.1, 0.6, 7)
    config = load_config(values={"mine.min_count": 1, "rules.min_confidence": 0.0, "rank.by": by})
    result = rank(groups, catalog, config).rules
    assert (result["consequent_margin"] >= 0).all()  # min_margin 0 by default
    # Groups by placement too: a page ordered by rank.page_by lends the cart block its other candidates.
    for _, group in result.groupby(["placement", "antecedent_key"]):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
        assert not group["consequent"].duplicated().any()


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.none() | st.sampled_from([0.5, 0.25, 1.0, -0.0, 0.0]),
            st.sampled_from([0.1, 0.2]),
            st.integers(1, 3),
            st.sampled_from(["b", "a", "10", "9"]),
        ),
        max_size=40,
    ),
    categorical=st.booleans(),
)
def test_the_cart_order_is_pandas_stable_sort(
    rows: list[tuple[int, float | None, float, int, str]], categorical: bool
) -> None:
    # The cart block's numpy sort against pandas' stable multi-key sort, ties and missing scores included.
    frame = pd.DataFrame(rows, columns=["case", "score", "confidence", "antecedent_size", "consequent"])
    frame = frame.astype({"score": "float64"}).assign(lift=frame["confidence"] * 2, row=np.arange(len(frame)))
    if categorical:
        frame["consequent"] = pd.Categorical(frame["consequent"], categories=sorted(set(frame["consequent"])))
    order = [("case", True), *CART_ORDER]
    expected = frame.sort_values(
        [c for c, _ in order], ascending=[a for _, a in order], na_position="last", kind="stable"
    )
    assert sorted_by(frame, order)["row"].tolist() == expected["row"].tolist()
    # Rows in order already (the shortcut that skips the sort) stay as they are.
    assert sorted_by(expected, order)["row"].tolist() == expected["row"].tolist()
