"""The HTML report: self-contained, consistent with the run's tables, and rendered by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.flow.run import RunResult, run
from pipeline.read.report import write_report

from conftest import ROOT, SAMPLE_CONFIG, Export, export_config

ARTIFACTS = ROOT / "test-artifacts"
CHARTS = 5  # funnel, products, basket sizes, scatter, grouped matrix


@pytest.fixture
def two_runs(export: Export, tmp_path: Path) -> tuple[RunResult, RunResult]:
    output = tmp_path / "out"
    first = run(export_config(export, output))
    second = run(export_config(export, output, **{"mine.min_support": 0.06, "gates.enabled": False}))
    return first, second


def _keys(result: RunResult) -> set[tuple[str, ...]]:
    table = pq.read_table(result.run_dir / "rules.parquet").to_pandas()
    return set(
        zip(
            table["segment"],
            table["placement"],
            table["kind"],
            table["antecedent_key"],
            table["consequent"],
            strict=True,
        )
    )


def test_report_is_self_contained_and_agrees_with_the_tables(two_runs: tuple[RunResult, RunResult]) -> None:
    first, second = two_runs
    page = write_report(second.output_dir).read_text()
    assert (second.run_dir / "report.html").is_file()
    for title in (
        "Cleaning funnel",
        "Most bought products",
        "Basket sizes",
        "support against confidence",
        "Strongest rules, grouped",
        "Top offers per product",
        "Bundles",
        "Against the previous run",
    ):
        assert title in page, title
    # Nothing to fetch: every image is inline, no script or style comes from elsewhere.
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert page.count('<img class="chart"') == CHARTS
    # The comparison counts what the two rule tables say.
    old, new = _keys(first), _keys(second)
    assert f"<td>added</td>\n      <td>{len(new - old)}</td>" in page
    assert f"<td>dropped</td>\n      <td>{len(old - new)}</td>" in page
    assert first.run_id in page and second.run_id in page
    # The funnel table shows the rows the cleaner rejected for the basket cap.
    assert f"<td>oversized_basket</td>\n      <td>{second.counts.rejected['oversized_basket']}</td>" in page


def _run_with_report(export: Path, catalog: Path, output: Path) -> list[str]:
    """``basket run --report`` on a fixture export, as a command line."""
    return [
        "-q",
        "run",
        "-c",
        str(SAMPLE_CONFIG),
        "-i",
        str(export),
        "--catalog",
        str(catalog),
        "-o",
        str(output),
        "--set",
        "clean.max_basket_size=20",
        "--set",
        "mine.min_support=0.05",
        "--report",
    ]


def test_run_writes_the_report_and_report_names_a_missing_run(export: Export, tmp_path: Path) -> None:
    runner = CliRunner()
    output = tmp_path / "out"
    result = runner.invoke(main, _run_with_report(export.path, export.catalog, output))
    assert result.exit_code == 0, result.output
    assert list(output.glob("runs/*/report.html"))
    missing = runner.invoke(main, ["report", "-o", str(output), "--run", "20000101T000000000Z-00000000"])
    assert missing.exit_code == 2 and "it is not a complete run" in missing.output


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (CI installs it)")
def test_report_renders_every_chart_in_headless_chromium(two_runs: tuple[RunResult, RunResult], tmp_path: Path) -> None:
    report = write_report(two_runs[1].output_dir)
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*browser, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if re.search(r"error|uncaught", line, re.IGNORECASE)], console
    sizes = re.findall(r'class="chart"[^>]*data-rendered="(\d+)x(\d+)"', dom.stdout)
    sizes += re.findall(r'data-rendered="(\d+)x(\d+)"[^>]*class="chart"', dom.stdout)
    assert len(sizes) == CHARTS and all(int(w) > 100 and int(h) > 100 for w, h in sizes), sizes
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    subprocess.run(
        [*browser, f"--screenshot={screenshot}", "--window-size=1280,4000", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 50_000


def test_the_report_draws_any_text_and_a_failed_report_still_says_the_run_is_live(
    export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names that matplotlib would parse as formulas and ids of thousands of characters are drawn as cut
    text; when the report fails anyway, the exit code says the run was published (7), not a crash (1)."""
    long_id = "9" * 5000
    lines = export.path.read_text().replace(",00123,", f",{long_id},")
    hostile = tmp_path / "hostile.csv"
    hostile.write_text(lines)
    catalog = export.catalog.read_text().replace("TEA CUP", "PACK $5 #1 $").replace("00123,", f"{long_id},")
    (tmp_path / "catalog.csv").write_text(catalog)
    output = tmp_path / "out"
    arguments = _run_with_report(hostile, tmp_path / "catalog.csv", output)
    runner = CliRunner()
    result = runner.invoke(main, arguments)
    assert result.exit_code == 0, result.output
    page = next(output.glob("runs/*/report.html")).read_text()
    assert long_id not in page and long_id[:50] in page  # cut in the tables, with an ellipsis
    assert "PACK $5 #1 $" in page

    def broken(*_: object, **__: object) -> Path:
        raise RuntimeError("the disk went away")

    monkeypatch.setattr("pipeline.read.report.write_report", broken)
    again = runner.invoke(main, [*arguments, "--set", "gates.enabled=false"])
    latest = (output / "latest").resolve().name
    assert again.exit_code == 7
    assert f"run {latest} was published" in again.output and "the disk went away" in again.output
