"""The embedded sample (UCI Online Retail, Oct-Nov 2011): the job `make run` runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import load_config, run
from pipeline.flow.run import RunResult
from pipeline.policy.variants import variant_offers
from pipeline.read.lookup import offers_for_cart, published_variants

from conftest import SAMPLE_CONFIG


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    output = tmp_path_factory.mktemp("sample")
    return run(load_config(SAMPLE_CONFIG, values={"output.dir": str(output)}))


@pytest.mark.slow
def test_sample_yields_a_few_hundred_rules(sample_run: RunResult) -> None:
    counts = sample_run.counts
    assert 4000 < counts.baskets < 5000
    # Product-page rules from every pair in 3 baskets or more of 2 customers at confidence 0.05 (about
    # 75 per product), cart rules from the itemsets at 1% support.
    assert 300 <= counts.rules <= 100 * counts.products
    assert counts.recommendations >= 300
    # Real dirt of the export, each rejected for its reason.
    for reason in (
        "cancelled",
        "non_product",
        "nonpositive_quantity",
        "zero_price",
        "duplicate_line",
        "oversized_basket",
    ):
        assert counts.rejected[reason] > 0, reason
    assert counts.products_missing_from_catalog < 0.2 * counts.products


@pytest.mark.slow
def test_sample_rules_are_meaningful(sample_run: RunResult) -> None:
    recs = pd.read_parquet(Path(sample_run.run_dir) / "recommendations.parquet")
    # The alarm clocks of one range in two colours are bought together, but a colour variant is not a
    # complement: never offered on the other's page.
    pages = recs[(recs["placement"] == "product") & (recs["kind"] == "cross_sell")]
    clocks = pages[pages["antecedent_key"].isin(["22726", "22727", "22728"])]
    assert not clocks["consequent"].isin(["22726", "22727", "22728", "22729", "22730"]).any()
    # They are published for the cart block instead, as cart rows of the one clock (rank.cart_variants =
    # "not_first"). A product's other cart rows are its page's offers that the item model ranks among the
    # first and the page, ordered by rank.page_by, does not show: ranked there beyond output.top_k.
    alone = recs[(recs["placement"] == "cart") & (recs["antecedent_size"] == 1)]
    assert alone["antecedent_key"].isin(["22726", "22727", "22728"]).any() and len(alone) > 50
    known = published_variants(Path(sample_run.run_dir))
    variant = variant_offers(alone["antecedent_key"].to_numpy(), alone["consequent"].to_numpy(), known)
    ruled = pd.read_parquet(
        Path(sample_run.run_dir) / "rules.parquet", columns=["placement", "antecedent_key", "consequent", "rank"]
    )
    paged = ruled[ruled["placement"] == "product"].set_index(["antecedent_key", "consequent"])["rank"]
    page_rank = paged.reindex(pd.MultiIndex.from_frame(alone[["antecedent_key", "consequent"]])).to_numpy()
    assert variant.sum() > 50 and (~variant).sum() > 50
    assert (page_rank[~variant] > 3).all() and pd.isna(page_rank[variant]).all()
    # The teacup's page offers the cake stand it is served on; the teapot of its range is next in line. The
    # green and pink teacups of its range are colourways of it ("ROSES" is a colour word in the plural): they
    # are its cart rows, never on its page.
    teacup = pages[pages["antecedent_key"] == "22699"]
    assert (teacup["consequent"] == "22423").any() and not teacup["consequent"].isin(["22697", "22698"]).any()
    carts = recs.loc[(recs["antecedent_key"] == "22699") & (recs["placement"] == "cart"), "consequent"]
    assert {"22697", "22698"} <= set(carts)
    rules = pd.read_parquet(Path(sample_run.run_dir) / "rules.parquet", filters=[("antecedent_key", "=", "22699")])
    assert rules.loc[(rules["consequent"] == "23173") & (rules["placement"] == "product"), "rank"].item() <= 5
    cross = recs[recs["kind"] == "cross_sell"]
    assert (cross["lift"] > 1).all() and (recs["consequent_margin"].dropna() > 0).all()
    # Every cross-sell placement is served on the sample. Its two months hold no up-sell with evidence of
    # the same type of product (the category alone is not enough): none is offered rather than a wrong one.
    assert set(recs["placement"]) == {"product", "cart", "post_purchase"}
    assert set(recs["kind"]) <= {"cross_sell", "upsell"}
    assert recs["consequent"].isin(["POST", "DOT", "M", "BANK CHARGES"]).sum() == 0


@pytest.mark.slow
def test_a_cart_never_leads_with_a_variant_of_any_of_its_products(sample_run: RunResult) -> None:
    """22386's best offer is 85099B (JUMBO BAG RED RETROSPOT); with 85099B in the cart too, the other bags of
    its base code (85099F, 85099C: its cart rows) are variants of the cart: offered, but never first."""
    alone = offers_for_cart(sample_run.output_dir, ["22386"], limit=10)
    assert alone.loc[alone["source"] == "rule", "consequent"].iloc[0] == "85099B"
    both = offers_for_cart(sample_run.output_dir, ["22386", "85099B"], limit=10)
    assert len(both) == 10
    bags = both["consequent"].str.startswith("85099").to_numpy()
    assert not bags[0] and bags[1:].any()
