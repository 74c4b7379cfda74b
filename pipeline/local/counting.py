"""Short itemsets counted exactly: every frequent pair and triple, without an FP-tree.

For ``mine.max_len`` of 2 or 3 a frequent itemset is a pair or a triple, and
both can be counted directly: each basket's frequent products, taken in pairs
(and, after a frequent pair, with each later product), give one integer key
per combination, and numpy's ``bincount`` counts the keys in a dense table.
Baskets with the same number of frequent products are stacked as one matrix,
so each step is a vectorised operation over all of them: the work is one
numpy step per position (pairs) or per pair of positions (triples) of each
distinct basket size, plus one touch per key. Many short baskets (a grocery
or web shop's orders) make this cheaper than pyfim, which also needs every
basket as a Python list; a few hundred distinct basket sizes (wholesale
orders) make it dearer. :func:`counting_cost` estimates the work before
anything is counted, so that ``mine.engine = "auto"`` can choose
(:mod:`pipeline.local.itemsets`).

The triple table holds only candidates: for a product ``a`` with ``d``
frequent partners, the ``d(d-1)/2`` triples ``(a, b, c)`` whose pairs
``(a, b)`` and ``(a, c)`` are frequent, so its size is known, and bounded,
before the triples are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Keys counted at once: memory for keys is bounded by this, whatever the data.
KEY_CHUNK = 1 << 24
#: Largest count table (pairs: products squared; triples: candidates), in cells of 8 bytes.
MAX_TABLE = 1 << 25
#: Measured on this machine (``benchmarks/mining.py``): seconds per numpy step, per key counted, and
#: per basket entry for pyfim at ``max_len <= 3`` (building its Python lists included).
STEP_SECONDS = 10e-6
KEY_SECONDS = 20e-9
FIM_ENTRY_SECONDS = 0.58e-6


@dataclass(frozen=True)
class CountingCost:
    """The work of counting one input's pairs (and triples), known before counting."""

    #: Vectorised numpy steps: one per position (pairs) and pair of positions (triples) of each basket size.
    steps: int
    #: Keys to count: every pair of frequent products in a basket, and an upper bound for the triples.
    keys: int
    #: Cells of the pair table (frequent products squared).
    pair_table: int
    #: Entries of the matrix: what pyfim's work follows.
    entries: int

    @property
    def seconds(self) -> float:
        """Estimated seconds of counting."""
        return self.steps * STEP_SECONDS + self.keys * KEY_SECONDS

    @property
    def fim_seconds(self) -> float:
        """Estimated seconds of pyfim on the same baskets."""
        return self.entries * FIM_ENTRY_SECONDS

    @property
    def cheaper(self) -> bool:
        """Whether counting is estimated cheaper than pyfim, and its pair table fits :data:`MAX_TABLE`."""
        return self.pair_table <= MAX_TABLE and self.seconds < self.fim_seconds


@dataclass(frozen=True)
class Counted:
    """Frequent pairs and triples as column positions of the counted matrix, with their basket counts."""

    pairs: np.ndarray  # (n, 2) ascending positions
    pair_count: np.ndarray
    triples: np.ndarray  # (m, 3) ascending positions
    triple_count: np.ndarray


class TableTooLarge(Exception):
    """A count table would exceed :data:`MAX_TABLE` cells: counting is not the method for this input."""

    def __init__(self, what: str, cells: int) -> None:
        super().__init__(
            f"counting {what} needs a table of {cells:,} cells ({cells * 8 / 1e9:.1f} GB), more than {MAX_TABLE:,}"
        )
        self.cells = cells


def counting_cost(matrix: sp.csr_matrix, max_len: int) -> CountingCost:
    """The steps and keys of :func:`count_short_itemsets` on ``matrix`` (baskets x frequent products)."""
    sizes = np.diff(matrix.indptr).astype(np.int64)
    distinct = np.unique(sizes[sizes >= 2])
    steps = int((distinct - 1).sum())
    keys = int((sizes * (sizes - 1) // 2).sum())
    if max_len >= 3:
        steps += int(((distinct - 1) * (distinct - 2) // 2).sum())
        keys += int((sizes * (sizes - 1) * (sizes - 2) // 6).sum())
    return CountingCost(steps=steps, keys=keys, pair_table=matrix.shape[1] ** 2, entries=int(matrix.nnz))


def count_short_itemsets(
    matrix: sp.csr_matrix, min_count: int, max_len: int, check: Callable[[dict[int, int]], None] | None = None
) -> Counted:
    """Every pair (and, with ``max_len >= 3``, every triple) of columns set together in at least
    ``min_count`` rows of ``matrix`` (baskets x frequent products), counted exactly.

    Raises :class:`TableTooLarge` before allocating a table past :data:`MAX_TABLE`. ``check`` is
    given the number of frequent itemsets per length as soon as each length is counted, before
    the itemsets are built (the itemset guard raises there).
    """
    check = check or (lambda by_length: None)
    matrix = matrix.tocsr()
    matrix.sort_indices()
    width = matrix.shape[1]
    if width * width > MAX_TABLE:
        raise TableTooLarge(f"pairs of {width:,} products", width * width)
    pairs = _Tally(width * width)
    for items in _same_size_rows(matrix, least=2):
        for i in range(items.shape[1] - 1):
            pairs.add(items[:, i : i + 1] * width + items[:, i + 1 :])
    table = pairs.total().reshape(width, width)
    first, second = np.nonzero(table >= min_count)  # only a < c is ever counted
    check({1: width, 2: int(first.size)})
    pair_count = table[first, second]
    del table
    empty = np.empty((0, 3), np.int64)
    if max_len < 3 or first.size == 0:
        return Counted(np.column_stack([first, second]), pair_count, empty, np.empty(0, np.int64))
    triples, triple_count = _count_triples(matrix, first, second, min_count, check)
    return Counted(np.column_stack([first, second]), pair_count, triples, triple_count)


def _count_triples(
    matrix: sp.csr_matrix,
    first: np.ndarray,
    second: np.ndarray,
    min_count: int,
    check: Callable[[dict[int, int]], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Triples ``a < b < c`` whose three pairs are frequent, counted; the pairs ``(first, second)``
    are the frequent ones in ascending order."""
    width = matrix.shape[1]
    # Pair ids in (a, c) order: a's partners are the ids first_id[a] .. first_id[a] + degree[a] - 1.
    pair_id = np.full((width, width), -1, np.int32)
    pair_id[first, second] = np.arange(first.size, dtype=np.int32)
    degree = np.bincount(first, minlength=width)
    first_id = np.cumsum(degree) - degree
    # Row start of each pair (a, b): its candidates (a, b, c) are a's partners c after b.
    rank = np.arange(first.size) - first_id[first]
    after = degree[first] - rank - 1
    cells = int(after.sum())
    if cells > MAX_TABLE:
        raise TableTooLarge(f"{cells:,} candidate triples", cells)
    row_start = np.cumsum(after) - after
    # A product in fewer than two frequent pairs is in no frequent triple: its entries are not enumerated.
    paired = np.bincount(first, minlength=width) + np.bincount(second, minlength=width) >= 2
    triples = _Tally(cells)
    flat_id = pair_id.ravel()
    for items in _same_size_rows(_only_columns(matrix, paired), least=3):
        size = items.shape[1]
        for i in range(size - 2):
            a = items[:, i] * width
            for j in range(i + 1, size - 1):
                ab = flat_id.take(a + items[:, j])
                held = ab >= 0
                if not held.any():
                    continue
                ab = ab[held].astype(np.int64)
                ac = flat_id.take(a[held, None] + items[held, j + 1 :])
                triples.add((row_start[ab][:, None] - ab[:, None] - 1 + ac)[ac >= 0])
    counts = triples.total()
    cell = np.flatnonzero(counts >= min_count)
    check({1: width, 2: int(first.size), 3: int(cell.size)})
    # The owner of a cell is the last pair whose row starts at or before it (empty rows share starts).
    ab = np.searchsorted(row_start, cell, side="right") - 1
    ac = cell - row_start[ab] + ab + 1
    found = np.column_stack([first[ab], second[ab], second[ac]])
    return found, counts[cell]


def _only_columns(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """``matrix`` with the entries of the columns not in ``keep`` (a mask) removed; same shape, same order."""
    held = keep[matrix.indices]
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[held], minlength=matrix.shape[0]))])
    return sp.csr_matrix((matrix.data[held], matrix.indices[held], indptr), shape=matrix.shape)


def _same_size_rows(matrix: sp.csr_matrix, least: int) -> Iterator[np.ndarray]:
    """The rows with the same number of entries (at least ``least``), as one (rows x size) matrix of
    their column positions each, ascending within a row."""
    sizes = np.diff(matrix.indptr)
    order = np.argsort(sizes, kind="stable")
    ordered = sizes[order]
    for rows in np.split(order, np.flatnonzero(np.diff(ordered)) + 1):
        if rows.size == 0:
            continue
        size = int(sizes[rows[0]])
        if size >= least:
            yield matrix.indices[matrix.indptr[rows][:, None] + np.arange(size)].astype(np.int64)


class _Tally:
    """A dense count table filled with keys a chunk at a time (:data:`KEY_CHUNK` keys held at most)."""

    def __init__(self, cells: int) -> None:
        self._counts = np.zeros(cells, np.int64)
        self._held: list[np.ndarray] = []
        self._size = 0

    def add(self, keys: np.ndarray) -> None:
        self._held.append(keys.ravel())
        self._size += keys.size
        if self._size >= KEY_CHUNK:
            self._flush()

    def total(self) -> np.ndarray:
        self._flush()
        return self._counts

    def _flush(self) -> None:
        if self._held:
            self._counts += np.bincount(np.concatenate(self._held), minlength=self._counts.size)
            self._held, self._size = [], 0
