"""The ``[spark]`` config section in, a SparkSession out.

pyspark is imported here and only here first, so that a missing install gives
one clear message instead of an ImportError deep in a stage.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TYPE_CHECKING

from pipeline.config import SparkConfig
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

log = logging.getLogger(__name__)

#: Settings the pipeline relies on; ``spark.conf`` may override the tuning ones, not these.
_REQUIRED = {
    # Timestamps without a zone are read, compared and printed as UTC, as the local engine does.
    "spark.sql.session.timeZone": "UTC",
    # Bad numbers and dates become rejected lines (try_cast), never a failed job.
    "spark.sql.ansi.enabled": "false",
}
_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
}


def spark_session(config: SparkConfig) -> SparkSession:
    """The active session, or a new one for ``spark.master`` with ``spark.conf`` applied.

    Raises :class:`ConfigError` when pyspark is not installed or a required
    setting is overridden.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "engine = 'spark' needs pyspark, which is not installed: "
            "pip install 'basket-pipeline[spark]' (and Java 17 or 21 on the PATH), or set engine = 'local'"
        ) from None
    clash = sorted(key for key in config.conf if key in _REQUIRED and str(config.conf[key]) != _REQUIRED[key])
    if clash:
        raise ConfigError(
            f"spark.conf: {', '.join(clash)} must stay {[_REQUIRED[k] for k in clash]}: the engine relies on it"
        )
    builder = SparkSession.builder.appName(config.app_name)
    if config.master is not None:
        builder = builder.master(config.master)
    # Python workers run the interpreter named by PYSPARK_PYTHON when the context
    # starts (pyspark reads no setting for it): this one, which has the pipeline
    # and pyarrow, unless spark.conf names the executors' Python (docs/spark.md).
    os.environ["PYSPARK_PYTHON"] = str(config.conf.get("spark.pyspark.python", sys.executable))
    defaults = dict(_DEFAULTS)
    cores = _local_cores(config.master or "")
    if cores is not None:
        # One machine: a few shuffle partitions per core, not Spark's 200 (each costs a task
        # per stage, and tasks are the whole cost on small inputs), and no adaptive
        # re-planning, which runs every shuffle as a job of its own (1.7x the time of a
        # run on the test export) to tune partitions that are already few. A cluster keeps Spark's.
        defaults["spark.sql.shuffle.partitions"] = str(2 * cores)
        defaults["spark.sql.adaptive.enabled"] = "false"
    for key, value in {**defaults, **{k: _text(v) for k, v in config.conf.items()}, **_REQUIRED}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for key, value in _REQUIRED.items():
        # getOrCreate returns a running session as it is: the SQL settings are per session, set them.
        session.conf.set(key, value)
    session.sparkContext.setLogLevel("WARN")
    log.info("spark %s, master %s, app %s", session.version, session.sparkContext.master, config.app_name)
    return session


def aggregate_row(frame: DataFrame) -> Row:
    """The first row of ``frame``: of an aggregation, which always has one."""
    row = frame.first()
    if row is None:
        raise AssertionError("an aggregation over the whole frame returned no row")
    return row


def _text(value: str | int | float | bool) -> str:
    """TOML values as Spark expects them: ``true``, not ``True``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _local_cores(master: str) -> int | None:
    """The cores of a master on this machine: ``local``, ``local[n]``, ``local[*]``, or
    ``local-cluster[workers,cores,memory]`` (separate executor JVMs, as on a cluster: workers x cores);
    None for a cluster."""
    cluster = re.fullmatch(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*\d+\s*\]", master.strip())
    if cluster is not None:
        return max(1, int(cluster.group(1)) * int(cluster.group(2)))
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if found is None:
        return None
    count = found.group(1)
    return 1 if count is None else os.cpu_count() or 1 if count == "*" else max(1, int(count))
