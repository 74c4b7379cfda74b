"""Two revisions of the code measured on the same inputs: time, peak memory, and the same answer.

The shared method of ``ingest.py`` and ``evaluate.py``: a measurement is a
fresh process running ``script`` with one revision's package first on the path
(the working tree, or ``base`` checked out in a temporary git worktree),
alternating base and tree ``repeats`` times each, with Arrow's jemalloc pool
as the ``basket`` command sets it. ``script`` gets the input path and a config
file as arguments and prints one JSON line with ``seconds``, ``peak_mb`` and a
``hash`` of what it produced; the two revisions must produce the same hash, or
the benchmark stops, unless ``--answers-differ`` says the change means to alter
the answer (a scoring change): then time and memory alone are compared, both
hashes are written beside them, and a config file of the project runs as each
revision has it (a change of defaults is measured as each revision ships). Medians; ratios (working tree / base)
within the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from engines import ROOT, write_results

#: The columns of the results table that every revision comparison writes.
COLUMNS = [
    ("input", "input", ""),
    ("tree s", "tree_s", ".2f"),
    ("base s", "base_s", ".2f"),
    ("time ratio", "time_ratio", ".2f"),
    ("tree peak MB", "tree_peak_mb", ",.0f"),
    ("base peak MB", "base_peak_mb", ",.0f"),
    ("peak ratio", "peak_ratio", ".2f"),
]


#: The last lines of every measured script, which has set ``seconds`` and ``digest`` (a hashlib object).
REPORT = """
import json, resource
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "hash": digest.hexdigest()[:16]}))
"""


def arguments(description: str) -> argparse.ArgumentParser:
    """A comparison's command line: ``--base`` (the revision to compare the working tree with), ``--repeats``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--answers-differ",
        action="store_true",
        help="the working tree answers differently on purpose: compare time and memory only, report both hashes",
    )
    return parser


def measure(code_root: Path, script: str, path: Path, config: str) -> dict[str, float | str]:
    """One process of ``script`` with the package at ``code_root``."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), config],
        env=env,
        cwd=code_root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{code_root} on {path}: exit {done.returncode}: {done.stderr.strip()[-2000:]}")
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(
    base: str, script: str, inputs: list[tuple[str, Path, str]], repeats: int, answers_differ: bool = False
) -> list[dict[str, object]]:
    """One row per (name, path, config file) input: medians of both revisions and their ratios.

    Each revision must give one answer every time; the two must agree unless ``answers_differ``.
    """
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as work:
        checkout = Path(work) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(checkout), base], cwd=ROOT, check=True)
        try:
            for name, path, config in inputs:
                runs: dict[str, list[dict[str, float | str]]] = {"tree": [], "base": []}
                own = _at(checkout, config) if answers_differ else config
                for _ in range(repeats):
                    runs["base"].append(measure(checkout, script, path, own))
                    runs["tree"].append(measure(ROOT, script, path, config))
                hashes = {label: {str(r["hash"]) for r in found} for label, found in runs.items()}
                if any(len(found) != 1 for found in hashes.values()):
                    raise SystemExit(f"{name}: a revision answers differently from one run to the next: {hashes}")
                if hashes["tree"] != hashes["base"] and not answers_differ:
                    raise SystemExit(f"{name}: the two revisions produce different answers: {hashes}")
                row: dict[str, object] = {"input": name, "base": base}
                if answers_differ:
                    row.update({f"{label}_hash": found.pop() for label, found in hashes.items()})
                for label, found in runs.items():
                    row[f"{label}_s"] = statistics.median(float(r["seconds"]) for r in found)
                    row[f"{label}_peak_mb"] = statistics.median(float(r["peak_mb"]) for r in found)
                row["time_ratio"] = float(row["tree_s"]) / float(row["base_s"])  # type: ignore[arg-type]
                row["peak_ratio"] = float(row["tree_peak_mb"]) / float(row["base_peak_mb"])  # type: ignore[arg-type]
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=ROOT, check=False)
    return rows


def _at(checkout: Path, config: str) -> str:
    """``config`` as the revision at ``checkout`` has it when it is a file of the project, else as it is."""
    inside = Path(config).resolve().is_relative_to(ROOT)
    return str(checkout / Path(config).resolve().relative_to(ROOT)) if inside else config


def compared(
    name: str, script: str, inputs: list[tuple[str, Path, str]], args: argparse.Namespace, what: str, same: str
) -> list[dict[str, object]]:
    """:func:`compare` at ``args.base`` and ``args.repeats``, written as ``results/<name>``: the table titled
    ``what`` was measured and ``same``, what the equal hashes show (``results/<name>_answers_differ`` with
    ``args.answers_differ``, so a timing of a scoring change does not replace the like-for-like one)."""
    rows = compare(args.base, script, inputs, args.repeats, args.answers_differ)
    if args.answers_differ:
        name = f"{name}_answers_differ"
        same = "the answers differ on purpose (`--answers-differ`): time and memory only"
        columns = [*COLUMNS, ("tree hash", "tree_hash", ""), ("base hash", "base_hash", "")]
    else:
        same, columns = f"{same} (hash)", COLUMNS
    title = f"{what}, medians of {args.repeats} processes each; ratio = working tree / `{args.base}`; {same}."
    write_results(name, rows, title, columns)
    return rows
