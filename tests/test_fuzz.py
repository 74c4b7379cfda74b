"""Hypothesis-generated dirty exports never crash the pipeline: they run, or stop with a documented code."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.errors import ExitCode

IDS = st.one_of(
    st.sampled_from(["00123", "0123", "123", "85123A", "85123a", " 85123A ", "POST", "C2", "é", "日本語", "NA", ""]),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8),
)
NUMBERS = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "NaN", "inf", "1,5", "abc", "1e309", "-0", " 3 "]),
)
TIMESTAMPS = st.one_of(
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.sampled_from(["", "yesterday", "2011-02-30 10:00", "31/12/2011", "2011-12-09T12:50:00Z"]),
)
ROWS = st.lists(
    st.tuples(st.one_of(IDS, st.sampled_from(["1", "2", "3", "C4"])), IDS, NUMBERS, NUMBERS, TIMESTAMPS, IDS),
    min_size=0,
    max_size=60,
)
#: A wholesale order to mix in: one order id, many products.
HUGE = st.integers(0, 400)

ALLOWED = {ExitCode.OK, ExitCode.INPUT, ExitCode.GATE}


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, huge=HUGE, min_support=st.sampled_from([0.001, 0.05, 0.5, 1.0]))
def test_fuzzed_exports_run_or_stop_with_a_documented_code(
    rows: list[tuple[str, ...]], huge: int, min_support: float
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "export.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["order_id", "product_id", "quantity", "unit_price", "timestamp", "customer_id"])
            writer.writerows(rows)
            writer.writerows(("W1", f"{i:05d}", "1", "1.0", "2011-01-01 00:00:00", "c") for i in range(huge))
        result = CliRunner().invoke(
            main,
            [
                "-q",
                "run",
                "--input",
                str(path),
                "--output",
                str(Path(directory) / "out"),
                "--set",
                f"mine.min_support={min_support}",
                "--set",
                "gates.min_baskets=1",
                "--set",
                "clean.max_invalid_share=0.5",
            ],
            catch_exceptions=False,
        )
    assert result.exit_code in ALLOWED, result.output
    if result.exit_code != ExitCode.OK:
        assert result.stderr.splitlines()[-1].startswith("basket: error: ")
        assert "Traceback" not in result.stderr


PRODUCTS = st.sampled_from(["A", "B", "C", "D", "E", "F", "00123", " x "])
ORDER_LINES = st.lists(
    st.tuples(
        st.sampled_from([str(i) for i in range(30)]),
        PRODUCTS,
        st.sampled_from(["1", "2", "-1", "0"]),
        st.sampled_from(["1.0", "2.5", "0", "3"]),
        st.sampled_from(["2011-01-01 10:00", "2011-01-03 09:00", "2011-01-05 10:00", "2011-02-20 10:00", ""]),
        st.sampled_from(["c1", "c2", "c3", "c4", ""]),
        st.sampled_from(["UK", " UK ", "FR", "*", ""]),
    ),
    max_size=120,
)
CATALOG_ROWS = st.lists(
    st.tuples(
        PRODUCTS,
        st.sampled_from(["a name", ""]),
        st.sampled_from(["mugs", "bags", ""]),
        st.sampled_from(["1", "1.1", "1.2", "2", "", "0"]),
        st.sampled_from(["0.5", "1", "", "0.9", "1.5"]),
    ),
    max_size=10,
    unique_by=lambda row: row[0].strip().upper(),
)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(lines=ORDER_LINES, catalog=CATALOG_ROWS, by_segment=st.booleans(), min_support=st.sampled_from([0.01, 0.1, 0.3]))
def test_fuzzed_catalogs_and_segments_run_and_report(
    lines: list[tuple[str, ...]], catalog: list[tuple[str, ...]], by_segment: bool, min_support: float
) -> None:
    """Every placement, up-sell, bundles, segments and the report on small random shops."""
    with tempfile.TemporaryDirectory() as directory:
        export, products, out = (Path(directory) / name for name in ("export.csv", "catalog.csv", "out"))
        with export.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["order_id", "product_id", "quantity", "unit_price", "timestamp", "customer_id", "segment"])
            writer.writerows(lines)
        with products.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["product_id", "name", "category", "price", "cost"])
            writer.writerows(catalog)
        options = [
            "--input",
            str(export),
            "--catalog",
            str(products),
            "--output",
            str(out),
            "--set",
            f"mine.min_support={min_support}",
            "--set",
            "gates.enabled=false",
            "--set",
            "upsell.min_buyers=1",
            "--set",
            "segment.min_baskets=1",
            "--set",
            "catalog.missing=keep",
        ]
        if by_segment:
            options += ["--set", 'segment.column="segment"']
        result = CliRunner().invoke(main, ["-q", "run", *options, "--report"], catch_exceptions=False)
    assert result.exit_code in (ExitCode.OK, ExitCode.INPUT), result.output
    if result.exit_code == ExitCode.INPUT:
        assert "no order lines" in result.stderr or "no baskets left" in result.stderr
