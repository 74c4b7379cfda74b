"""What a run did, as one JSON document beside its tables: ``manifest.json``.

The manifest answers, for the operator and for the next run: which inputs
(by content hash) and which config (in full, and hashed) produced this table,
how many rows each cleaning step removed and why, how many baskets, itemsets,
rules and offers each stage produced, how long each took, and with which
package versions.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from typing import Any

from pipeline.config import Config
from pipeline.ingest import InputFile
from pipeline.schema import SCHEMA_VERSION

_PACKAGES = ("basket-pipeline", "pandas", "numpy", "pyarrow", "scipy", "mlxtend", "pydantic", "click")


def inputs_fingerprint(config: Config, files: Sequence[InputFile]) -> str:
    """SHA-256 over the config and every input file's content hash."""
    digest = hashlib.sha256(config.fingerprint().encode())
    for file in files:
        digest.update(file.sha256.encode())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Installed versions of Python and the packages that shape the output."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(
    *,
    run_id: str,
    config: Config,
    started: datetime,
    finished: datetime,
    as_of: datetime | None,
    inputs: Sequence[InputFile],
    counts: Mapping[str, Any],
    timings: Mapping[str, float],
    gates: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict (see ``docs/output.md`` for every field)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "as_of": as_of.isoformat() if as_of else None,
        "config_sha256": config.fingerprint(),
        "config": config.model_dump(mode="json"),
        "inputs": [asdict(f) for f in inputs],
        "counts": dict(counts),
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "gates": dict(gates),
        "versions": package_versions(),
    }
