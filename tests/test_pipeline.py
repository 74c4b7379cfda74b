"""The whole job on a dirty export: counts, contract, determinism, atomic publish."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import InputDataError, OutputError, offers_for_cart, offers_for_item, run
from pipeline.config import Config
from pipeline.contract.schema import SCHEMA_VERSION, TABLES
from pipeline.contract.vocabulary import GROUP
from pipeline.errors import QualityGateError
from pipeline.flow.publish import LATEST, PARTIAL_PREFIX, RUNS

from conftest import DIRTY_REJECTS, WHOLESALE_PRODUCTS, Export, export_config


def tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(run_dir / f"{name}.parquet") for name in TABLES}


def test_run_publishes_every_table_with_its_schema(config: Config, export: Export) -> None:
    result = run(config)
    latest = Path(config.output.dir) / LATEST
    assert latest.is_symlink() and latest.resolve() == result.run_dir.resolve()
    assert not Path(str(latest.readlink())).is_absolute()  # relative: the directory can move
    for name, schema in TABLES.items():
        file = pq.ParquetFile(result.run_dir / f"{name}.parquet")
        assert file.schema_arrow.remove_metadata().equals(schema), name
        metadata = file.schema_arrow.metadata
        assert metadata[b"schema_version"] == SCHEMA_VERSION.encode()
        assert metadata[b"run_id"] == result.run_id.encode()
    counts = result.counts
    assert counts.baskets == export.clean_orders
    dirty = sum(DIRTY_REJECTS.values()) + WHOLESALE_PRODUCTS
    assert counts.rows_rejected == dirty == len(tables(result.run_dir)["rejects"])
    assert counts.rows_clean + counts.rows_rejected == counts.rows_in == export.rows


def test_recommendations_honour_the_contract(config: Config) -> None:
    result = run(config)
    out = tables(result.run_dir)
    recs, rules = out["recommendations"], out["rules"]
    assert not recs.empty
    assert set(zip(recs["placement"], recs["kind"], strict=True)) <= {
        ("product", "cross_sell"),
        ("cart", "cross_sell"),
        ("post_purchase", "cross_sell"),
        ("product", "upsell"),
    }
    basket_rules = recs[recs["placement"].isin(["product", "cart"]) & (recs["kind"] == "cross_sell")]
    assert (basket_rules["lift"] > 1).all() and (basket_rules["confidence"] >= config.rules.min_confidence).all()
    assert basket_rules.loc[basket_rules["antecedent_size"] > 1, "placement"].eq("cart").all()
    # A one-product antecedent's cart rows: its colour or size variants, or its page's offers that rank.by
    # ranks among its first output.top_k and rank.page_by does not (ranked beyond it on the page).
    singles = basket_rules[(basket_rules["antecedent_size"] == 1) & (basket_rules["placement"] == "cart")]
    pages = rules[rules["placement"] == "product"].set_index(["antecedent_key", "consequent"])["rank"]
    on_page = pages.reindex(pd.MultiIndex.from_frame(singles[["antecedent_key", "consequent"]]))
    assert on_page.dropna().gt(config.output.top_k).all()
    later = recs[recs["placement"] == "post_purchase"]
    assert (later["lift"] > 1).all() and (later["confidence"] >= config.post_purchase.min_confidence).all()
    upsell = recs[recs["kind"] == "upsell"]
    assert upsell["lift"].isna().all()
    assert recs.groupby(list(GROUP))["rank"].max().le(config.output.top_k).all()
    assert (recs["segment"] == "*").all() and (recs["run_id"] == result.run_id).all()
    for row in recs.itertuples():
        assert list(row.antecedent) == sorted(row.antecedent)
        assert row.antecedent_key == "|".join(row.antecedent)
        assert row.consequent not in row.antecedent
    order = list(zip(*(recs[c] for c in GROUP), recs["rank"], strict=True))
    assert order == sorted(order)
    # Cross-sell recommendations = the top-k rows of rules, nothing else; up-sell rows are not rules.
    cross = recs[recs["kind"] == "cross_sell"].reset_index(drop=True)
    top = rules[rules["rank"] <= config.output.top_k].reset_index(drop=True)
    pd.testing.assert_frame_equal(cross.drop(columns=["run_id"]), top[recs.columns.drop("run_id")])
    # The planted associations are found: tea cup <-> saucer, the jumbo bags.
    pairs = set(zip(rules["antecedent_key"], rules["consequent"], strict=True))
    assert {("00123", "00124"), ("00124", "00123"), ("22386", "85099B")} <= pairs


def test_manifest_records_inputs_config_counts_and_versions(config: Config, export: Export) -> None:
    result = run(config)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == result.run_id and manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["config_sha256"] == config.fingerprint()
    assert manifest["config"]["mine"]["min_support"] == config.mine.min_support
    paths = [entry["path"] for entry in manifest["inputs"]]
    assert paths == [str(export.path), str(export.catalog)]
    assert all(len(entry["sha256"]) == 64 for entry in manifest["inputs"])
    assert sum(manifest["counts"]["rejected"].values()) == manifest["counts"]["rows_rejected"]
    assert {"ingest", "clean", "baskets", "itemsets", "rules", "rank"} <= set(manifest["timings_seconds"])
    assert manifest["versions"]["mlxtend"] and manifest["versions"]["pandas"].startswith("3.")
    assert manifest["as_of"].startswith("2011-11-28")


def test_same_input_and_config_give_the_same_tables(config: Config) -> None:
    first, second = run(config), run(config)
    assert first.run_id != second.run_id
    for name in TABLES:
        a = pd.read_parquet(first.run_dir / f"{name}.parquet").drop(columns="run_id", errors="ignore")
        b = pd.read_parquet(second.run_dir / f"{name}.parquet").drop(columns="run_id", errors="ignore")
        pd.testing.assert_frame_equal(a, b, obj=name)


def test_every_engine_and_algorithm_publishes_identical_tables(export: Export, tmp_path: Path) -> None:
    results = [
        run(
            export_config(
                export, tmp_path / f"{engine}-{algorithm}", **{"mine.engine": engine, "mine.algorithm": algorithm}
            )
        )
        for engine in ("fim", "mlxtend")
        for algorithm in ("fpgrowth", "apriori")
    ]
    for name in ("itemsets", "rules", "recommendations"):
        first = pd.read_parquet(results[0].run_dir / f"{name}.parquet").drop(columns="run_id", errors="ignore")
        for other in results[1:]:
            frame = pd.read_parquet(other.run_dir / f"{name}.parquet").drop(columns="run_id", errors="ignore")
            pd.testing.assert_frame_equal(first, frame, obj=name)


def test_a_night_without_rules_is_held_back_with_typed_empty_tables(export: Export, tmp_path: Path) -> None:
    config = export_config(export, tmp_path / "out", **{"mine.min_support": 0.9, "pairs.min_count": 10_000})
    with pytest.raises(QualityGateError, match=r"gates\.min_rules: 0 rules") as caught:
        run(config)
    run_dir = Path(caught.value.run_dir)
    rules = pq.read_table(run_dir / "rules.parquet")
    assert rules.num_rows == 0 and rules.schema.remove_metadata().equals(TABLES["rules"])
    recs = pq.read_table(run_dir / "recommendations.parquet")
    assert recs.schema.remove_metadata().equals(TABLES["recommendations"])
    assert set(recs["kind"].to_pylist()) <= {"upsell"}  # up-sell needs no rule
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["gates"] == {"passed": False, "failures": caught.value.failures, "forced": False}
    assert not (tmp_path / "out" / LATEST).exists()
    # --force publishes it anyway, and says so in the manifest.
    forced = run(config, force=True)
    assert forced.counts.rules == 0 and forced.manifest["gates"]["forced"] is True
    assert (tmp_path / "out" / LATEST).resolve() == forced.run_dir.resolve()


def test_a_failed_run_leaves_latest_on_the_previous_run(
    config: Config, export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = run(config)
    latest = Path(config.output.dir) / LATEST
    broken = tmp_path / "broken.csv"
    broken.write_text(export.path.read_text().splitlines()[0] + "\n")  # header only
    with pytest.raises(InputDataError, match=r"broken.csv: no order lines \(only a header\?\)"):
        run(export_config(export, Path(config.output.dir), **{"input.paths": [str(broken)]}))
    assert latest.resolve() == good.run_dir.resolve()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pipeline.flow.publish.parquet_writer", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        run(config)
    assert latest.resolve() == good.run_dir.resolve()
    runs = sorted(p.name for p in (Path(config.output.dir) / RUNS).iterdir())
    assert runs[0].startswith(PARTIAL_PREFIX) and good.run_dir.name in runs


def test_storefront_lookups_for_a_product_and_a_cart(config: Config) -> None:
    run(config)
    output = Path(config.output.dir)
    item = offers_for_item(output, " 22386 ")
    assert not item.empty and (item["antecedent_key"] == "22386").all()
    assert item["rank"].tolist() == sorted(item["rank"])
    cart = offers_for_cart(output, ["22386", "00123"])
    assert not cart.empty and len(cart) <= config.output.top_k
    assert not set(cart["consequent"]) & {"22386", "00123"}
    assert not cart["consequent"].duplicated().any()
    assert set(cart["antecedent_key"]) <= {"22386", "00123", "00123|22386"}
    assert offers_for_item(output, "NO-SUCH-PRODUCT").empty


def test_lookup_without_a_published_run(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="has no published run"):
        offers_for_item(tmp_path, "x")


def test_a_listener_hears_every_stage_start_and_end_with_its_counts(config: Config) -> None:
    heard: list[tuple[str, bool, str]] = []
    result = run(config, listener=lambda name, elapsed, detail: heard.append((name, elapsed is None, detail)))
    starts = [name for name, starting, _ in heard if starting]
    ends = {name: detail for name, starting, detail in heard if not starting}
    assert starts[:4] == ["ingest", "clean", "catalog", "baskets"] and starts[-1] == "publish"
    assert sorted(starts) == sorted(ends) == sorted(result.timings)
    assert ends["ingest"] == f"{result.counts.rows_in:,} rows"
    assert ends["baskets"] == f"{result.counts.baskets:,} baskets"
    assert ends["publish"] == f"{result.counts.recommendations:,} recommendations"
