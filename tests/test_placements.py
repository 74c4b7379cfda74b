"""Up-sell, bundles, post-purchase rules, segments and the cart fallback, each on data
whose right answer is known by construction."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Config, load_config
from pipeline.flow.run import run
from pipeline.local import buy_again
from pipeline.local.baskets import baskets_from_lines, itemset_labels
from pipeline.local.bundles import bundle_table
from pipeline.local.engine import LocalEngine
from pipeline.local.itemsets import frequent_itemsets
from pipeline.local.postpurchase import post_purchase_rules
from pipeline.local.upsell import upsell_offers
from pipeline.policy.segments import segments_to_mine
from pipeline.policy.upsell import same_type
from pipeline.read.lookup import offers_after_purchase, offers_for_cart, offers_for_item

from conftest import Export, export_config


def _lines(orders: list[tuple[str, list[str], str, str]]) -> pd.DataFrame:
    """(customer, products, day, segment) per order -> clean order lines."""
    rows = [
        {
            "order_id": f"O{n:04d}",
            "product_id": p,
            "customer_id": customer,
            "timestamp": pd.Timestamp(day),
            "segment": segment,
        }
        for n, (customer, products, day, segment) in enumerate(orders)
        for p in products
    ]
    return pd.DataFrame(rows)


def _catalog(rows: dict[str, tuple[str, float, float]], names: dict[str, str] | None = None) -> pd.DataFrame:
    """product -> (category, price, cost) as read_catalog returns it; names default to one product type."""
    return pd.DataFrame(
        [
            {
                "product_id": p,
                "name": (names or {}).get(p, f"ENAMEL MUG {p}"),
                "category": c,
                "price": price,
                "cost": cost,
                "margin": price - cost,
                "margin_rate": np.nan,
            }
            for p, (c, price, cost) in rows.items()
        ]
    )


def _config(**values: object) -> Config:
    return load_config(values=values)


def test_upsell_keeps_only_same_category_pricier_better_margin_never_together_alternatives() -> None:
    catalog = _catalog(
        {
            "M1": ("Mugs", 10.0, 6.0),  # the viewed product: margin 4
            "M2": ("Mugs", 11.5, 6.5),  # +15%, margin 5: an up-sell
            "M8": ("Mugs", 12.5, 6.0),  # +25%, margin 6.5: an up-sell with more margin, fewer shared buyers
            "M3": ("Mugs", 12.0, 7.5),  # +20%, margin 4.5, but always bought with M1: a complement
            "M4": ("Mugs", 14.0, 6.0),  # +40%: outside the band
            "M5": ("Mugs", 10.9, 4.9),  # +9%: below the band
            "M6": ("Mugs", 12.4, 8.5),  # +24% but margin 3.9 < 4: would lower profit
            "M7": ("Mugs", 11.0, 6.5),  # +10%, margin 4.5, but only 3 customers bought it and M1
            "T1": ("Tea", 11.0, 2.0),  # +10%, margin 9, another category
            "D1": ("Mugs", 11.5, 5.0),  # +15%, margin 6.5, same category, but a doorstop: not a mug
        },
        {"D1": "HEART DOORSTOP"},
    )
    # Customers who bought M1 in one order and the other product in a later one.
    shared = {"M2": 6, "M8": 5, "M3": 7, "M4": 9, "M5": 9, "M6": 9, "M7": 3, "T1": 9, "D1": 9}
    orders = []
    for product, n in shared.items():
        for i in range(n):
            later = ["M1", product] if product == "M3" else [product]
            orders += [(f"{product}-{i}", ["M1"], "2024-01-01", "B2C"), (f"{product}-{i}", later, "2024-02-01", "B2C")]
    orders += [(f"loner-{i}", [p], "2024-01-01", "B2C") for i in range(10) for p in ("M2", "M7")]
    baskets = baskets_from_lines(_lines(orders))
    offers = upsell_offers(baskets, catalog, _config(), "*")
    m1 = offers[offers["antecedent_key"] == "M1"].set_index("consequent")
    buyers_m1 = sum(shared.values())
    assert set(m1.index) == {"M2", "M8"}
    # Evidence: share of M1's buyers who bought the alternative too; score = evidence x margin gain.
    assert m1.loc["M2", "confidence"] == pytest.approx(6 / buyers_m1)
    assert m1.loc["M2", "score"] == pytest.approx(6 / buyers_m1 * 1.0)
    assert m1.loc["M8", "score"] == pytest.approx(5 / buyers_m1 * 2.5)
    assert m1.sort_values("rank").index.tolist() == ["M8", "M2"]
    assert (offers["kind"] == "upsell").all() and offers["lift"].isna().all()
    assert (m1["pair_count"] == 0).all()
    # Every offer of every product obeys the band and the margin rule.
    info = catalog.set_index("product_id")
    step = (
        info.loc[offers["consequent"], "price"].to_numpy() / info.loc[offers["antecedent_key"], "price"].to_numpy() - 1
    )
    assert ((step >= 0.10 - 1e-12) & (step <= 0.25 + 1e-12)).all()
    assert (
        info.loc[offers["consequent"], "margin"].to_numpy() > info.loc[offers["antecedent_key"], "margin"].to_numpy()
    ).all()
    assert upsell_offers(baskets, None, _config(), "*").empty
    # Without customer ids no pair has shared buyers: no up-sell rather than an irrelevant one.
    anonymous = baskets_from_lines(_lines(orders).assign(customer_id=pd.NA))
    assert upsell_offers(anonymous, catalog, _config(), "*").empty


def test_bundle_discount_is_capped_by_the_margin_floor() -> None:
    # A in 20 baskets, B in 25, both in 15: all-confidence 15 / 25 = 0.6. C in 40, with A in 10: 0.25.
    orders = [("x", ["A", "B"], "2024-01-01", "s")] * 15 + [("x", ["A", "C"], "2024-01-01", "s")] * 5
    orders += [("x", ["B"], "2024-01-01", "s")] * 10 + [("x", ["C"], "2024-01-01", "s")] * 35
    baskets = baskets_from_lines(_lines(orders))
    catalog = _catalog({"A": ("k", 10.0, 6.0), "B": ("k", 5.0, 4.5), "C": ("k", 2.0, 1.0)})
    itemsets = frequent_itemsets(baskets, _config(**{"mine.min_count": 5}).mine)
    labels = itemset_labels(itemsets.codes, itemsets.length, baskets.items)

    def bundles(rate: float) -> pd.DataFrame:
        config = _config(**{"mine.min_count": 5, "margin.min_margin_rate": rate})
        return bundle_table(itemsets, labels, baskets.items, catalog, config, "*").to_pandas()

    loose = bundles(0.2)  # 10% allowed: 15 x 0.9 = 13.50, margin 3.00
    assert loose["bundle_key"].tolist() == ["A|B"]
    row = loose.iloc[0]
    assert (row["list_price"], row["bundle_price"], row["count"]) == (15.0, 13.5, 15)
    assert row["bundle_margin"] == pytest.approx(3.0) and row["all_confidence"] == pytest.approx(0.6)
    capped = bundles(0.25).iloc[0]  # the discount falls to 1 - 10.5 / (0.75 x 15) = 6.67%
    assert capped["bundle_price"] == pytest.approx(14.0) and capped["bundle_margin_rate"] >= 0.25 - 1e-9
    assert capped["discount"] == pytest.approx(1 / 15)
    assert bundles(0.35).empty  # even at list price the pair earns less than 35%


def test_post_purchase_rules_count_consecutive_orders_of_a_customer() -> None:
    orders = []
    for i in range(10):
        orders += [(f"a{i}", ["P"], "2024-01-01", "s"), (f"a{i}", ["Q"], "2024-01-05", "s")]
    for i in range(5):
        orders += [(f"b{i}", ["P"], "2024-01-01", "s"), (f"b{i}", ["S"], "2024-01-03", "s")]
    for i in range(10):
        orders += [(f"c{i}", ["R"], "2024-01-01", "s"), (f"c{i}", ["T"], "2024-01-04", "s")]
    for i in range(10):  # 59 days apart: no transition
        orders += [(f"d{i}", ["R"], "2024-01-01", "s"), (f"d{i}", ["S"], "2024-02-29", "s")]
    baskets = baskets_from_lines(_lines(orders))
    found = post_purchase_rules(baskets, _config(**{"mine.min_support": 0.1}))
    assert found is not None and found.antecedents.baskets == 25  # transitions
    items = baskets.items
    got = {
        (items[r.antecedent], items[r.consequent]): (r.pair_count, r.confidence, r.lift)
        for r in found.rules.itertuples()
    }
    assert set(got) == {("P", "Q"), ("P", "S"), ("R", "T")}
    assert got[("P", "Q")] == (10, pytest.approx(10 / 15), pytest.approx((10 / 15) / (10 / 25)))
    assert got[("P", "S")][0] == 5 and got[("R", "T")][1] == pytest.approx(1.0)
    anonymous = _lines(orders).assign(customer_id=pd.NA)
    assert post_purchase_rules(baskets_from_lines(anonymous), _config()) is None


def test_segments_are_mined_apart_and_small_ones_fall_back_to_the_global_rows(export: Export, tmp_path: Path) -> None:
    config = export_config(export, tmp_path / "out", **{"segment.column": "Country", "segment.min_baskets": 38})
    result = run(config)
    segments = result.counts.segments
    assert segments["*"] == result.counts.baskets
    big = {name for name, n in segments.items() if name != "*"}
    assert big and all(segments[name] >= 38 for name in big)
    recs = pq.read_table(result.run_dir / "recommendations.parquet").to_pandas()
    assert set(recs["segment"]) <= {"*", *big} and "*" in set(recs["segment"])
    one = sorted(big)[0]
    mine = offers_for_item(result.output_dir, "22386", segment=one)
    assert (mine["segment"] == one).all()
    unknown = offers_for_item(result.output_dir, "22386", segment="Atlantis")
    pd.testing.assert_frame_equal(unknown, offers_for_item(result.output_dir, "22386"))


def test_cart_offers_fill_up_with_best_sellers_of_the_cart_categories(config: Config) -> None:
    result = run(config)
    # Ten products in all: nine offers need every source.
    offers = offers_for_cart(result.output_dir, ["22720"], limit=9)
    assert len(offers) == 9 and not offers["consequent"].isin(["22720"]).any()
    assert set(offers["source"]) == {"rule", "category_best_seller", "best_seller"}
    assert list(offers["source"]) == sorted(offers["source"], key=["rule", "category_best_seller", "best_seller"].index)
    products = pq.read_table(result.run_dir / "products.parquet").to_pandas().set_index("product_id")
    fill = offers[offers["source"] == "category_best_seller"]
    assert (products.loc[fill["consequent"], "category"] == products.loc["22720", "category"]).all()
    assert fill["consequent"].tolist() == (
        products.loc[fill["consequent"]].sort_values("baskets", ascending=False, kind="stable").index.tolist()
    )


def test_a_segment_named_like_the_global_one_is_not_mined_apart() -> None:
    orders = [(f"c{i}", ["A", "B"], "2024-01-01", "*" if i % 2 else "B2B") for i in range(40)]
    baskets = baskets_from_lines(_lines(orders))
    config = _config(**{"segment.column": "Country", "segment.min_baskets": 10})
    engine = LocalEngine(config, baskets.items, None, None)
    found = segments_to_mine(engine.segment_sizes(baskets), config)
    assert [(name, engine.segment(baskets, name).count if name != "*" else baskets.count) for name in found] == [
        ("*", 40),
        ("B2B", 20),
    ]


def test_the_follow_up_e_mail_puts_the_customers_own_products_first(export: Export, tmp_path: Path) -> None:
    result = run(export_config(export, tmp_path / "out"))
    own = pd.read_parquet(result.run_dir / "buy_again.parquet")
    assert len(own) == result.counts.buy_again > 0
    assert own.groupby("customer_id")["rank"].max().le(3).all()  # output.top_k per customer
    # The cart block's history is the same list, deeper (model.history_products): the e-mail's is its top.
    history = pd.read_parquet(result.run_dir / "history.parquet")
    columns = ["customer_id", "product_id", "orders", "rank"]
    assert history.groupby("customer_id")["rank"].max().gt(3).any()
    pd.testing.assert_frame_equal(history.loc[history["rank"] <= 3, columns].reset_index(drop=True), own[columns])
    customer = own["customer_id"].iloc[0]
    listed = own.loc[own["customer_id"] == customer].sort_values("rank")["product_id"].tolist()
    mail = offers_after_purchase(result.output_dir, "00123", customer, limit=10)
    assert mail["consequent"].tolist()[: len(listed)] == listed
    assert set(mail["source"].iloc[: len(listed)]) == {"buy_again"} and mail["consequent"].is_unique
    anonymous = offers_after_purchase(result.output_dir, "00123", None, limit=10)
    assert set(anonymous["source"]) <= {"rule"}
    stranger = offers_after_purchase(result.output_dir, "00123", "no such customer", limit=10)
    assert stranger["consequent"].tolist() == anonymous["consequent"].tolist()


def test_buy_again_lists_customers_in_the_text_order_of_their_ids_whatever_the_export_stores() -> None:
    # Customer ids stored as numbers (9, 10, missing) are listed as the table is sorted, and as the Spark
    # engine lists them: by their text, "10" before "9"; a basket without a customer has no list.
    orders = [(9, ["A", "B"], "2024-01-01", "*"), (10, ["B"], "2024-01-02", "*"), (None, ["A"], "2024-01-03", "*")]
    lines = _lines(orders).astype({"customer_id": "Int64"})
    baskets = baskets_from_lines(lines)
    table = LocalEngine(_config(), baskets.items, None, None).customer_lists(baskets, "r", 3, 0)[0].to_pandas()
    assert table[["customer_id", "product_id", "rank"]].values.tolist() == [
        ["10", "B", 1],
        ["9", "A", 1],
        ["9", "B", 2],
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    orders=st.lists(
        st.tuples(
            st.sampled_from(["k1", "k2", "k3", "k10", None]),
            st.lists(st.sampled_from("ABCDEF"), min_size=1, max_size=4, unique=True),
            st.sampled_from(["2024-01-01", "2024-01-02", "2024-01-03"]),
        ),
        min_size=1,
        max_size=25,
    ),
    block=st.sampled_from([1, 3, 1 << 22]),
    key_bits=st.sampled_from([0, 63]),
)
def test_buy_again_lists_rank_each_customers_products_as_a_brute_force_count_does(
    orders: list[tuple[str | None, list[str], str]], block: int, key_bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the block size (a block holds whole customers) and whether the ranking's keys fit one integer
    # (0 bits: never), each customer's products come by the number of their orders that held it, then the
    # latest purchase, then the product id.
    monkeypatch.setattr(buy_again, "BLOCK_ENTRIES", block)
    monkeypatch.setattr("pipeline.arrays.KEY_BITS", key_bits)
    baskets = baskets_from_lines(_lines([(c, products, day, "*") for c, products, day in orders]))
    table = LocalEngine(_config(), baskets.items, None, None).customer_lists(baskets, "r", 2, 0)[0].to_pandas()
    bought = pd.DataFrame(
        [(c, p, pd.Timestamp(day)) for c, products, day in orders if c is not None for p in products],
        columns=["customer_id", "product_id", "day"],
    )
    expected = (
        bought.groupby(["customer_id", "product_id"])
        .agg(orders=("day", "size"), last=("day", "max"))
        .reset_index()
        .sort_values(["customer_id", "orders", "last", "product_id"], ascending=[True, False, False, True])
    )
    expected["rank"] = expected.groupby("customer_id").cumcount() + 1
    expected = expected[expected["rank"] <= 2]
    columns = ["customer_id", "product_id", "orders", "rank"]
    assert table[columns].values.tolist() == expected[columns].values.tolist()
    assert table["last_bought"].tolist() == expected["last"].tolist()


@pytest.mark.parametrize(
    "a, c, alike",
    [
        (("22386", "JUMBO BAG PINK POLKADOT", None), ("85099B", "JUMBO BAG RED RETROSPOT", None), True),
        (("23333", "IVORY WICKER HEART MEDIUM", None), ("23332", "IVORY WICKER HEART LARGE", None), True),  # a size up
        (("M1", "MUG", "mugs"), ("M9", "BEAKER", "mugs"), True),  # one declared variant group
        (("22139", "RETROSPOT TEA SET CERAMIC 11 PC", None), ("23534", "WALL ART STOP FOR TEA", None), False),
        (("84378", "SET OF 3 HEART COOKIE CUTTERS", None), ("23321", "SMALL WHITE HEART OF WICKER", None), False),
        (("X1", None, None), ("X2", None, None), False),  # nothing known: no evidence
    ],
)
def test_an_upsell_must_be_the_same_type_of_product(
    a: tuple[str, str | None, str | None], c: tuple[str, str | None, str | None], alike: bool
) -> None:
    found = same_type(*(np.array([v], dtype=object) for v in (*a, *c)))
    assert found.tolist() == [alike]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    orders=st.lists(
        st.tuples(st.sampled_from("xyz"), st.sets(st.sampled_from("ABCDEF"), min_size=1), st.integers(0, 90)),
        min_size=2,
        max_size=30,
    ),
    block=st.integers(1, 4),
)
def test_post_purchase_pair_counts_are_a_brute_force_count_of_consecutive_orders(
    orders: list[tuple[str, set[str], int]], block: int
) -> None:
    # The product is counted a block of antecedents at a time, two blocks at once on threads.
    dated = [(c, sorted(p), str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=d)), "s") for c, p, d in orders]
    baskets = baskets_from_lines(_lines(dated))
    config = _config(**{"mine.min_count": 2, "post_purchase.min_confidence": 0.0, "rules.min_lift": 0.0})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pipeline.local.itemsets.PAIR_BLOCK", block)
        found = post_purchase_rules(baskets, config)
    expected: dict[tuple[str, str], int] = {}
    for customer in "xyz":
        mine = sorted((day, n) for n, (c, _, day) in enumerate(orders) if c == customer)
        for (day, n), (later, m) in pairwise(mine):
            if later - day <= 30:
                for a in orders[n][1]:
                    for c in orders[m][1] - {a}:
                        expected[a, c] = expected.get((a, c), 0) + 1
    expected = {pair: count for pair, count in expected.items() if count >= 2}
    items = baskets.items
    got = (
        {}
        if found is None
        else {(items[r.antecedent], items[r.consequent]): r.pair_count for r in found.rules.itertuples()}
    )
    assert got == expected
