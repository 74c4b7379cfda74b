"""The Spark engine gives the single-machine engine's answers: same tables, row for row, metrics to 1e-9.

Each comparison runs ``basket run`` twice on the same input and config, once
with ``engine = "local"`` and once with ``engine = "spark"`` (a local Spark
session), and compares every published table and the manifest's counts. The
local engine is itself checked against a brute-force count
(``tests/test_mining.py``); the Spark itemsets are also checked against it
directly here.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import ConfigError, InputDataError, load_config, run
from pipeline.contract.schema import TABLES
from pipeline.flow.publish import LATEST
from pipeline.flow.run import RunResult

import oracle
from conftest import DIRTY_REJECTS, SAMPLE_CONFIG, SHARED, WHOLESALE_PRODUCTS, Export, export_config, write_export

HAVE_SPARK = importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None
needs_spark = pytest.mark.skipif(not HAVE_SPARK, reason="pyspark or Java is not installed (pip install '.[spark]')")
#: A quiet session for tests: tiny inputs run faster interpreted than compiled, and in one shuffle
#: partition (each partition is a task in every stage; 104 s for this file against 150 s with 4).
#: The master is ``local-cluster``: the executor is a JVM of its own, as on a cluster, so every task,
#: closure and broadcast crosses a process boundary (193 s for this file here, against 196 s on
#: ``local[2]``; ``local-cluster[2,1,1024]``, two executors, passed too, in 252 s).
SPARK = {
    "engine": "spark",
    "spark.master": "local-cluster[1,2,1024]",
    "spark.conf": {"spark.ui.enabled": False, "spark.sql.codegen.wholeStage": False, "spark.sql.shuffle.partitions": 1},
}
#: Counts that differ by nature between two runs.
_RUN_SPECIFIC = {"timings_seconds", "run_id", "started_at", "finished_at", "versions", "config", "config_sha256"}


@dataclass(frozen=True)
class Both:
    """One job run once by each engine on the same input and config."""

    local: RunResult
    spark: RunResult


def run_both(config_for: Any, output: Path, **overrides: Any) -> Both:
    """The same job with each engine; ``config_for(output, **overrides)`` builds the config."""
    local = run(config_for(output / "local", **overrides))
    spark = run(config_for(output / "spark", **SPARK, **overrides))
    return Both(local, spark)


def assert_same_run(local: RunResult, spark: RunResult) -> None:
    """Every table equal (floats to 1e-9 relative), the same schema and metadata, the same counts."""
    for name, schema in TABLES.items():
        files = [pq.ParquetFile(r.run_dir / f"{name}.parquet") for r in (local, spark)]
        for file, result in zip(files, (local, spark), strict=True):
            assert file.schema_arrow.remove_metadata().equals(schema), name
            assert file.schema_arrow.metadata[b"run_id"] == result.run_id.encode()
        frames = [_comparable(f.read().to_pandas().drop(columns=["run_id"], errors="ignore")) for f in files]
        assert len(frames[0]) == len(frames[1]), f"{name}: {len(frames[0])} local rows, {len(frames[1])} spark rows"
        pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=False, rtol=1e-9, atol=1e-12, obj=name)
        if name != "rejects":
            assert files[0].metadata.num_row_groups == files[1].metadata.num_row_groups, name
    manifests = [json.loads((r.run_dir / "manifest.json").read_text()) for r in (local, spark)]
    # How the itemsets were found is the one count the engines differ in, by design.
    mining = [m["counts"].pop("mining") for m in manifests]
    assert mining[1]["method"] == "spark fpgrowth" and mining[0]["method"] in ("count", "fim fpgrowth")
    for key in manifests[0]:
        if key not in _RUN_SPECIFIC:
            assert manifests[0][key] == manifests[1][key], key
    assert manifests[1]["config"]["engine"] == "spark"


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """List cells as tuples, so that frames of lists compare."""
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: tuple(v) if isinstance(v, (list, np.ndarray)) else v)
    return frame


# Each fixture runs both engines once (module scope: one Spark session for the whole file);
# the tests below compare every table of that one run and check what each case is for.
#: The dirty export as CSV: Holm-corrected Fisher filter, itemsets of any length, products missing
#: from the catalog dropped; post-purchase, up-sell and bundles on (the sample config's defaults).
CSV_CASE = {"rules.max_p_value": 0.5, "rules.p_adjust": "holm", "mine.max_len": None, "catalog.missing": "drop"}
#: The dirty export as Parquet with a day-first timestamp format: Benjamini-Hochberg, ranked by lift,
#: an as-of date and window, a margin floor, segments mined apart and a wide up-sell band.
PARQUET_CASE = {
    "input.timestamp_format": "%d/%m/%Y %H:%M",
    "rules.max_p_value": 0.9,
    "rules.p_adjust": "bh",
    "rank.by": "lift",
    "rules.drop_redundant": False,
    "as_of": "2011-11-24",
    "clean.window_days": 14,
    "margin.min_margin": 0.7,
    "gates.enabled": False,
    "segment.column": "Country",
    "segment.min_baskets": 20,
    "segment.min_support": 0.1,
    "upsell.min_price_step": 0.0,
    "upsell.max_price_step": 2.0,
    "upsell.min_buyers": 2,
}


@pytest.fixture(scope="module")
def dirty_export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def csv_runs(dirty_export: Export, tmp_path_factory: pytest.TempPathFactory) -> Both:
    return run_both(lambda out, **o: export_config(dirty_export, out, **o), tmp_path_factory.mktemp("csv"), **CSV_CASE)


@pytest.fixture(scope="module")
def parquet_runs(dirty_export: Export, tmp_path_factory: pytest.TempPathFactory) -> Both:
    output = tmp_path_factory.mktemp("parquet")
    frame = pd.read_csv(dirty_export.path, dtype=str, keep_default_na=False)
    stamps = pd.to_datetime(frame["InvoiceDate"], errors="coerce")
    frame["InvoiceDate"] = stamps.dt.strftime("%d/%m/%Y %H:%M").fillna(frame["InvoiceDate"])
    # Numbers stored as numbers, as a Parquet export has them (unparseable ones become nulls): both engines
    # read them as typed, without a text round trip.
    frame["Quantity"] = pd.to_numeric(frame["Quantity"], errors="coerce").astype("Int64")
    frame["UnitPrice"] = pd.to_numeric(frame["UnitPrice"], errors="coerce").astype("Float64")
    path = output / "export.parquet"
    frame.to_parquet(path)
    # One product type for the whole catalog: the wide band then finds up-sells to compare.
    catalog = pd.read_csv(dirty_export.catalog, dtype=str)
    catalog["name"] = "SHOP ITEM " + catalog["product_id"]
    catalog.to_csv(output / "catalog.csv", index=False)
    files = {"input.paths": [str(path)], "catalog.path": str(output / "catalog.csv")}
    return run_both(lambda out, **o: export_config(dirty_export, out, **{**files, **o}), output, **PARQUET_CASE)


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> Both:
    # The sample config at confidence 0.3: 7,800 rules instead of 213,000 keep Spark's share of the suite
    # to a minute; every stage and the item model run the same at any confidence.
    values = {"rules.min_confidence": 0.3}
    return run_both(
        lambda out, **o: load_config(SAMPLE_CONFIG, values={"output.dir": str(out), **values, **o}),
        tmp_path_factory.mktemp("s"),
    )


@pytest.fixture(scope="module")
def groceries_runs(tmp_path_factory: pytest.TempPathFactory) -> Both:
    """arules' Groceries: one basket per line, no catalog, itemsets of any length."""
    if not (SHARED / "groceries.csv").exists():
        pytest.skip("../shared/datasets not present")
    # The same baskets with what splits lines differently between readers: a byte-order mark, CRLF and CR
    # line ends, and a U+2028 and a form feed inside items.
    output = tmp_path_factory.mktemp("groceries")
    lines = (SHARED / "groceries.csv").read_text().splitlines()
    lines[5] = lines[5].replace("whole milk", "whole\u2028milk")
    lines[3] = lines[3] + ",\x0c"
    # Quoted items (a delimiter and doubled quotes inside), an empty line and one of delimiters only.
    lines[7] = lines[7] + ',"cheese, low fat" ,"say ""hi"""'
    lines[10:10] = ["", " , ,"]
    assert "\u2028" in lines[5]
    text = "\ufeff" + "\r\n".join(lines[:100]) + "\r" + "\n".join(lines[100:]) + "\n"
    (output / "groceries.csv").write_text(text)

    def config(out: Path, **more: Any) -> Any:
        values = {
            "input.paths": [str(output / "groceries.csv")],
            "input.format": "baskets",
            "output.dir": str(out),
            "clean.max_basket_size": None,
            "mine.min_support": 0.003,
            "mine.max_len": None,
            "rules.min_confidence": 0.2,
            **more,
        }
        return load_config(values=values)

    return run_both(config, output)


@pytest.mark.slow
@pytest.mark.spark
@needs_spark
def test_same_tables_on_the_dirty_export(csv_runs: Both) -> None:
    assert_same_run(csv_runs.local, csv_runs.spark)
    counts = csv_runs.spark.counts
    assert counts.rows_rejected > 0 and counts.rules > 0 and "consequent_not_in_catalog" in counts.rules_dropped
    assert {"cart/cross_sell", "product/cross_sell", "post_purchase/cross_sell"} <= set(counts.by_placement)


@pytest.mark.slow
@pytest.mark.spark
@needs_spark
def test_spark_cleaning_rejects_each_dirty_line_for_its_reason(csv_runs: Both) -> None:
    rejects = pd.read_parquet(csv_runs.spark.run_dir / "rejects.parquet")
    assert len(rejects) == sum(DIRTY_REJECTS.values()) + WHOLESALE_PRODUCTS
    assert rejects["source_row"].is_monotonic_increasing
    assert (rejects["reason"] == "oversized_basket").sum() == WHOLESALE_PRODUCTS


@pytest.mark.slow
@pytest.mark.spark
@needs_spark
def test_spark_itemsets_are_a_brute_force_count_of_the_kept_lines(dirty_export: Export, csv_runs: Both) -> None:
    rejects = pd.read_parquet(csv_runs.spark.run_dir / "rejects.parquet")
    lines = pd.read_csv(dirty_export.path, dtype=str, keep_default_na=False).drop(index=rejects["source_row"] - 2)
    baskets = [set(g) for _, g in lines["StockCode"].str.strip().str.upper().groupby(lines["InvoiceNo"])]
    itemsets = pd.read_parquet(csv_runs.spark.run_dir / "itemsets.parquet")
    found = {tuple(row.itemset): row.count for row in itemsets.itertuples()}
    # mine.max_len is unlimited here: every size up to the largest basket.
    assert found == oracle.frequent(baskets, csv_runs.spark.counts.min_count, max(len(b) for b in baskets))
    assert max(len(k) for k in found) >= 3


@pytest.mark.slow
@pytest.mark.spark
@needs_spark
def test_same_tables_on_parquet_with_a_window_segments_and_bh(parquet_runs: Both) -> None:
    assert_same_run(parquet_runs.local, parquet_runs.spark)
    counts = parquet_runs.spark.counts
    assert len(counts.segments) > 1 and counts.rejected["outside_window"] > 0
    assert counts.by_placement.get("product/upsell", 0) > 0


@pytest.mark.slow
@pytest.mark.spark
@needs_spark
def test_same_tables_on_the_sample(sample_runs: Both) -> None:
    assert_same_run(sample_runs.local, sample_runs.spark)
    assert sample_runs.spark.counts.rules > 300 and sample_runs.spark.counts.recommendations > 300
    # The same includes the colour and size variants the engines move from product pages to cart rows.
    offers = pd.read_parquet(sample_runs.spark.run_dir / "recommendations.parquet")
    assert ((offers["placement"] == "cart") & (offers["antecedent_size"] == 1)).sum() > 10
    # And the offers the item model ranks first that the page, ordered by rank.page_by, does not show.
    rules = pd.read_parquet(
        sample_runs.spark.run_dir / "rules.parquet", columns=["placement", "antecedent_key", "consequent"]
    )
    singles = offers[(offers["placement"] == "cart") & (offers["antecedent_size"] == 1)]
    on_pages = rules[rules["placement"] == "product"]
    assert len(singles.merge(on_pages, on=["antecedent_key", "consequent"])) > 10


@pytest.mark.slow
@pytest.mark.spark
@needs_spark
def test_same_tables_on_groceries(groceries_runs: Both) -> None:
    assert_same_run(groceries_runs.local, groceries_runs.spark)
    assert groceries_runs.spark.counts.baskets == 9835 and groceries_runs.spark.counts.itemsets > 1000
    # The empty line and the line of delimiters: empty baskets, rejected and counted, not skipped.
    assert groceries_runs.spark.counts.rejected["missing_product_id"] == 2


@pytest.mark.slow
@pytest.mark.spark
@needs_spark
def test_a_failed_spark_run_leaves_latest_alone(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    good = run(export_config(export, output))
    broken = tmp_path / "broken.csv"
    broken.write_text(export.path.read_text().splitlines()[0] + "\n")  # header only
    with pytest.raises(InputDataError, match=r"broken.csv: no order lines \(only a header\?\)"):
        run(export_config(export, output, **SPARK, **{"input.paths": [str(broken)]}))
    bad_prices = tmp_path / "prices.csv"
    rows = export.path.read_text().splitlines()
    bad_prices.write_text("\n".join([rows[0], *(r.replace(",1.95,", ",1;95,") for r in rows[1:])]) + "\n")
    with pytest.raises(
        InputDataError, match=r"prices.csv: column 'unit_price' \(input.columns.unit_price\): .* first at rows \[\d+"
    ):
        run(export_config(export, output, **SPARK, **{"input.paths": [str(bad_prices)]}))
    assert (output / LATEST).resolve() == good.run_dir.resolve()


def test_the_spark_engine_without_pyspark_says_how_to_install_it(
    export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(
        ConfigError, match=r"needs pyspark, which is not installed: pip install 'basket-pipeline\[spark\]'"
    ):
        run(export_config(export, tmp_path / "out", engine="spark"))


def test_strptime_formats_become_java_patterns() -> None:
    from pipeline.spark.lines import java_datetime_pattern

    assert java_datetime_pattern("%d/%m/%Y %H:%M") == "dd/MM/yyyy HH:mm"
    assert java_datetime_pattern("%Y-%m-%dT%H:%M:%S.%f") == "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"
    with pytest.raises(ConfigError, match=r"input\.timestamp_format: '%j' has no equivalent"):
        java_datetime_pattern("%Y-%j")


@pytest.mark.parametrize(
    ("master", "cores"),
    [("local", 1), ("local[3]", 3), ("local-cluster[2,1,1024]", 2), ("local-cluster[ 2, 3, 2048 ]", 6), ("yarn", None)],
)
def test_masters_on_this_machine_get_partitions_for_its_cores(master: str, cores: int | None) -> None:
    """local and local-cluster masters get twice their cores as shuffle partitions (not Spark's 200):
    a cluster (None) keeps Spark's defaults."""
    from pipeline.spark.session import _local_cores

    assert _local_cores(master) == cores
