"""Independent blocks of array work run on two threads.

numpy's sorts, takes and reductions and scipy's sparse products release the
interpreter lock, so blocks of them overlap on two cores. Each block's memory
is held at once by every thread, so a stage that splits its work into blocks
to bound memory sizes them for :data:`THREADS` blocks at a time. Two: the
machines this runs on have two cores or more, and more threads would mean more
blocks held at once for a stage whose peak is bounded by its blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

#: Blocks worked on at once.
THREADS = 2

Item = TypeVar("Item")
Result = TypeVar("Result")


def on_threads(work: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """``work(item)`` for every item, :data:`THREADS` at a time, results in the items' order
    (the output does not depend on which thread finished first). ``work`` must not write what
    another item's work reads."""
    with ThreadPoolExecutor(THREADS) as threads:
        return list(threads.map(work, items))
