"""One run at a time per output directory: an exclusive lock on ``OUTPUT/.lock``.

The lock is a kernel ``flock`` on an open file, so it dies with its process:
a run killed with SIGKILL leaves no stale lock behind. The file holds the
holder's pid, host and start time, which a second run puts in its message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import OutputError, RunLockedError

LOCK_FILE = ".lock"


@contextmanager
def run_lock(output_dir: Path) -> Iterator[None]:
    """Hold the output directory's lock for the block; :class:`RunLockedError` if taken."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {output_dir}: {exc.strerror or exc}") from None
    path = output_dir / LOCK_FILE
    try:
        # Never through a link: a symlink planted at .lock must not make the run overwrite its target.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        reason = "it is a symbolic link; remove it" if path.is_symlink() else (exc.strerror or str(exc))
        raise OutputError(f"cannot open the lock {path}: {reason}") from None
    handle = os.fdopen(descriptor, "r+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "an unknown process"
            raise RunLockedError(
                f"another run is writing to {output_dir} ({_describe(holder)}); "
                "wait for it to finish, or use another --output"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_at": datetime.now(UTC).isoformat()})
        )
        handle.flush()
        yield
    finally:
        handle.close()


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on {info['host']}, started {info['started_at']}"
    except (ValueError, KeyError, TypeError):
        return holder
