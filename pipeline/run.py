"""The nightly job: ``run(config)`` chains the stages and publishes the result.

Read it as the diagram of the pipeline::

    exports --ingest--> lines --clean--> clean lines + rejects --baskets--> baskets
      --itemsets--> frequent itemsets --rules--> rules --catalog, rank--> ranked rules
      --top-k--> recommendations --publish--> OUTPUT/runs/<run_id>, OUTPUT/latest
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.baskets import ItemsetLabels
from pipeline.config import Config
from pipeline.errors import QualityGateError
from pipeline.gates import covered_products, gate_failures, table_problems
from pipeline.ingest import InputFile
from pipeline.inputs import StageListener, StageTimer, prepare_inputs
from pipeline.itemsets import Itemsets
from pipeline.lock import run_lock
from pipeline.manifest import build_manifest, inputs_fingerprint
from pipeline.offers import segment_baskets, segment_offers
from pipeline.publish import (
    LATEST,
    TableWriter,
    new_run_id,
    prune_runs,
    publish,
    published_manifest,
    remove_partial_runs,
    write_run,
)
from pipeline.recommendations import GROUP
from pipeline.schema import BUNDLES, ITEMSETS, REJECTS, to_table

log = logging.getLogger(__name__)

#: How many missing catalog products the manifest lists by name.
MISSING_LISTED = 50


@dataclass(frozen=True)
class RunResult:
    """Where a published run went and what it counted."""

    run_id: str
    run_dir: Path
    output_dir: Path
    counts: dict[str, Any]
    timings: dict[str, float]
    manifest: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class RunTables:
    """What an engine produced, ready to be gated, written and published.

    ``tables`` maps each published table's name to an Arrow table or to a
    writer of it (the Spark engine's tables stay on the cluster); ``problems``
    are what the engine found wrong in them (:func:`pipeline.gates.table_problems`).
    """

    run_id: str
    as_of: datetime | None
    files: list[InputFile]
    counts: dict[str, Any]
    tables: dict[str, pa.Table | TableWriter]
    problems: list[str]


def run(config: Config, force: bool = False, listener: StageListener | None = None) -> RunResult:
    """Run every stage on ``config`` and publish the tables; return what was published.

    ``config.engine`` says where the stages run: in this process, or on Spark
    (:mod:`pipeline.spark`). Holds the output directory's lock for the whole run. Raises
    :class:`~pipeline.errors.InputDataError` for unusable input,
    :class:`~pipeline.errors.OutputError` when the output cannot be written,
    :class:`~pipeline.errors.RunLockedError` when another run holds the lock and
    :class:`~pipeline.errors.QualityGateError` when a gate fails (unless
    ``force``); in every case ``OUTPUT/latest`` still points at the previous run.
    ``listener`` is told of every stage as it starts and ends (a progress display).
    """
    output_dir = Path(config.output.dir)
    with run_lock(output_dir):
        remove_partial_runs(output_dir)
        started = datetime.now(UTC)
        stage = StageTimer(listener=listener)
        if config.engine == "spark":
            from pipeline.spark.run import spark_tables  # pyspark: only for runs that ask for it

            produced = spark_tables(config, started, stage)
        else:
            produced = _local_tables(config, started, stage)
        return _publish(config, output_dir, started, produced, stage, force)


def _local_tables(config: Config, started: datetime, stage: StageTimer) -> RunTables:
    """Every stage in this process: pandas, numpy and pyfim."""
    inputs = prepare_inputs(config, stage)
    cleaned, baskets = inputs.cleaned, inputs.baskets
    run_id = new_run_id(started, inputs_fingerprint(config, inputs.files))
    segments = [
        segment_offers(name, subset, inputs.catalog, config, run_id, stage)
        for name, subset in segment_baskets(baskets, config)
    ]
    overall = segments[0]
    missing = inputs.missing_from_catalog
    with stage("tables"):
        tables = {
            "recommendations": _sorted(pa.concat_tables(t for s in segments for t in s.recommendations)),
            "rules": _sorted(pa.concat_tables(t for s in segments for t in s.rules)),
            "itemsets": _itemsets_table(overall.itemsets, overall.labels),
            "bundles": pa.concat_tables(s.bundles if s.bundles is not None else BUNDLES.empty_table() for s in segments),
            "products": pa.concat_tables(s.products for s in segments if s.products is not None),
            "rejects": to_table(cleaned.rejects, REJECTS),
        }
        recommendations = tables["recommendations"]
        counts: dict[str, Any] = {
            "rows_in": cleaned.rows_in,
            "rejected": cleaned.counts,
            "rows_rejected": len(cleaned.rejects),
            "rows_clean": baskets.lines,
            "funnel": cleaned.funnel(),
            "basket_sizes": baskets.size_histogram(),
            "baskets": baskets.count,
            "products": len(baskets.items),
            "min_count": overall.itemsets.min_count,
            "itemsets": len(overall.itemsets),
            "rules_mined": overall.counts["rules_mined"],
            "rules_dropped": overall.dropped,
            "rules": tables["rules"].num_rows,
            "recommendations": recommendations.num_rows,
            "antecedents": len(pc.unique(recommendations["antecedent_key"])),
            "by_placement": _value_counts(recommendations, ["placement", "kind"]),
            "segments": {s.segment: s.baskets for s in segments},
            "bundles": tables["bundles"].num_rows,
            "catalog_products": None if inputs.catalog is None else len(inputs.catalog),
            "products_missing_from_catalog": len(missing),
            "products_missing_listed": missing[:MISSING_LISTED],
            "covered_products": covered_products(recommendations),
        }
    return RunTables(run_id, cleaned.as_of, inputs.files, counts, tables, table_problems(tables))


def _publish(
    config: Config, output_dir: Path, started: datetime, produced: RunTables, stage: StageTimer, force: bool
) -> RunResult:
    """Gate the run, write it to ``runs/<run_id>`` and, if it passed (or ``force``), switch ``latest`` to it."""
    counts, run_id = produced.counts, produced.run_id
    with stage("publish") as done:
        failures = gate_failures(config.gates, counts, produced.problems, published_manifest(output_dir))
        manifest = build_manifest(
            run_id=run_id,
            config=config,
            started=started,
            finished=datetime.now(UTC),
            as_of=produced.as_of,
            inputs=produced.files,
            counts=counts,
            timings=stage.timings,
            gates={"passed": not failures, "failures": failures, "forced": bool(failures and force)},
        )
        run_dir = write_run(output_dir, run_id, produced.tables, manifest)
        if failures and not force:
            for failure in failures:
                log.error("quality gate failed: %s", failure)
            raise QualityGateError(failures, str(run_dir))
        for failure in failures:
            log.warning("quality gate failed, publishing anyway (--force): %s", failure)
        publish(output_dir, run_dir)
        prune_runs(output_dir, config.output.keep_runs)
        done["recommendations"] = counts["recommendations"]
    log.info(
        "published run %s: %d recommendations for %d antecedents from %d baskets, %d rules%s -> %s",
        run_id,
        counts["recommendations"],
        counts["antecedents"],
        counts["baskets"],
        counts["rules"],
        " (FORCED past failed gates)" if failures else "",
        output_dir / LATEST,
    )
    return RunResult(run_id, run_dir, output_dir, counts, dict(stage.timings), manifest)


def _sorted(table: pa.Table) -> pa.Table:
    """Rows in the published order: by group (segment, placement, kind, antecedent), then rank."""
    return table.sort_by([(name, "ascending") for name in (*GROUP, "rank")])


def _value_counts(table: pa.Table, columns: list[str]) -> dict[str, int]:
    """Rows per combination of ``columns``, keyed ``a/b``."""
    grouped = table.group_by(columns).aggregate([([], "count_all")]).to_pylist()
    return {"/".join(str(row[c]) for c in columns): row["count_all"] for row in sorted(grouped, key=str)}


def _itemsets_table(itemsets: Itemsets, labels: ItemsetLabels) -> pa.Table:
    """The frequent itemsets in the published layout."""
    frame = pd.DataFrame(
        {
            "length": itemsets.length,
            "count": itemsets.count,
            "support": itemsets.count / max(itemsets.baskets, 1),
        }
    )
    return to_table(frame, ITEMSETS, {"itemset": labels.lists, "itemset_key": labels.keys})
