"""Cleaning on a dirty export whose every bad line is known by construction."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import CleanConfig, Config, load_config
from pipeline.local.baskets import BASKET_COLUMNS
from pipeline.local.clean import REASONS, _sorted_in_place, clean_transactions, normalise_ids
from pipeline.local.ingest import read_transactions

from conftest import DIRTY_REJECTS, HEADER, SAMPLE_CONFIG, WHOLESALE_PRODUCTS, Export, clean_orders


def _clean(config: Config, **clean: object):
    raw, _ = read_transactions(config.input)
    clean_config = config.clean.model_copy(update=clean)
    return raw, clean_transactions(raw, clean_config, config.as_of, config.input)


def test_every_dirty_line_is_rejected_with_its_reason(config: Config, export: Export) -> None:
    raw, result = _clean(config)
    expected = Counter(DIRTY_REJECTS)
    expected["oversized_basket"] = WHOLESALE_PRODUCTS
    assert {k: v for k, v in result.counts.items() if v} == dict(expected)
    assert result.rows_in == export.rows == len(raw)
    # Nothing vanishes: kept + rejected = read.
    assert len(result.lines) + result.rejects.rows == len(raw)
    assert sum(result.counts.values()) == result.rejects.rows
    assert set(result.counts) == set(REASONS)


def test_rejects_keep_the_line_as_read_with_file_and_row(config: Config, export: Export) -> None:
    _, result = _clean(config)
    rejects = result.rejects.frame()
    bad_price = rejects[rejects["reason"] == "bad_unit_price"].iloc[0]
    assert bad_price["unit_price"] == "1,50"
    assert bad_price["source_file"] == str(export.path)
    # The line's row number as a spreadsheet shows it: header is row 1.
    lines = export.path.read_text().splitlines()
    assert lines[bad_price["source_row"] - 1].startswith("9008,00123")
    # The stray quote's record is rejected at the line it starts on (it swallowed the next one).
    stray = rejects[rejects["reason"] == "unbalanced_quote"].iloc[0]
    assert lines[stray["source_row"] - 1].startswith('9012,00123,"TEA CUP')
    cancelled = rejects[rejects["reason"] == "cancelled"].iloc[0]
    assert cancelled["order_id"] == "C9002" and cancelled["quantity"] == "-2"


def test_ids_are_trimmed_cased_and_keep_leading_zeros(config: Config) -> None:
    _, result = _clean(config)
    products = set(result.lines["product_id"])
    assert {"00123", "00124", "85123A"} <= products
    assert not any(p != p.strip() or p != p.upper() for p in products)
    order_9010 = result.lines[result.lines["order_id"] == "9010"]
    assert order_9010["product_id"].tolist() == ["85123A"]


def test_id_case_keep_leaves_lowercase_ids_distinct(config: Config) -> None:
    _, result = _clean(config, id_case="keep")
    assert "85123a" in set(result.lines["product_id"])


def test_steps_can_be_switched_off(config: Config) -> None:
    _, result = _clean(
        config,
        cancel_prefixes=(),
        drop_nonpositive_quantity=False,
        drop_zero_price=False,
        drop_duplicates=False,
        max_basket_size=None,
        non_product_ids=(),
        non_product_pattern=None,
    )
    counts = result.counts
    for reason in (
        "cancelled",
        "nonpositive_quantity",
        "zero_price",
        "duplicate_line",
        "oversized_basket",
        "non_product",
    ):
        assert counts[reason] == 0, reason
    # The cancelled line is then an ordinary (negative) line of order C9002.
    assert "C9002" in set(result.lines["order_id"])


def test_as_of_defaults_to_newest_timestamp_not_the_wall_clock(config: Config) -> None:
    _, result = _clean(config)
    newest = max(datetime.fromisoformat(row[4]) for row in clean_orders())
    assert result.as_of == newest == result.lines["timestamp"].max()


def test_window_and_as_of_date_means_end_of_that_day(config: Config) -> None:
    raw, _ = read_transactions(config.input)
    result = clean_transactions(raw, CleanConfig(window_days=2, max_basket_size=None), date(2011, 11, 20))
    kept = result.lines["timestamp"]
    assert kept.max() <= pd.Timestamp("2011-11-20 23:59:59.999999")
    assert kept.min() > pd.Timestamp("2011-11-18 23:59:59.999999")
    assert pd.Timestamp("2011-11-20 10:00") in set(kept)
    assert result.counts["after_as_of"] > 0 and result.counts["outside_window"] > 0
    # With a window, a line without a timestamp cannot be placed in it.
    assert result.counts["missing_timestamp"] == 0  # the unparseable one was already rejected
    assert result.counts["bad_timestamp"] == 1


def test_input_frame_is_not_modified(config: Config) -> None:
    raw, _ = read_transactions(config.input)
    before = raw.copy()
    clean_transactions(raw, config.clean)
    pd.testing.assert_frame_equal(raw, before)


def test_clean_lines_have_parsed_types(config: Config) -> None:
    _, result = _clean(config)
    lines = result.lines
    assert lines["quantity"].dtype == "float64" and (lines["quantity"] > 0).all()
    assert lines["unit_price"].dtype == "float64" and (lines["unit_price"] > 0).all()
    assert pd.api.types.is_datetime64_dtype(lines["timestamp"].dtype)
    # Text ids are categories (read dictionary-encoded, each distinct id normalised once), in id order.
    for column in ("order_id", "product_id"):
        categories = lines[column].cat.categories
        assert pd.api.types.is_string_dtype(categories) and categories.is_monotonic_increasing
    assert "00123" in set(lines["product_id"])


@pytest.mark.parametrize("cap, rejected", [(29, WHOLESALE_PRODUCTS), (30, 0)])
def test_basket_cap_counts_distinct_products(config: Config, cap: int, rejected: int) -> None:
    _, result = _clean(config, max_basket_size=cap)
    assert result.counts["oversized_basket"] == rejected


@given(st.lists(st.one_of(st.none(), st.sampled_from(["B2B", " B2B", "b2b ", "", "  ", "UK", "uk"])), max_size=30))
@pytest.mark.parametrize("id_case", ["keep", "upper"])
def test_categorical_columns_normalise_like_text(id_case: str, values: list[str | None]) -> None:
    """Segments are read as categories; normalising the categories must give the text answer."""
    as_text = normalise_ids(pd.Series(values, dtype="object"), id_case)
    as_category = normalise_ids(pd.Series(values, dtype="category"), id_case)
    assert isinstance(as_category.dtype, pd.CategoricalDtype)
    assert as_category.astype(object).where(as_category.notna(), None).tolist() == (
        as_text.astype(object).where(as_text.notna(), None).tolist()
    )
    assert as_category.cat.categories.is_unique


def test_funnel_ends_at_the_baskets_and_never_grows(config: Config, export: Export) -> None:
    raw, result = _clean(config)
    funnel = result.funnel()
    assert [step["step"] for step in funnel] == ["read", *REASONS]
    assert funnel[0] == {"step": "read", "rows": len(raw), "orders": raw["order_id"].dropna().nunique()}
    assert funnel[-1]["rows"] == len(result.lines)
    assert funnel[-1]["orders"] == result.lines["order_id"].nunique() == export.clean_orders
    for before, after in pairwise(funnel):
        assert after["rows"] <= before["rows"] and after["orders"] <= before["orders"]
    # The wholesale order leaves at the basket cap, all its lines at once.
    assert funnel[-2]["orders"] - funnel[-1]["orders"] == 1


def test_an_export_without_any_order_id_is_rejected_line_by_line(tmp_path: Path) -> None:
    """Found by the fuzz test: with no order id anywhere, the basket cap had no basket to index."""
    path = tmp_path / "no_orders.csv"
    path.write_text(
        ",".join(HEADER) + "\n"
        ",00123,TEA CUP,1,2011-11-20 10:00:00,1.50,12345,France\n"
        " ,00124,SAUCER,2,2011-11-20 10:00:00,1.20,12345,France\n"
    )
    config = load_config(SAMPLE_CONFIG, values={"input.paths": [str(path)], "clean.max_basket_size": 1})
    _, result = _clean(config)
    assert result.counts["missing_order_id"] == 2 and result.lines.empty


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    rows=st.lists(st.tuples(st.sampled_from("123"), st.sampled_from("xy"), st.integers(1, 2)), min_size=1, max_size=60),
    chunk=st.integers(1, 8),
    key_bits=st.sampled_from([0, 63]),
)
def test_copies_found_a_chunk_at_a_time_are_the_copies_of_the_whole_export(
    rows: list[tuple[str, str, int]], chunk: int, key_bits: int
) -> None:
    # Lines are compared a chunk of whole (order, product) pairs at a time: the first copy in file order
    # stays; the pairs sorted with their line numbers packed in (63 bits) or by an index (0).
    raw = pd.DataFrame(
        {"order_id": [r[0] for r in rows], "product_id": [r[1] for r in rows], "quantity": [str(r[2]) for r in rows]}
    )
    raw = raw.assign(unit_price="1", timestamp="2011-01-01", customer_id=None, segment=None, product_name=None)
    raw = raw.assign(source_file="f", source_row=range(1, len(raw) + 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pipeline.local.clean.DUPLICATE_CHUNK", chunk)
        patch.setattr("pipeline.arrays.KEY_BITS", key_bits)
        result = clean_transactions(raw, CleanConfig(max_basket_size=None))
    expected = raw[["order_id", "product_id", "quantity"]].duplicated(keep="first")
    assert result.counts["duplicate_line"] == int(expected.sum())
    rejects = result.rejects.frame()
    copies = rejects[rejects["reason"] == "duplicate_line"]
    assert sorted(copies["source_row"]) == [i + 1 for i in range(len(raw)) if expected[i]]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    rows=st.lists(st.tuples(st.sampled_from("1234"), st.sampled_from("uvwxyz"), st.integers(-1, 2)), max_size=60),
    cap=st.integers(1, 4),
    chunk=st.integers(1, 4),
    key_bits=st.sampled_from([0, 63]),
)
def test_basket_sizes_counted_a_chunk_at_a_time_are_the_distinct_kept_products(
    rows: list[tuple[str, str, int]], cap: int, chunk: int, key_bits: int
) -> None:
    raw = pd.DataFrame(rows, columns=["order_id", "product_id", "quantity"]).astype({"quantity": str})
    raw = raw.assign(unit_price="1", timestamp="2011-01-01", customer_id=None, segment=None, product_name=None)
    raw = raw.assign(source_file="f", source_row=range(1, len(raw) + 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pipeline.local.clean.DUPLICATE_CHUNK", chunk)
        patch.setattr("pipeline.arrays.KEY_BITS", key_bits)
        result = clean_transactions(raw, CleanConfig(max_basket_size=cap))
    before = (raw["quantity"].astype(int) > 0) & ~raw[["order_id", "product_id", "quantity"]].duplicated()
    sizes = raw[before].groupby("order_id")["product_id"].nunique()
    assert result.counts["oversized_basket"] == int((before & (raw["order_id"].map(sizes) > cap)).sum())


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    keys=st.lists(st.integers(-5, 40), max_size=80),
    chunk=st.integers(1, 8),
)
def test_pairs_sorted_with_their_line_numbers_packed_in_sort_as_a_stable_argsort(keys: list[int], chunk: int) -> None:
    # A missing order or product id gives a negative pair: the packed sort must still order it first.
    pairs = np.array(keys, dtype=np.int64)
    bits = max(len(keys) - 1, 1).bit_length()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pipeline.local.clean.DUPLICATE_CHUNK", chunk)
        packed = pairs.copy()
        lines = _sorted_in_place(packed, bits)
    expected = np.argsort(pairs, kind="stable")
    assert lines.tolist() == expected.tolist()
    assert packed.tolist() == pairs[expected].tolist()


def test_the_kept_lines_taken_for_the_baskets_are_the_kept_lines_of_their_columns(config: Config) -> None:
    """The baskets take only their columns: the same rows as every column taken, the others dropped."""
    _, whole = _clean(config)
    _, some = _clean(config)
    everything = whole.take_lines()
    taken = some.take_lines(BASKET_COLUMNS)
    assert list(taken.columns) == [c for c in everything.columns if c in BASKET_COLUMNS]
    assert "quantity" in everything and "quantity" not in taken and len(taken) == len(everything) > 0
    pd.testing.assert_frame_equal(taken, everything[list(taken.columns)])
    assert some.normalised.columns.empty  # nothing of the lines left behind


def test_rejected_lines_are_written_a_chunk_at_a_time_in_source_order(config: Config) -> None:
    # Never held whole: each chunk of rejected lines is converted and written on its own, as row groups.
    _, whole = _clean(config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pipeline.local.clean.REJECT_CHUNK", 2)
        _, chunked = _clean(config)
    assert chunked.rejects.rows == whole.rejects.rows > 2
    assert pq.ParquetFile(chunked.rejects.path).num_row_groups == -(-chunked.rejects.rows // 2)
    assert chunked.rejects.table().equals(whole.rejects.table())
    rows = whole.rejects.frame()[["source_file", "source_row"]]
    assert rows.equals(rows.sort_values(["source_file", "source_row"]))
    # The file goes with its owner.
    spill = chunked.rejects.path.parent
    chunked.rejects.close()
    assert not spill.exists()
