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
    st.integers(-10**12, 10**12).map(str),
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
            ["-q", "run", "--input", str(path), "--output", str(Path(directory) / "out"),
             "--set", f"mine.min_support={min_support}", "--set", "gates.min_baskets=1",
             "--set", "clean.max_invalid_share=0.5"],
            catch_exceptions=False,
        )
    assert result.exit_code in ALLOWED, result.output
    if result.exit_code != ExitCode.OK:
        assert result.stderr.splitlines()[-1].startswith("basket: error: ")
        assert "Traceback" not in result.stderr
