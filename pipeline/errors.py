"""Named exceptions of the library and the process exit codes they map to.

The library raises these; only the CLI turns them into messages and exit codes,
so that Python callers get exceptions and cron gets documented numbers.
Every exit code the program can return is listed in :class:`ExitCode` and in
``docs/operations.md``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``basket`` command."""

    OK = 0
    #: Unexpected internal error (a bug): the traceback is logged.
    INTERNAL = 1
    #: Bad command line or configuration (unknown key, wrong type, impossible value).
    CONFIG = 2
    #: The input data cannot be used (missing file, missing column, unreadable file).
    INPUT = 3
    #: The output directory cannot be written or holds no published run.
    OUTPUT = 4
    #: Another run holds the output directory's lock.
    LOCKED = 5
    #: A quality gate failed: the run was written but not published.
    GATE = 6
    #: The run was published (``latest`` switched), but what came after the switch failed (the report,
    #: or an interrupt during retention): the new tables are live, the extra is missing.
    AFTER_PUBLISH = 7
    #: Stopped by Ctrl-C (SIGINT) before anything was published: ``latest`` is unchanged.
    INTERRUPTED = 130


#: Characters of foreign text (a header, a value, a library's message) an error message quotes at most.
QUOTED = 200


def quoted(text: object, limit: int = QUOTED) -> str:
    """Foreign text cut for an error message: a one-gigabyte line must not become a one-gigabyte message."""
    value = str(text)
    if len(value) <= limit:
        return value
    return f"{value[:limit]}... ({len(value) - limit:,} more characters)"


def quoted_names(names: list[str], most: int = 20) -> str:
    """A file's column names for an error message: at most ``most``, each cut."""
    shown = [quoted(n, 40) for n in names[:most]]
    more = f" and {len(names) - most:,} more" if len(names) > most else ""
    return f"{shown}{more}"


class PipelineError(Exception):
    """Base class of every error the pipeline reports to its user."""

    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(PipelineError):
    """The configuration or the command line is invalid; the message names the key."""

    exit_code = ExitCode.CONFIG


class InputDataError(PipelineError):
    """An input file cannot be used; the message names the file, column and rows."""

    exit_code = ExitCode.INPUT


class OutputError(PipelineError):
    """The output directory cannot be written, or holds no published run to read."""

    exit_code = ExitCode.OUTPUT


class RunLockedError(PipelineError):
    """Another run is writing to the same output directory; the message names it."""

    exit_code = ExitCode.LOCKED


class AfterPublishError(PipelineError):
    """The run was published, then a later step (the report, retention) failed; the message says both."""

    exit_code = ExitCode.AFTER_PUBLISH


class QualityGateError(PipelineError):
    """The run failed a quality gate; ``latest`` still points at the previous run."""

    exit_code = ExitCode.GATE

    def __init__(self, failures: list[str], run_dir: str) -> None:
        self.failures = failures
        self.run_dir = run_dir
        listed = "; ".join(failures)
        super().__init__(
            f"quality gate failed, run not published (kept for inspection in {run_dir}): {listed}. "
            "Fix the input or the gates.* settings, or publish anyway with --force"
        )
