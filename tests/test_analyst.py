"""The analyst's commands: rules queries, explanations and threshold sweeps, on the fixture export
whose planted associations are known (tea cup 00123 + saucer 00124; jumbo bags 22386 + 85099B,
with 21931 in 60% of their baskets)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.flow.run import run
from pipeline.flow.tune import Sweep, tune
from pipeline.read.explain import explain
from pipeline.read.lookup import rules_table

from conftest import SAMPLE_CONFIG, Export, export_config


def test_rules_query_filters_and_sorts(config: object) -> None:
    result = run(config)  # type: ignore[arg-type]
    rules = rules_table(result.output_dir, item="22386", min_lift=1.5, sort="lift", limit=50)
    assert not rules.empty
    assert all("22386" in a or c == "22386" for a, c in zip(rules["antecedent"], rules["consequent"], strict=True))
    assert (rules["lift"] > 1.5).all() and rules["lift"].is_monotonic_decreasing
    assert len(rules_table(result.output_dir, limit=3)) == 3


def test_explain_names_the_filter_that_decided(export: Export, tmp_path: Path) -> None:
    # Confidence 0.85: saucer -> cup (always together) passes, cup -> saucer (80%) does not.
    result = run(export_config(export, tmp_path / "out", **{"rules.min_confidence": 0.85}))
    out = result.output_dir
    offered = explain(out, ["00124"], "00123")
    assert offered["verdict"].startswith("offered: rank 1 of the product offers")
    assert offered["rules"][0]["pair_count"] == offered["rules"][0]["antecedent_count"]
    low = explain(out, ["00123"], "00124")
    assert re.search(r"no basket rule: confidence 0\.(7|8)\d+, lift", low["verdict"]) and low["together"] > 0
    assert "confidence below rules.min_confidence 0.85" in low["verdict"]
    unknown = explain(out, ["00123"], "99999")
    assert unknown["verdict"].startswith("not offered: no basket rule: bought together in fewer than 3 baskets")
    assert "pairs.min_count" in unknown["verdict"] and unknown["together"] is None
    # A pair below the itemsets' threshold, whose rule a filter removed: its count comes from pairs.parquet.
    pairs = pq.read_table(result.run_dir / "pairs.parquet").to_pandas()
    rules = pq.read_table(result.run_dir / "rules.parquet", filters=[("placement", "=", "product")]).to_pandas()
    ruled = set(zip(rules["antecedent_key"], rules["consequent"], strict=True))
    rare = pairs[(pairs["count"] < result.counts.min_count) & (pairs["count"] >= 3)]
    a, b, count = next(
        (a, b, n)
        for a, b, n in zip(rare["product_a"], rare["product_b"], rare["count"], strict=True)
        if (a, b) not in ruled
    )
    below = explain(out, [a], b)
    assert below["together"] == count and "no basket rule: confidence" in below["verdict"]
    # A cart part of two products is judged on the itemsets alone.
    rare = explain(out, ["00123", "22720"], "99999")
    assert rare["verdict"].startswith("not offered: no basket rule: not frequent: bought together in fewer than")
    itself = explain(out, ["00123"], "00123")
    assert "never offered to itself" in itself["verdict"]


def test_explain_says_which_score_ordered_the_offer(export: Export, tmp_path: Path) -> None:
    """A product page's offer by rank.page_by, a cart's rule by rank.by; a run published before
    rank.page_by existed (its manifest has no such key) ordered its pages by rank.by."""
    config = export_config(export, tmp_path / "out").rank
    result = run(export_config(export, tmp_path / "out"))
    page = explain(result.output_dir, ["00124"], "00123")["rules"][0]
    assert page["ranked_by"].startswith("expected_margin: confidence x margin^") and "rank.page_by" in page["ranked_by"]
    cart = pq.read_table(result.run_dir / "rules.parquet", filters=[("placement", "=", "cart")]).to_pandas()
    row = cart[cart["antecedent_size"] == 2].iloc[0]
    judged = explain(result.output_dir, list(row["antecedent"]), row["consequent"])["rules"]
    assert next(r for r in judged if r["placement"] == "cart")["ranked_by"].startswith(
        "model_margin: item-model weight"
    )
    # A page's offer the item model ranks higher than the page does is also a cart row of its product.
    rules = pq.read_table(result.run_dir / "rules.parquet").to_pandas()
    singles = rules[(rules["placement"] == "cart") & (rules["antecedent_size"] == 1)]
    copy = singles.merge(rules[rules["placement"] == "product"], on=["antecedent_key", "consequent"]).iloc[0]
    told = explain(result.output_dir, [copy["antecedent_key"]], copy["consequent"])["verdict"]
    assert "of the cart offers, a candidate for a cart holding the antecedent" in told
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert f"x margin^{config.page_power:g} " in page["ranked_by"] and config.page_power != config.margin_power
    del manifest["config"]["rank"]["page_margin_power"]
    (result.run_dir / "manifest.json").write_text(json.dumps(manifest))
    unweighed = explain(result.output_dir, ["00124"], "00123")["rules"][0]
    assert f"x margin^{config.margin_power:g} " in unweighed["ranked_by"]  # a run before the page's own weight
    del manifest["config"]["rank"]["page_by"]
    (result.run_dir / "manifest.json").write_text(json.dumps(manifest))
    before = explain(result.output_dir, ["00124"], "00123")["rules"][0]
    assert before["ranked_by"].startswith("model_margin: item-model weight")


def test_explain_finds_a_redundant_cart_rule(config: object) -> None:
    # 22386 and 85099B are always bought together, so {22386, 85099B} -> 21931 predicts
    # exactly as well as 22386 -> 21931: redundant.
    result = run(config)  # type: ignore[arg-type]
    facts = explain(result.output_dir, ["85099B", "22386"], "21931")
    assert "no basket rule" in facts["verdict"] and "redundant, 22386 -> 21931" in facts["verdict"]
    assert facts["antecedent"] == ["22386", "85099B"] and facts["rules"] == []


def test_tune_counts_each_candidate_on_the_same_baskets(export: Export, tmp_path: Path) -> None:
    config = export_config(export, tmp_path / "out")
    table = tune(config, Sweep.parse("mine.min_support=0.2,0.1,0.05"))
    assert table["status"].tolist() == ["ok"] * 3
    assert table["itemsets"].is_monotonic_increasing and table["rules"].is_monotonic_increasing
    assert not (tmp_path / "out").exists()  # nothing published
    # The same candidate as a real run gives the same counts.
    real = run(export_config(export, tmp_path / "out", **{"mine.min_support": 0.05}))
    assert table.iloc[2]["itemsets"] == real.counts.itemsets
    guarded = tune(config, Sweep.parse("mine.max_itemsets=1,none"))
    assert guarded.iloc[0]["status"].startswith("stopped: mine.max_itemsets") and guarded.iloc[1]["status"] == "ok"


@pytest.mark.parametrize(
    "text, message",
    [
        ("clean.max_basket_size=5", "only mine.*"),
        ("mine.min_support", "expected key=value"),
        ("mine.min_suport=0.1", "no such key .did you mean 'mine.min_support'"),
        ("mnie.min_support=0.1", "did you mean 'mine'"),
        ("mine.min_support=2", "less than or equal to 1"),
    ],
)
def test_sweeps_that_cannot_work_are_config_errors(text: str, message: str, config: object) -> None:
    with pytest.raises(ConfigError, match=message):
        tune(config, Sweep.parse(text))  # type: ignore[arg-type]


def test_the_commands_print_tables_and_json(export: Export, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    common = [
        "-c",
        str(SAMPLE_CONFIG),
        "-i",
        str(export.path),
        "--catalog",
        str(export.catalog),
        "--set",
        "clean.max_basket_size=20",
        "--set",
        "mine.min_support=0.05",
    ]
    assert runner.invoke(main, ["-q", "run", *common, "-o", str(out)]).exit_code == 0
    listed = runner.invoke(main, ["rules", "-o", str(out), "--item", "00123", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output)
    told = runner.invoke(main, ["explain", "-o", str(out), "00124", "00123"])
    assert told.exit_code == 0 and "offered" in told.output and "passed:" in told.output
    swept = runner.invoke(main, ["-q", "tune", *common, "--sweep", "mine.min_support=0.1,0.05", "--json"])
    assert swept.exit_code == 0 and [r["status"] for r in json.loads(swept.output)] == ["ok", "ok"]
    wrong = runner.invoke(main, ["-q", "tune", *common, "--sweep", "clean.drop_duplicates=false"])
    assert wrong.exit_code == 2 and "only mine.*" in wrong.output
