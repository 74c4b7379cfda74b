"""The nightly job: ``run(config)`` chains the stages and publishes the result.

Read it as the diagram of the pipeline::

    exports --ingest--> lines --clean--> clean lines + rejects --baskets--> baskets
      --itemsets--> frequent itemsets --rules--> rules --catalog, rank--> ranked rules
      --top-k--> recommendations --publish--> OUTPUT/runs/<run_id>, OUTPUT/latest

The first half (to the baskets) is the engine's (``engine = "local"`` or
``"spark"``); the chain from the baskets to the offers is
:func:`pipeline.flow.offers.offer_segments`, the same for both engines and for
``basket tune`` and ``basket evaluate``; gates and publishing are the same
code whichever engine ran.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.contract.counts import RunCounts
from pipeline.contract.files import LATEST, RUNS, check_latest
from pipeline.contract.manifest import Manifest, build_manifest, inputs_fingerprint
from pipeline.engine import Prepared, RunTables
from pipeline.errors import OutputError, QualityGateError
from pipeline.flow.gates import gate_failures
from pipeline.flow.inputs import prepare_inputs
from pipeline.flow.lock import run_lock
from pipeline.flow.offers import offer_segments
from pipeline.flow.publish import (
    new_run_id,
    prune_runs,
    publish,
    published_manifest,
    remove_partial_runs,
    write_run,
)
from pipeline.local.engine import LocalEngine, local_tables
from pipeline.stages import StageListener, StageTimer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """Where a published run went and what it counted."""

    run_id: str
    run_dir: Path
    output_dir: Path
    counts: RunCounts
    timings: dict[str, float]
    manifest: dict[str, Any] = field(repr=False)


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
        check_latest(output_dir)
        remove_partial_runs(output_dir)
        started = datetime.now(UTC)
        stage = StageTimer(listener=listener)
        produced = run_tables(config, started, stage)
        try:
            return _publish(config, output_dir, started, produced, stage, force)
        finally:
            produced.release()


def run_tables(config: Config, started: datetime, stage: StageTimer) -> RunTables:
    """Every table a run publishes, and its counts, from the engine ``config.engine`` names."""
    if config.engine == "spark":
        from pipeline.spark.engine import prepare_spark  # pyspark: only for runs that ask for it

        prepared = prepare_spark(config, stage)
    else:
        # The rejected lines wait for the publish beside the runs (same disk; a killed run's are
        # removed with its partial run).
        prepared = prepare_local(config, stage, Path(config.output.dir) / RUNS)
    run_id = new_run_id(started, inputs_fingerprint(config, prepared.files))
    segments = offer_segments(prepared.engine, prepared.baskets, config, run_id, stage)
    with stage("tables"):
        return prepared.tables(run_id, segments)


def prepare_local(config: Config, stage: StageTimer | None = None, rejects_dir: Path | None = None) -> Prepared:
    """The local engine with the exports read, cleaned and turned into baskets (:func:`prepare_inputs`)."""
    inputs = prepare_inputs(config, stage, rejects_dir)
    engine = LocalEngine(config, inputs.baskets.items, inputs.catalog, inputs.baskets.names)

    def tables(run_id: str, segments: list[Any]) -> RunTables:
        return local_tables(
            run_id,
            inputs.cleaned,
            inputs.baskets,
            inputs.files,
            inputs.catalog,
            inputs.missing_from_catalog,
            segments,
        )

    return Prepared(engine, inputs.baskets, inputs.files, tables)


def _publish(
    config: Config, output_dir: Path, started: datetime, produced: RunTables, stage: StageTimer, force: bool
) -> RunResult:
    """Gate the run, write it to ``runs/<run_id>`` and, if it passed (or ``force``), switch ``latest`` to it."""
    counts, run_id = produced.counts, produced.run_id
    with stage("publish") as done:
        failures = gate_failures(config, counts, produced.problems, _previous(output_dir))
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
        done["recommendations"] = counts.recommendations
    log.info(
        "published run %s: %d recommendations for %d antecedents from %d baskets, %d rules%s -> %s",
        run_id,
        counts.recommendations,
        counts.antecedents,
        counts.baskets,
        counts.rules,
        " (FORCED past failed gates)" if failures else "",
        output_dir / LATEST,
    )
    return RunResult(run_id, run_dir, output_dir, counts, dict(stage.timings), manifest)


def _previous(output_dir: Path) -> Manifest | None:
    """The published run the change gates compare with; None when there is none, or none this version reads."""
    try:
        return published_manifest(output_dir)
    except OutputError as exc:
        log.warning("the change gates are skipped: %s", exc)
        return None
