"""The product page's pairs: an exact count at any support, and a floor of distinct customers."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from test_mining import baskets_of, mined

from pipeline.contract.schema import TEXT
from pipeline.flow.run import run
from pipeline.local import itemsets as itemsets_module
from pipeline.local.baskets import baskets_from_lines, pair_customers, shared_rows
from pipeline.local.itemsets import pair_itemsets

import oracle
from conftest import Export, export_config

products = st.sampled_from(list("abcdefgh"))


@settings(max_examples=60, deadline=None)
@given(groups=st.lists(st.sets(products, min_size=1, max_size=6), min_size=1, max_size=40), min_count=st.integers(1, 4))
def test_pairs_are_a_brute_force_count(groups: list[set[str]], min_count: int) -> None:
    baskets = baskets_of(groups)
    assert mined(baskets, pair_itemsets(baskets, min_count)[0]) == oracle.frequent(groups, min_count, 2)


def test_pairs_are_counted_block_by_block_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    groups = [{"a", "b", "c"}, {"a", "c"}, {"b", "c", "d"}, {"a", "b", "d"}, {"c", "d"}] * 3
    baskets = baskets_of(groups)
    whole = mined(baskets, pair_itemsets(baskets, 2)[0])
    monkeypatch.setattr(itemsets_module, "PAIR_BLOCK", 1)
    assert mined(baskets, pair_itemsets(baskets, 2)[0]) == whole == oracle.frequent(groups, 2, 2)


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(st.sets(products, min_size=1, max_size=6), min_size=1, max_size=40),
    min_count=st.integers(1, 4),
    chosen=st.lists(products, unique=True),
    block=st.integers(1, 5),
)
def test_the_gram_counted_with_the_pairs_is_every_pair_count(
    groups: list[set[str]], min_count: int, chosen: list[str], block: int
) -> None:
    """The item model's Gram matrix, counted in the pairs' pass over any products in any order (rare ones
    too, every count kept), is the brute-force count of baskets holding both; the pairs are unchanged."""
    baskets = baskets_of(groups)
    chosen = [p for p in chosen if p in set(baskets.items)]
    codes = np.searchsorted(baskets.items, chosen)
    with mock.patch.object(itemsets_module, "PAIR_BLOCK", block):
        itemsets, gram = pair_itemsets(baskets, min_count, codes)
    assert gram is not None
    assert gram.tolist() == [[sum(a in g and b in g for g in groups) for b in chosen] for a in chosen]
    assert mined(baskets, itemsets) == oracle.frequent(groups, min_count, 2)


def _lines(orders: list[tuple[str | None, list[str]]]) -> pd.DataFrame:
    rows = [
        {"order_id": f"O{n}", "product_id": p, "customer_id": customer}
        for n, (customer, items) in enumerate(orders)
        for p in items
    ]
    return pd.DataFrame(rows).astype({"order_id": TEXT, "product_id": TEXT, "customer_id": TEXT})


def test_a_pair_counts_each_customer_once_and_a_basket_without_customer_as_its_own() -> None:
    # a+b: three baskets of customer x, one of y; a+c: two anonymous baskets; b+c: never together.
    orders = [("x", ["a", "b"]), ("x", ["a", "b"]), ("x", ["a", "b"]), ("y", ["a", "b"])]
    orders += [(None, ["a", "c"]), (None, ["a", "c"]), ("y", ["b"])]
    baskets = baskets_from_lines(_lines(orders))
    code = {str(p): i for i, p in enumerate(baskets.items)}
    a = [code["a"], code["a"], code["b"]]
    c = [code["b"], code["c"], code["c"]]
    assert pair_customers(baskets, np.array(a), np.array(c)).tolist() == [2, 2, 0]


def test_one_customers_habit_is_no_product_page_offer(export: Export, tmp_path: Path) -> None:
    loose = run(export_config(export, tmp_path / "loose", **{"pairs.min_customers": 1}))
    strict = run(export_config(export, tmp_path / "strict", **{"pairs.min_customers": 30}))
    assert strict.counts.rules_dropped["too_few_customers"] > loose.counts.rules_dropped["too_few_customers"] == 0
    assert strict.counts.by_placement.get("product/cross_sell", 0) < loose.counts.by_placement["product/cross_sell"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 7), max_size=6), min_size=1, max_size=40),
    st.lists(st.integers(0, 3), min_size=40, max_size=40),
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=30),
)
def test_shared_rows_is_a_brute_force_count(
    rows: list[list[int]], groups: list[int], pairs: list[tuple[int, int]]
) -> None:
    matrix = sp.csr_matrix(
        (
            np.ones(sum(len(set(r)) for r in rows), dtype=bool),
            ([i for i, r in enumerate(rows) for _ in set(r)], [p for r in rows for p in sorted(set(r))]),
        ),
        shape=(len(rows), 8),
    )
    a = np.array([p for p, _ in pairs], dtype=np.int64)
    c = np.array([q for _, q in pairs], dtype=np.int64)
    owner = np.array(groups[: len(rows)], dtype=np.int64)
    holding = [[i for i, r in enumerate(rows) if p in r and q in r] for p, q in pairs]
    assert shared_rows(matrix, a, c).tolist() == [len(h) for h in holding]
    distinct = [len({groups[i] for i in h}) for h in holding]
    assert shared_rows(matrix, a, c, owner).tolist() == distinct
    # Given each pair's rows, only the rows of a group holding the first product twice are read.
    assert shared_rows(matrix, a, c, owner, np.array([len(h) for h in holding], dtype=np.int64)).tolist() == distinct
