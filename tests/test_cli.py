"""The ``basket`` command: exit codes, messages, help, and one real subprocess."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import _progress, main
from pipeline.errors import ExitCode

from conftest import ROOT, SAMPLE_CONFIG, Export


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def fixture_args(export: Export, output: Path) -> list[str]:
    return [
        "--config",
        str(SAMPLE_CONFIG),
        "--input",
        str(export.path),
        "--catalog",
        str(export.catalog),
        "--output",
        str(output),
        "--set",
        "mine.min_support=0.05",
        "--set",
        "clean.max_basket_size=20",
        "--set",
        "rules.min_confidence=0.2",
        "--set",
        "margin.min_margin_rate=0.0",
    ]


def test_run_prints_a_summary_and_recommend_reads_latest(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    code, out, _ = invoke("run", *fixture_args(export, output))
    assert code == ExitCode.OK
    assert "Published run" in out and str(output / "latest") in out
    assert "cancelled 1" in out and "oversized_basket 30" in out
    code, out, _ = invoke("recommend", "--output", str(output), "--item", "00123")
    assert code == 0 and "00124" in out and "SAUCER" in out
    code, out, _ = invoke("recommend", "--output", str(output), "--cart", "00123,22386", "--json")
    offers = json.loads(out)
    assert code == 0 and offers and all(o["consequent"] not in ("00123", "22386") for o in offers)


def test_run_json_summary(export: Export, tmp_path: Path) -> None:
    code, out, _ = invoke("-q", "run", *fixture_args(export, tmp_path / "out"), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["counts"]["baskets"] == export.clean_orders
    assert Path(summary["run_dir"]).is_dir()


def test_config_error_exits_2_and_names_the_key(export: Export, tmp_path: Path) -> None:
    code, _, err = invoke("run", *fixture_args(export, tmp_path), "--set", "output.top_k=0")
    assert code == ExitCode.CONFIG and "output.top_k" in err
    code, _, err = invoke("run", "--config", str(tmp_path / "absent.toml"))
    assert code == ExitCode.CONFIG and "absent.toml does not exist" in err


def test_input_error_exits_3_and_names_the_file(export: Export, tmp_path: Path) -> None:
    code, _, err = invoke("run", *fixture_args(export, tmp_path), "--input", str(tmp_path / "nope.csv"))
    assert code == ExitCode.INPUT and "nope.csv does not exist" in err
    assert "Traceback" not in err


def test_recommend_needs_a_run_and_one_question(tmp_path: Path) -> None:
    code, _, err = invoke("recommend", "--output", str(tmp_path), "--item", "x")
    assert code == ExitCode.OUTPUT and "no published run" in err
    code, _, err = invoke("recommend", "--output", str(tmp_path))
    assert code == ExitCode.CONFIG and "exactly one of --item" in err


def test_validate_checks_without_mining(export: Export, tmp_path: Path) -> None:
    code, out, _ = invoke("validate", *fixture_args(export, tmp_path / "out"))
    assert code == 0 and "Inputs are usable." in out and "cancelled" in out
    assert not (tmp_path / "out").exists()


def test_every_exit_code_is_documented() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    for code in ExitCode:
        assert f"\n| {int(code)} |" in operations, code.name


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help_with_an_example_and_docs(command: str) -> None:
    code, out, _ = invoke(command, "--help")
    assert code == 0 and "Example" in out
    readme = (ROOT / "README.md").read_text()
    assert f"basket {command}" in readme


@pytest.mark.slow
def test_installed_command_runs_as_a_real_process(export: Export, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:pipeline"}
    process = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *fixture_args(export, tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    # Under cron there is no TTY: plain, timestamped log lines on stderr.
    assert " INFO pipeline.local.clean: clean: " in process.stderr
    assert "published run" in process.stderr
    assert (tmp_path / "out" / "latest" / "recommendations.parquet").is_file()
    failed = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--set", "mine.min_support=2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert failed.returncode == ExitCode.CONFIG and "mine.min_support" in failed.stderr


def test_warnings_during_the_progress_display_print_through_its_console(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The live display redraws its lines; a warning written past it by another handler is overwritten on a
    # terminal. While the display shows, the log goes through the display's console, which prints above it.
    logger = logging.getLogger("pipeline")
    elsewhere = io.StringIO()
    monkeypatch.setattr(logger, "handlers", [logging.StreamHandler(elsewhere)])
    monkeypatch.setattr(logger, "level", logging.INFO)
    with _progress(True) as listener:
        assert listener is not None
        listener("ingest", None, "")
        logging.getLogger("pipeline.flow.gates").warning("gate forced: rows fell by 60%%")
        logging.getLogger("pipeline.flow.run").info("read 145,453 rows")  # the display says it; not the log
        listener("ingest", 1.5, "145,453 rows")
    err = capsys.readouterr().err
    assert "gate forced: rows fell by 60%" in err and "read 145,453" not in err
    assert elsewhere.getvalue() == ""
    # Afterwards the log is the command's log again.
    assert [type(h) for h in logger.handlers] == [logging.StreamHandler] and logger.level == logging.INFO
