"""Baskets in, frequent itemsets out: every product set bought together often enough.

Three methods (``mine.engine``) behind one contract, returning identical
itemsets (the test suite checks):

- ``fim``: Christian Borgelt's C implementations of FP-Growth and Apriori
  (the ``pyfim`` package, MIT licence), 20-50x faster than mlxtend.
- ``count``: pairs and triples counted directly
  (:mod:`pipeline.local.counting`), for ``mine.max_len`` of 2 or 3.
- ``mlxtend``: the reference engine users know, fed a sparse encoding.

``auto`` (the default) counts when ``mine.max_len`` is at most 3 and counting
is estimated cheaper on these baskets (many short baskets: a web shop's
orders), else runs ``fim``; the method and the estimates are logged and stated
in the manifest (``counts.mining``).

``mine.algorithm`` picks FP-Growth or Apriori for ``fim`` and ``mlxtend``. Products below
the threshold are removed before encoding, so neither engine sees them. The
threshold is a whole number of baskets: ``mine.min_count`` when given, else
``ceil(mine.min_support x baskets)``.

Before mining, the number of itemsets is counted without materialising them
(pyfim's pattern spectrum); a run whose itemsets would exceed
``mine.max_itemsets`` stops with a message instead of exhausting memory.

Itemsets are held as a padded integer matrix (one row per itemset, product
codes ascending, ``-1`` after the last), not as Python tuples, so millions of
them cost tens of megabytes.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import TypeVar

import fim
import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline.config import MineConfig
from pipeline.errors import ConfigError
from pipeline.local.baskets import Baskets
from pipeline.local.counting import MAX_TABLE, TableTooLarge, count_short_itemsets, counting_cost
from pipeline.local.threads import THREADS, on_threads
from pipeline.policy.guards import check_itemsets

with warnings.catch_warnings():
    # mlxtend sets warnings.simplefilter("always", DeprecationWarning) for the
    # whole process when imported; catch_warnings restores the filters after.
    from mlxtend.frequent_patterns import apriori, fpgrowth

log = logging.getLogger(__name__)

_MLXTEND = {"fpgrowth": fpgrowth, "apriori": apriori}
#: Above this many bytes of candidate arrays, mlxtend's apriori runs in its low-memory mode.
MLXTEND_DENSE_BYTES = 1 << 30
_FIM = {"fpgrowth": fim.fpgrowth, "apriori": fim.apriori}
#: pyfim's "no limit" for zmax.
_NO_LIMIT = 1 << 16
#: The itemset guard first counts on a sample of about this many baskets ...
GUARD_SAMPLE = 5_000
#: ... and counts exactly only when the estimate is within this factor of the limit.
GUARD_MARGIN = 4
PAD = -1


@dataclass(frozen=True)
class Itemsets:
    """Frequent itemsets as padded rows of product codes, with their basket counts.

    ``codes[i, :length[i]]`` are the products of itemset ``i`` in ascending
    code order (so ascending product id), ``PAD`` after. Rows are ordered by
    length, then codes: the same order whichever engine found them.
    """

    codes: np.ndarray
    length: np.ndarray
    count: np.ndarray
    baskets: int
    min_count: int
    #: How they were found (``count``, ``fim fpgrowth``, ...) and why that way: the manifest's ``counts.mining``.
    method: str = "count"
    why: str = ""

    def __len__(self) -> int:
        return int(self.length.size)

    def rows(self) -> list[tuple[int, ...]]:
        """Each itemset as a tuple of codes (for tests and small outputs)."""
        return [tuple(int(c) for c in row[:n]) for row, n in zip(self.codes, self.length, strict=True)]


def min_count_for(config: MineConfig, baskets: int) -> int:
    """The support threshold as a number of baskets (at least 1)."""
    if config.min_count is not None:
        return config.min_count
    # The epsilon keeps 0.01 x 100 (= 1.0000000000000002 in floating point) at 1.
    return max(1, math.ceil(config.min_support * baskets - 1e-9))


def frequent_itemsets(baskets: Baskets, config: MineConfig) -> Itemsets:
    """Every itemset of at most ``mine.max_len`` products in at least ``min_count`` baskets.

    Raises :class:`ConfigError` when there would be more than
    ``mine.max_itemsets`` of them.
    """
    min_count = min_count_for(config, baskets.count)
    counts = baskets.item_counts()
    frequent = np.flatnonzero(counts >= min_count)
    if baskets.count == 0 or frequent.size == 0:
        itemsets = _packed(*_no_itemsets(), baskets.count, min_count, "count", "no product is frequent")
    else:
        matrix = baskets.matrix[:, frequent].tocsr()
        counted, why = _method(matrix, config)
        if counted:
            itemsets = _counted(matrix, frequent, counts[frequent], baskets.count, min_count, config, why)
        else:
            itemsets = _grown(matrix, frequent, baskets.count, min_count, config, why)
    log.info(
        "itemsets: %d frequent itemsets (%s) by %s (%s) at min count %d of %d baskets",
        len(itemsets),
        ", ".join(f"{n} of length {k}" for k, n in sorted(pd.Series(itemsets.length).value_counts().items())) or "none",
        itemsets.method,
        itemsets.why,
        min_count,
        baskets.count,
    )
    return itemsets


def _method(matrix: sp.csr_matrix, config: MineConfig) -> tuple[bool, str]:
    """Whether to count (else to grow with :func:`_grown`), and why."""
    if config.engine != "auto":
        return config.engine == "count", f"mine.engine = {config.engine}"
    if config.max_len is None or config.max_len > 3:
        longest = "any length (mine.max_len = none)" if config.max_len is None else f"up to {config.max_len} products"
        return False, f"auto: itemsets of {longest} are grown, not counted"
    cost = counting_cost(matrix, config.max_len)
    if cost.pair_table > MAX_TABLE:
        return False, f"auto: {matrix.shape[1]:,} frequent products, too many to count their pairs in a table"
    return cost.cheaper, f"auto: counting about {cost.seconds:.2g} s against {cost.fim_seconds:.2g} s for fim"


def _counted(
    matrix: sp.csr_matrix,
    frequent: np.ndarray,
    counts: np.ndarray,
    baskets: int,
    min_count: int,
    config: MineConfig,
    why: str,
) -> Itemsets:
    """The itemsets of :func:`count_short_itemsets` (``counts``: the frequent products' basket counts),
    checked against the guard before they are built.

    With ``auto``, a count table past its bound falls back to pyfim.
    """

    def guard(by_length: dict[int, int]) -> None:
        check_itemsets(by_length, min_count, config, estimated=True)

    try:
        found = count_short_itemsets(matrix, min_count, config.max_len or 3, guard)
    except TableTooLarge as exc:
        if config.engine == "count":
            raise ConfigError(f"mine.engine = count: {exc}; raise mine.min_support or use auto or fim") from exc
        return _grown(matrix, frequent, baskets, min_count, config, f"auto: {exc}")
    blocks = [b for b in (np.arange(frequent.size)[:, None], found.pairs, found.triples) if len(b)]
    width = blocks[-1].shape[1]
    codes = np.concatenate(
        [np.pad(frequent[b], ((0, 0), (0, width - b.shape[1])), constant_values=PAD) for b in blocks]
    )
    length = np.repeat(np.arange(1, len(blocks) + 1, dtype=np.int32), [len(b) for b in blocks])
    count = np.concatenate([counts, found.pair_count, found.triple_count])
    return _packed(codes, length, count, baskets, min_count, "count", why)


def _grown(
    matrix: sp.csr_matrix, frequent: np.ndarray, baskets: int, min_count: int, config: MineConfig, why: str
) -> Itemsets:
    """The itemsets of pyfim or mlxtend (``mine.engine``; ``fim`` for ``auto``), after the explosion guard."""
    engine = "mlxtend" if config.engine == "mlxtend" else "fim"
    # One shared Python int per product instead of one per basket line:
    # at 30 million lines that is a gigabyte less.
    shared = np.array(range(matrix.shape[1]), dtype=object)
    flat, bounds = shared[matrix.indices].tolist(), matrix.indptr.tolist()
    transactions = [flat[a:b] for a, b in pairwise(bounds)]
    # pyfim omits itemsets made only of products that are in every
    # transaction; one empty transaction changes no count and avoids that.
    transactions.append([])
    del flat
    _check_explosion(transactions, min_count, config)
    items, counts = _mine(matrix, transactions, min_count, engine, config)
    return _itemsets(items, counts, frequent, baskets, min_count, f"{engine} {config.algorithm}", why)


def _check_explosion(transactions: list[list[int]], min_count: int, config: MineConfig) -> None:
    """Stop before mining when there would be more than ``mine.max_itemsets`` itemsets.

    Counting (pyfim's pattern spectrum: no itemset is built) costs about as
    much as mining, so first a systematic sample of about
    :data:`GUARD_SAMPLE` baskets is counted at the proportional threshold;
    only when that estimate comes within a factor :data:`GUARD_MARGIN` of the
    limit are all baskets counted, exactly, to decide.
    """
    if config.max_itemsets is None:
        return
    step = max(1, len(transactions) // GUARD_SAMPLE)
    if step > 1:
        sample = _spectrum(transactions[::step], max(1, min_count // step), config.max_len)
        if sum(sample.values()) * GUARD_MARGIN <= config.max_itemsets:
            return
    check_itemsets(_spectrum(transactions, min_count, config.max_len), min_count, config, estimated=True)


def _spectrum(transactions: list[list[int]], min_count: int, max_len: int | None) -> dict[int, int]:
    """Number of frequent itemsets per length, counted without building them."""
    spectrum = fim.fpgrowth(transactions, target="s", supp=-min_count, zmax=max_len or _NO_LIMIT, report="#")
    by_length: dict[int, int] = {}
    for (size, _support), n in spectrum.items():
        by_length[size] = by_length.get(size, 0) + int(n)
    return by_length


def _mine(
    matrix: object, transactions: list[list[int]], min_count: int, engine: str, config: MineConfig
) -> tuple[list[tuple[int, ...]], list[int]]:
    """Itemsets (column positions) and counts from pyfim or mlxtend (``engine``)."""
    if engine == "fim":
        found = _FIM[config.algorithm](
            transactions, target="s", supp=-min_count, zmax=config.max_len or _NO_LIMIT, report="a"
        )
        return [f[0] for f in found], [f[1] for f in found]
    encoded = pd.DataFrame.sparse.from_spmatrix(matrix, columns=range(matrix.shape[1]))  # type: ignore[attr-defined]
    baskets = matrix.shape[0]  # type: ignore[attr-defined]
    # Asking for (count - 1/2) / n makes "support >= threshold" mean "count >= min_count".
    threshold = (min_count - 0.5) / baskets
    options: dict[str, object] = {}
    if config.algorithm == "apriori":
        # mlxtend's apriori tests every candidate against every basket at once: a dense boolean array of
        # baskets x candidates (the pairs of frequent products at level 2). Past the bound it tests them
        # one at a time (low_memory): the same itemsets, slower, in bounded memory.
        frequent = int((np.asarray(matrix.sum(axis=0)).ravel() >= min_count).sum())  # type: ignore[attr-defined]
        dense = baskets * frequent * (frequent - 1) // 2 * 2
        if dense > MLXTEND_DENSE_BYTES:
            log.info("mlxtend apriori: about %.1f GB of candidate arrays; testing candidates one by one", dense / 1e9)
            options["low_memory"] = True
    found = _MLXTEND[config.algorithm](
        encoded, min_support=threshold, use_colnames=False, max_len=config.max_len, **options
    )
    counts = np.rint(found["support"].to_numpy(dtype="float64") * baskets).astype(np.int64)
    return [tuple(i) for i in found["itemsets"]], counts.tolist()


def _itemsets(
    items: list[tuple[int, ...]],
    counts: list[int],
    columns: np.ndarray,
    baskets: int,
    min_count: int,
    method: str,
    why: str,
) -> Itemsets:
    """Pack itemsets of column positions (as a growth engine returns them) into product codes, sorted."""
    n = len(items)
    length = np.fromiter(map(len, items), dtype=np.int32, count=n)
    width = int(length.max(initial=1))
    flat = columns[np.fromiter(chain.from_iterable(items), dtype=np.int64, count=int(length.sum()))]
    big = np.iinfo(np.int32).max
    codes = np.full((n, width), big, dtype=np.int64)
    starts = np.repeat(np.cumsum(length) - length, length)
    codes[np.repeat(np.arange(n), length), np.arange(flat.size) - starts] = flat
    codes.sort(axis=1)
    codes[codes == big] = PAD
    return _packed(codes, length, np.asarray(counts, dtype=np.int64), baskets, min_count, method, why)


def _no_itemsets() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes, lengths and counts of no itemset."""
    return np.empty((0, 1), np.int64), np.empty(0, np.int32), np.empty(0, np.int64)


def _packed(
    codes: np.ndarray, length: np.ndarray, count: np.ndarray, baskets: int, min_count: int, method: str, why: str
) -> Itemsets:
    """Itemsets of ascending product codes (``PAD`` after), in the published order: by length, then codes."""
    order = np.lexsort([*(codes[:, j] for j in reversed(range(codes.shape[1]))), length])
    return Itemsets(
        codes=codes[order].astype(np.int32),
        length=length[order].astype(np.int32),
        count=count[order].astype(np.int64),
        baskets=baskets,
        min_count=min_count,
        method=method,
        why=why,
    )


#: Products whose pair counts are computed at a time: memory follows the pairs kept and the blocks.
PAIR_BLOCK = 4_096

Block = TypeVar("Block")


def in_column_blocks(columns: int, work: Callable[[int, int], Block]) -> list[Block]:
    """``work(start, end)`` for each block of :data:`PAIR_BLOCK` of ``columns`` columns (at least one
    block per thread), in block order, on threads (:mod:`pipeline.local.threads`): a product of sparse
    co-occurrences bounded in memory by the blocks at hand, not by the whole result. On 3 M baskets
    the pairs took 7.3 s against 9.2 s on one thread (medians of 3, same pairs and Gram matrix)."""
    size = max(1, min(PAIR_BLOCK, -(-columns // THREADS)))
    return on_threads(lambda start: work(start, min(start + size, columns)), range(0, columns, size))


def row_block(matrix: sp.csr_matrix, start: int, end: int) -> sp.csr_matrix:
    """Rows ``start:end`` of ``matrix``, sharing its values and column indices (scipy's slicing copies them)."""
    first, stop = int(matrix.indptr[start]), int(matrix.indptr[end])
    return sp.csr_matrix(
        (matrix.data[first:stop], matrix.indices[first:stop], matrix.indptr[start : end + 1] - first),
        shape=(end - start, matrix.shape[1]),
        copy=False,
    )


def _column_block(matrix: sp.csc_matrix, start: int, end: int) -> sp.csc_matrix:
    """Columns ``start:end`` of ``matrix``, sharing its values and row indices."""
    first, stop = int(matrix.indptr[start]), int(matrix.indptr[end])
    return sp.csc_matrix(
        (matrix.data[first:stop], matrix.indices[first:stop], matrix.indptr[start : end + 1] - first),
        shape=(matrix.shape[0], end - start),
        copy=False,
    )


def pair_itemsets(
    baskets: Baskets, min_count: int, gram_of: np.ndarray | None = None
) -> tuple[Itemsets, np.ndarray | None]:
    """Every product and every pair of products in at least ``min_count`` baskets, counted exactly;
    with ``gram_of`` (product codes), their Gram matrix too (baskets holding both, rows and columns
    in ``gram_of``'s order, every count kept): the item model's, from the same product.

    The pairs are the entries of the sparse co-occurrence matrix ``X'X``
    (baskets ``X``, products as columns), computed a block of
    :data:`PAIR_BLOCK` products at a time: cheap at any support, so the
    product page is not bound by the support that longer itemsets need.
    Counting the model's Gram matrix separately cost as much again.
    """
    counts = baskets.item_counts()
    frequent = np.flatnonzero(counts >= min_count)
    gram_of = None if gram_of is None else np.asarray(gram_of, dtype=np.int64)
    # The columns counted: the frequent products and the model's (which may sell less often).
    columns = frequent if gram_of is None else np.union1d(frequent, gram_of)
    matrix = baskets.matrix[:, columns].astype(np.int32).tocsc()
    transposed = matrix.T.tocsr()
    # Each model product's position among the counted columns, and each column's row of the Gram matrix.
    gram_at = np.empty(0, dtype=np.int64) if gram_of is None else np.searchsorted(columns, gram_of)
    in_gram = np.full(columns.size, -1, dtype=np.int64)
    in_gram[gram_at] = np.arange(gram_at.size)
    gram = None if gram_of is None else np.zeros((gram_at.size, gram_at.size))

    def block_pairs(start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pairs (a, c), a < c, of ``c`` in columns ``start:end`` and their counts; the block's
        Gram entries written. Blocks write disjoint Gram cells (those of a pair whose later column
        is theirs), so they may run at once."""
        # X'X is symmetric: only the rows before the block's end, every (a, c) with a <= c (half the work).
        block = (row_block(transposed, 0, end) @ _column_block(matrix, start, end)).tocoo()
        a, c = block.row, block.col + start
        if gram is not None:
            # Each Gram entry once from its upper triangle, written to both halves.
            ga, gc = in_gram[a], in_gram[c]
            both = (ga >= 0) & (gc >= 0)
            gram[ga[both], gc[both]] = block.data[both]
            gram[gc[both], ga[both]] = block.data[both]
        # A pair counted min_count times holds two products counted as often: both frequent.
        keep = (a < c) & (block.data >= min_count)
        return a[keep], c[keep], block.data[keep].astype(np.int64)

    blocks = in_column_blocks(columns.size, block_pairs)
    none = np.empty(0, np.int64)
    a = columns[np.concatenate([none, *(block[0] for block in blocks)])]
    c = columns[np.concatenate([none, *(block[1] for block in blocks)])]
    pair_count = np.concatenate([none, *(block[2] for block in blocks)])
    singles = np.column_stack([frequent, np.full(frequent.size, PAD)])
    codes = np.concatenate([singles, np.column_stack([a, c])])
    length = np.concatenate([np.ones(frequent.size, np.int32), np.full(a.size, 2, np.int32)])
    count = np.concatenate([counts[frequent].astype(np.int64), pair_count])
    log.info("pairs: %d products and %d pairs in at least %d baskets", frequent.size, a.size, min_count)
    return _packed(codes, length, count, baskets.count, min_count, "sparse product", "every pair"), gram
