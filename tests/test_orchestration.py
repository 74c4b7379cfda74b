"""One chain for every command: ``tune`` and ``evaluate`` make the tables ``run`` publishes.

``basket run``, ``basket tune`` and ``basket evaluate`` all call
:func:`pipeline.flow.offers.offer_segments`; these tests hold them to it on
inputs where every placement, up-sell, bundles and segments are produced, so a
stage that one command skipped would show as a difference.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Config, load_config
from pipeline.flow.evaluate import evaluate
from pipeline.flow.run import run
from pipeline.flow.tune import Sweep, tune

from conftest import SAMPLE_CONFIG, Export, export_config

#: Segments mined apart, every placement and up-sell on, on the dirty fixture export.
SEGMENTED = {
    "segment.column": "Country",
    "segment.min_baskets": 15,
    "upsell.min_price_step": 0.0,
    "upsell.max_price_step": 2.0,
    "upsell.min_buyers": 2,
    "gates.enabled": False,
}


def _published_counts(result: Any) -> dict[str, Any]:
    counts = result.counts
    return {
        "itemsets": counts.itemsets,
        "rules": counts.rules,
        "recommendations": counts.recommendations,
        "antecedents": counts.antecedents,
        **{f"offers {k}": v for k, v in counts.by_placement.items()},
        "covered_products": len(counts.covered_products),
    }


@pytest.mark.slow
@pytest.mark.parametrize("source", ["sample", "segmented export"])
def test_tune_at_the_configured_value_reports_what_run_publishes(source: str, export: Export, tmp_path: Path) -> None:
    if source == "sample":
        config = load_config(SAMPLE_CONFIG, values={"output.dir": str(tmp_path / "out")})
    else:
        config = export_config(export, tmp_path / "out", **SEGMENTED)
    table = tune(config, Sweep.parse(f"mine.min_support={config.mine.min_support}"))
    assert not (tmp_path / "out").exists()  # tune publishes nothing
    published = run(config)
    row = table.iloc[0]
    reported = {key: row[key] for key in _published_counts(published)}
    assert reported == _published_counts(published)
    assert len(published.counts.by_placement) >= 3  # product, cart and post-purchase offers were compared
    if source == "segmented export":
        assert len(published.counts.segments) > 1


def _split_export(export: Export, cutoff: str, directory: Path) -> Path:
    """The export's lines of the orders placed before ``cutoff`` (every line of an order shares its time)."""
    with export.path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    when = header.index("InvoiceDate")
    path = directory / "training.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        # Blank lines (the export ends with one) are no records.
        writer.writerows(r for r in body if r and r[when][:10] < cutoff and r[when][:4].isdigit())
    return path


def _without_run_id(table: pa.Table) -> pa.Table:
    table = table.replace_schema_metadata(None)
    return table.drop(["run_id"]) if "run_id" in table.column_names else table


@pytest.mark.slow
def test_evaluate_trains_the_tables_run_publishes_for_the_training_period(export: Export, tmp_path: Path) -> None:
    cutoff = "2011-11-16"
    config: Config = export_config(export, tmp_path / "out", **SEGMENTED, **{"evaluate.cutoff": cutoff})
    evaluation = evaluate(config)
    training = config.model_copy(
        update={"input": config.input.model_copy(update={"paths": (str(_split_export(export, cutoff, tmp_path)),)})}
    )
    published = run(training)
    assert evaluation.train_orders == published.counts.baskets
    assert len(published.counts.segments) > 1  # segments were trained too
    for name in ("recommendations", "rules", "bundles", "products", "buy_again", "neighbours"):
        expected = _without_run_id(pq.read_table(published.run_dir / f"{name}.parquet"))
        found = _without_run_id(evaluation.trained[name])
        assert found.num_rows == expected.num_rows > 0, name
        assert found.equals(expected), name


def test_tune_sweeps_the_item_model(export: Export, tmp_path: Path) -> None:
    config = export_config(export, tmp_path / "out", **{"model.l2": 10.0})
    table = tune(config, Sweep.parse("model.l2=0.5,10"))
    assert list(table["model.l2"]) == ["0.5", "10"] and (table["status"] == "ok").all()
    published = run(config)
    row = table.iloc[1]
    assert {key: row[key] for key in _published_counts(published)} == _published_counts(published)
