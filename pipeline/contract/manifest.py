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
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.config import Config
from pipeline.contract.counts import RunCounts
from pipeline.contract.schema import SCHEMA_VERSION
from pipeline.errors import OutputError

_PACKAGES = (
    "basket-pipeline",
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "mlxtend",
    "pyfim",
    "pyspark",
    "pydantic",
    "click",
)


@dataclass(frozen=True)
class InputFile:
    """One file that was read: what the manifest records to fingerprint a run."""

    path: str
    bytes: int
    sha256: str
    rows: int


class Manifest(BaseModel):
    """A published run's ``manifest.json``, validated: its config as a :class:`Config`, its counts typed.

    What the read side (lookups, ``basket explain``, ``basket report``) and
    the change gates read; other fields stay available as extras.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: str
    run_id: str
    as_of: str | None = None
    config: Config
    counts: RunCounts
    gates: dict[str, Any] = Field(default_factory=dict)


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path``; :class:`OutputError` naming the file when it is missing or not valid."""
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise OutputError(f"{path}: cannot read the run's manifest ({exc.strerror or exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OutputError(
            f"{path}: not a manifest this version reads ({where}: {first['msg']}); "
            "re-run 'basket run' to publish a run with this version"
        ) from None


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
    counts: RunCounts,
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
        "counts": counts.model_dump(mode="json"),
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "gates": dict(gates),
        "versions": package_versions(),
    }
