"""Unattended runs: killed runs, concurrent runs, full disks, quality gates, retention, rollback."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline import run
from pipeline.cli import main
from pipeline.config import InputConfig, load_config
from pipeline.errors import ConfigError, ExitCode, OutputError, QualityGateError, RunLockedError
from pipeline.flow.lock import run_lock
from pipeline.flow.publish import LATEST, PARTIAL_PREFIX, RUNS, rollback, run_ids
from pipeline.local.budget import estimated_lines, estimated_peak

from conftest import ROOT, SAMPLE_CONFIG, Export, export_config


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def basket_process(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "-v", "--log-format", "plain", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )


# --- concurrency -----------------------------------------------------------------------------


def test_a_second_run_exits_at_once_naming_the_running_one(config, tmp_path: Path) -> None:
    output = Path(config.output.dir)
    with run_lock(output):
        with pytest.raises(RunLockedError, match=rf"another run is writing to .*pid {os.getpid()}"):
            run(config)
        code, err = invoke("run", "--config", str(SAMPLE_CONFIG), "--output", str(output))
        assert code == ExitCode.LOCKED and f"pid {os.getpid()}" in err


@pytest.mark.slow
def test_a_killed_runs_lock_does_not_block_the_next_run(config, tmp_path: Path) -> None:
    output = Path(config.output.dir)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline.flow.lock import run_lock\n"
            f"with run_lock(Path({str(output)!r})):\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError):
        run(config)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert run(config).run_dir.is_dir()


# --- faults ----------------------------------------------------------------------------------

KILL_POINTS = [
    "stage ingest done",
    "stage clean done",
    "stage itemsets done",
    "stage rank done",
    "wrote ",  # the first table of the run directory is on disk
    "complete, renaming into place",
]


@pytest.mark.slow
@pytest.mark.parametrize("marker", KILL_POINTS)
def test_sigkill_at_any_stage_keeps_latest_and_the_next_run_succeeds(marker: str, tmp_path: Path) -> None:
    output = tmp_path / "out"
    # Confidence 0.3: 8,000 rules instead of 213,000, every stage still runs (a third of the time per run).
    args = ["run", "--config", str(SAMPLE_CONFIG), "--output", str(output), "--set", "rules.min_confidence=0.3"]
    previous = run_ids_after(
        subprocess.run([sys.executable, "-m", "pipeline", "-q", *args], cwd=ROOT, check=True), output
    )
    process = basket_process(*args)
    assert process.stderr is not None
    for line in process.stderr:
        if marker in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"the run ended before {marker!r}"
    # latest still points at the previous complete run, never at a partial one. Killed at the last marker, the
    # signal may land after the rename and the switch (milliseconds later): latest is then the killed run, complete.
    latest = (output / LATEST).resolve().name
    assert latest == previous or (marker == KILL_POINTS[-1] and latest in run_ids(output))
    assert (output / LATEST / "manifest.json").is_file()
    # The next run cleans up what the killed one left and publishes.
    result = run_ids_after(
        subprocess.run([sys.executable, "-m", "pipeline", "-q", *args], cwd=ROOT, check=True), output
    )
    assert (output / LATEST).resolve().name == result != previous
    assert not list((output / RUNS).glob(f"{PARTIAL_PREFIX}*"))


def run_ids_after(process: subprocess.CompletedProcess[bytes], output: Path) -> str:
    assert process.returncode == 0
    return (output / LATEST).resolve().name


@pytest.mark.parametrize(
    "error, message",
    [
        (OSError(28, "No space left on device"), "No space left on device"),
        (PermissionError(13, "Permission denied"), "Permission denied"),
    ],
)
def test_disk_full_or_permission_denied_is_a_clear_error_and_keeps_latest(
    config, monkeypatch: pytest.MonkeyPatch, error: OSError, message: str
) -> None:
    good = run(config)

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("pipeline.flow.publish.parquet_writer", fail)
    with pytest.raises(OutputError, match=rf"cannot write the run to .*{message}"):
        run(config)
    assert (Path(config.output.dir) / LATEST).resolve() == good.run_dir.resolve()
    monkeypatch.undo()
    assert run(config).run_dir.is_dir()  # and the half-written run is cleaned up
    assert not list((Path(config.output.dir) / RUNS).glob(f"{PARTIAL_PREFIX}*"))


def test_disk_full_while_cleaning_writes_its_rejects_is_a_clear_error_and_keeps_latest(
    config, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = run(config)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pipeline.local.rejects.pq.ParquetWriter.write_table", full)
    with pytest.raises(OutputError, match=r"cannot write the rejected lines to .*rejects.parquet: No space left"):
        run(config)
    assert (Path(config.output.dir) / LATEST).resolve() == good.run_dir.resolve()
    monkeypatch.undo()
    assert run(config).run_dir.is_dir()
    assert not list((Path(config.output.dir) / RUNS).glob(f"{PARTIAL_PREFIX}*"))


def test_unwritable_output_directory(tmp_path: Path, config) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, err = invoke("run", "--config", str(SAMPLE_CONFIG), "--output", str(blocker / "out"))
    assert code == ExitCode.OUTPUT and "cannot create the output directory" in err


# --- quality gates -------------------------------------------------------------------------


def _part_of(export: Export, tmp_path: Path, share: float) -> Path:
    """The export with only its first ``share`` of orders: a truncated nightly file."""
    lines = pd.read_csv(export.path, dtype=str)
    orders = lines["InvoiceNo"].drop_duplicates()
    part = tmp_path / "part.csv"
    lines[lines["InvoiceNo"].isin(orders.iloc[: int(len(orders) * share)])].to_csv(part, index=False)
    return part


def test_a_truncated_export_is_held_back_by_the_change_gates(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    good = run(export_config(export, output, **{"gates.min_baskets": 10}))
    part = str(_part_of(export, tmp_path, 0.3))
    truncated = export_config(export, output, **{"input.paths": [part], "gates.min_baskets": 10})
    with pytest.raises(QualityGateError) as caught:
        run(truncated)
    held = json.loads((Path(caught.value.run_dir) / "manifest.json").read_text())
    before, after = good.counts.baskets, held["counts"]["baskets"]
    assert after < before / 2
    assert caught.value.failures[0].startswith(f"gates.max_basket_drop: {after} baskets against {before} in run")
    assert (output / LATEST).resolve() == good.run_dir.resolve()
    assert held["gates"]["passed"] is False and held["gates"]["failures"] == caught.value.failures


def test_a_run_with_other_settings_is_not_compared_with_the_last_one(
    export: Export, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An analyst raising the support halves the rules: that is the new setting, not a broken night."""
    output = tmp_path / "out"
    good = run(export_config(export, output))
    other = run(export_config(export, output, **{"mine.min_support": 0.3, "pairs.min_count": 40}))
    assert other.counts.rules < good.counts.rules / 2
    assert (output / LATEST).resolve() == other.run_dir.resolve()
    assert "the change gates are skipped" in caplog.text and "mine.min_support" in caplog.text
    # The next night with the same settings is compared again: a truncated export is held back.
    with pytest.raises(QualityGateError):
        run(
            export_config(
                export,
                output,
                **{
                    "mine.min_support": 0.3,
                    "pairs.min_count": 40,
                    "input.paths": [str(_part_of(export, tmp_path, 0.3))],
                },
            )
        )


def test_a_rolling_window_does_not_count_as_rejected_rows(export: Export, tmp_path: Path) -> None:
    """Lines before the window are left out by design, every night: not a sign of a broken export."""
    window = {"as_of": "2011-11-30", "clean.window_days": 10, "gates.min_baskets": 10, "gates.max_reject_share": 0.4}
    result = run(export_config(export, tmp_path / "out", **window))
    assert result.counts.rejected["outside_window"] > 0
    assert result.counts.rows_rejected / result.counts.rows_in > 0.4  # with the window's rows it would fail
    assert result.manifest["gates"]["passed"] and not result.manifest["gates"]["failures"]


# --- retention and rollback ------------------------------------------------------------------


def test_retention_keeps_the_newest_runs(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    results = [run(export_config(export, output, **{"output.keep_runs": 2})) for _ in range(4)]
    assert run_ids(output) == [r.run_id for r in results[-2:]]


def test_nights_held_back_never_push_out_the_good_runs(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    good = [run(export_config(export, output, **{"output.keep_runs": 2})) for _ in range(2)]
    truncated = export_config(
        export, output, **{"output.keep_runs": 2, "input.paths": [str(_part_of(export, tmp_path, 0.3))]}
    )
    held = []
    for _ in range(3):
        with pytest.raises(QualityGateError) as caught:
            run(truncated)
        held.append(Path(caught.value.run_dir).name)
    assert run_ids(output) == sorted([g.run_id for g in good] + held)  # nothing is pruned on a held-back night
    fixed = run(export_config(export, output, **{"output.keep_runs": 2}))
    # Retention counts good and held-back runs apart: the two newest of each stay.
    assert run_ids(output) == sorted([good[1].run_id, fixed.run_id, *held[-2:]])
    assert rollback(output) == output / RUNS / good[1].run_id


def test_rollback_to_the_previous_run_and_to_a_named_one(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    first, second = run(export_config(export, output)), run(export_config(export, output))
    assert rollback(output) == output / RUNS / first.run_id
    assert (output / LATEST).resolve().name == first.run_id
    code, _ = invoke("rollback", "--output", str(output), "--to", second.run_id)
    assert code == 0 and (output / LATEST).resolve().name == second.run_id
    code, err = invoke("rollback", "--output", str(output), "--to", "no-such-run")
    assert code == ExitCode.CONFIG and "'no-such-run' is not a run id" in err
    code, err = invoke("rollback", "--output", str(output), "--to", "20000101T000000000Z-00000000")
    assert code == ExitCode.CONFIG and "no complete run 20000101T000000000Z-00000000" in err


def test_rollback_is_refused_while_a_run_holds_the_lock(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    first, second = run(export_config(export, output)), run(export_config(export, output))
    with run_lock(output), pytest.raises(RunLockedError, match="another run is writing to"):
        rollback(output)
    assert (output / LATEST).resolve() == second.run_dir.resolve()
    assert rollback(output) == output / RUNS / first.run_id  # free again


@pytest.mark.parametrize("run_id", ["../../elsewhere", "/etc", f"{PARTIAL_PREFIX}20111209T125000123Z-1a2b3c4d", ".."])
def test_a_run_id_never_names_a_directory_outside_runs(export: Export, tmp_path: Path, run_id: str) -> None:
    output = tmp_path / "out"
    good = run(export_config(export, output))
    (output / RUNS / f"{PARTIAL_PREFIX}20111209T125000123Z-1a2b3c4d").mkdir()
    code, err = invoke("rollback", "--output", str(output), "--to", run_id)
    assert code == ExitCode.CONFIG and "is not a run id" in err
    assert (output / LATEST).resolve() == good.run_dir.resolve()
    code, err = invoke("report", "--output", str(output), "--run", run_id, "--out", str(tmp_path / "r.html"))
    assert code == ExitCode.CONFIG and not (tmp_path / "r.html").exists()


def test_a_symlink_planted_at_the_lock_is_refused_and_its_target_left_alone(export: Export, tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (output / ".lock").symlink_to(victim)
    with pytest.raises(OutputError, match=r"cannot open the lock .*\.lock: it is a symbolic link; remove it"):
        run(export_config(export, output))
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_latest_that_is_not_a_symlink_stops_the_run_before_any_work(
    export: Export, tmp_path: Path, kind: str
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    if kind == "file":
        (output / LATEST).write_text("not a link")
    else:
        (output / LATEST).mkdir()
    code, err = invoke("run", "--config", str(SAMPLE_CONFIG), "--input", str(export.path), "--output", str(output))
    assert code == ExitCode.OUTPUT and f"latest is a {'regular file' if kind == 'file' else 'directory'}" in err
    assert not (output / RUNS).exists()  # nothing was mined or written


# --- bad input files -------------------------------------------------------------------------


def test_too_many_unparseable_prices_stop_the_run(export: Export, tmp_path: Path) -> None:
    # A European export: semicolons, and a decimal comma in every price.
    path = tmp_path / "decimal_comma.csv"
    with export.path.open(newline="") as source, path.open("w", newline="") as target:
        writer = csv.writer(target, delimiter=";")
        writer.writerows([*r[:5], r[5].replace(".", ","), *r[6:]] for r in csv.reader(source) if r)
    code, err = invoke(
        "run",
        "--config",
        str(SAMPLE_CONFIG),
        "--input",
        str(path),
        "--output",
        str(tmp_path / "o"),
        "--set",
        "input.delimiter=';'",
    )
    assert code == ExitCode.INPUT
    assert "decimal_comma.csv: column 'unit_price'" in err and "clean.max_invalid_share" in err
    assert "first at rows [2, 3, 4, 5, 6]: ['1,50', '1,20'" in err


def test_truncated_gzip_of_the_real_sample(tmp_path: Path) -> None:
    data = (ROOT / "data" / "online_retail_2011-10_2011-11.csv.gz").read_bytes()
    path = tmp_path / "truncated.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    code, err = invoke("run", "--config", str(SAMPLE_CONFIG), "--input", str(path), "--output", str(tmp_path / "o"))
    assert code == ExitCode.INPUT and "truncated.csv.gz: cannot read the file" in err
    with gzip.open(path) as handle, pytest.raises(EOFError):
        handle.read()


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            "a,Mug,Home,1.0,0.5\n A ,Mug again,Home,1.0,0.5\n",
            r"column 'product_id' has 1 duplicated id\(s\) \(rows \[2, 3\]\), e.g. \['A'\]",
        ),
        ("a,Mug,Home,1.0,-0.5\n", r"column 'cost' has 1 negative value\(s\), first at rows \[2\]"),
        ("a,Mug,Home,cheap,0.5\n", r"column 'price' has 1 value\(s\) that are not numbers, first at rows \[2\]"),
        # The rows are the file's lines: the blank line counts.
        ("a,Mug,Home,1.0,0.5\n\nb,Cup,Home,x,0.5\n", r"column 'price' has 1 value\(s\) .* first at rows \[4\]"),
        (
            'a,"Mug,Home,1.0,0.5\nb,Cup,Home,1.0,0.5\nc,Jug",Home,1.0,0.5\n',
            r"a quoted value swallowed the lines after it \(a stray quote\), first at rows \[2\]",
        ),
    ],
)
def test_bad_catalogs_are_refused(export: Export, tmp_path: Path, rows: str, message: str) -> None:
    catalog = tmp_path / "bad_catalog.csv"
    catalog.write_text("product_id,name,category,price,cost\n" + rows)
    with pytest.raises(Exception, match=message):
        run(export_config(export, tmp_path / "o", **{"catalog.path": str(catalog)}))
    code, err = invoke(
        "validate", "--config", str(SAMPLE_CONFIG), "--input", str(export.path), "--catalog", str(catalog)
    )
    assert code == ExitCode.INPUT and "bad_catalog.csv" in err


def test_an_export_where_every_line_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "all_cancelled.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,UnitPrice,InvoiceDate,CustomerID,Country\n"
        "C1,00123,MUG,-1,1.5,2011-11-01 10:00,17850,France\nC2,00124,CUP,-2,1.5,2011-11-01 11:00,,France\n"
    )
    code, err = invoke("run", "--config", str(SAMPLE_CONFIG), "--input", str(path), "--output", str(tmp_path / "o"))
    assert code == ExitCode.INPUT
    assert "all_cancelled.csv: no baskets left after cleaning 2 rows (rejected: cancelled 2)" in err


# --- bounded resources (issue 14, class 1) ---------------------------------------------------


@pytest.mark.parametrize("kind", ["device", "fifo", "huge"])
def test_a_config_that_is_not_a_page_of_settings_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    if kind == "device":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "config.toml"
        os.mkfifo(path)  # no writer: reading it would block for ever
    else:
        path = tmp_path / "config.toml"
        path.write_text("# " + "x" * (1 << 20) + "\n")
    code, err = invoke("validate", "--config", str(path))
    assert code == ExitCode.CONFIG and str(path) in err and len(err) < 500


def _export_with(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_huge_first_line_is_not_a_header_and_is_never_echoed(tmp_path: Path) -> None:
    commas = _export_with(tmp_path, "," * (3 << 20) + "\n1,2\n", "commas.csv")
    code, err = invoke("validate", "--config", str(SAMPLE_CONFIG), "--input", str(commas))
    assert code == ExitCode.INPUT and "not a header line" in err and len(err) < 1000
    # A single column of 900 KB: a header, but the message quotes it cut.
    single = _export_with(tmp_path, "x" * 900_000 + "\nvalue\n", "single.csv")
    code, err = invoke("validate", "--config", str(SAMPLE_CONFIG), "--input", str(single))
    assert code == ExitCode.INPUT and "more characters" in err and len(err) < 2000


def test_a_gzip_that_expands_beyond_free_memory_is_refused_before_parsing(
    export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(export.path.read_bytes() * 20))
    # This machine with 1 MB free: the 20 copies of the export (about 0.5 MB) would need 4 bytes a byte.
    monkeypatch.setattr("pipeline.local.ingest.available_memory", lambda: 1 << 20)
    code, err = invoke("validate", "--config", str(SAMPLE_CONFIG), "--input", str(packed))
    assert code == ExitCode.INPUT and "expands to more than" in err and "split the export" in err
    monkeypatch.setattr("pipeline.local.ingest.available_memory", lambda: 1 << 30)
    code, _ = invoke("validate", "--config", str(SAMPLE_CONFIG), "--input", str(packed))
    assert code == 0


def test_the_itemset_guard_message_stays_short_on_long_itemsets() -> None:
    from pipeline.config import MineConfig
    from pipeline.errors import ConfigError
    from pipeline.policy.guards import check_itemsets

    by_length = {k: 10**6 * k for k in range(1, 400)}
    with pytest.raises(ConfigError) as caught:
        check_itemsets(by_length, 3, MineConfig(max_itemsets=1000), estimated=True)
    assert len(str(caught.value)) < 600 and "of length 399" in str(caught.value) and "..." in str(caught.value)
    with pytest.raises(ConfigError, match="more than 9,223,372,036,854,775,807"):
        check_itemsets({1: 10, 40: -5}, 3, MineConfig(max_itemsets=10**12), estimated=True)


def test_mlxtend_apriori_past_its_memory_bound_finds_the_same_itemsets(
    export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fim = run(export_config(export, tmp_path / "fim"))
    monkeypatch.setattr("pipeline.local.itemsets.MLXTEND_DENSE_BYTES", 0)  # every candidate array is too big
    low = run(export_config(export, tmp_path / "mlx", **{"mine.engine": "mlxtend", "mine.algorithm": "apriori"}))
    found = [pd.read_parquet(r.run_dir / "itemsets.parquet")[["itemset_key", "count"]] for r in (fim, low)]
    pd.testing.assert_frame_equal(*(f.sort_values("itemset_key", ignore_index=True) for f in found))


# --- what the operator sees (issue 14, class 6) ----------------------------------------------


def test_usage_mistakes_are_usage_errors_and_say_what_they_are(export: Export, tmp_path: Path) -> None:
    code, err = invoke("run", "--config", str(SAMPLE_CONFIG), "--set", "input.paths=[]", "-o", str(tmp_path / "o"))
    assert code == ExitCode.CONFIG and "no input given" in err
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, err = invoke("validate", "--config", str(SAMPLE_CONFIG), "--input", str(fifo))
    assert code == ExitCode.INPUT and "is not a regular file" in err and "does not exist" not in err


def test_a_product_never_sold_is_told_apart_from_one_without_offers(export: Export, tmp_path: Path) -> None:
    result = run(export_config(export, tmp_path / "out"))
    out = str(result.output_dir)
    never = CliRunner().invoke(main, ["recommend", "-o", out, "--item", "NO-SUCH-PRODUCT"])
    assert never.exit_code == 0 and "NO-SUCH-PRODUCT was never sold" in never.output
    sold = CliRunner().invoke(main, ["recommend", "-o", out, "--item", "00123"])
    assert sold.exit_code == 0 and "never sold" not in sold.output


def test_global_options_are_taken_after_the_subcommand_too(export: Export, tmp_path: Path) -> None:
    """``basket run -q`` as ``basket -q run``: cron lines are written both ways."""
    for flags in (["-q"], ["--log-format", "plain"], ["--log-format=json", "-v"]):
        code, err = invoke("validate", "--config", str(SAMPLE_CONFIG), "--input", str(export.path), *flags)
        assert code == 0, err
    code, err = invoke("validate", "--config", str(SAMPLE_CONFIG), "--log-format", "xml")
    assert code == ExitCode.CONFIG and "xml" in err


# --- the memory budget -----------------------------------------------------------------------


def test_a_run_over_the_memory_budget_is_refused_before_reading_and_keeps_latest(config) -> None:
    good = run(config)
    small = config.model_copy(update={"memory_budget": 0.05})
    with pytest.raises(
        ConfigError, match=r"memory_budget: .*csv hold about [\d,]+ order lines; .*more than memory_budget"
    ):
        run(small)
    assert (Path(config.output.dir) / LATEST).resolve() == good.run_dir.resolve()
    code, err = invoke(
        "run",
        "--config",
        str(SAMPLE_CONFIG),
        "--set",
        "memory_budget=0.05",
        "--output",
        good.run_dir.parent.parent.as_posix(),
    )
    assert code == ExitCode.CONFIG and 'engine = "spark"' in err
    assert run(config.model_copy(update={"memory_budget": 64})).run_dir.is_dir()


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_the_budget_counts_lines_without_reading_the_export(tmp_path: Path, suffix: str) -> None:
    # 60,000 lines of about 40 bytes: 2.4 MB of text, more than the sample the estimate reads.
    frame = pd.DataFrame({"order_id": [f"{i // 7:08d}" for i in range(60_000)], "product_id": "85123A", "quantity": 3})
    path = tmp_path / f"lines{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    lines = estimated_lines(InputConfig(paths=[str(path)]))
    assert lines == 60_000 if suffix == ".parquet" else abs(lines - 60_001) < 0.05 * 60_001
    small = tmp_path / f"small{suffix}"
    if suffix != ".parquet":
        frame.head(10).to_csv(small, index=False)
        assert estimated_lines(InputConfig(paths=[str(small)])) == 11  # a file under the sample: counted exactly


#: Runs a command and prints the largest resident set (KiB) of its process: the child's alone.
_PEAK_OF = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


@pytest.mark.parametrize("command", [["run"], ["evaluate", "--cutoff", "2024-05-01"]])
def test_the_budget_estimate_bounds_the_peak_of_a_small_export_with_many_products(
    tmp_path: Path, command: list[str]
) -> None:
    """A small export over thousands of products: the dense item model (model.max_items squared) is most
    of the peak, and the estimate that a budget is checked against must count it."""
    rng = np.random.default_rng(7)
    order = np.repeat(np.arange(6_000), rng.poisson(9, 6_000) + 1)
    product = np.minimum(rng.zipf(1.15, order.size), 40_000)
    assert np.unique(product).size > 5_000  # more than model.max_items: the model is at its largest
    pd.DataFrame(  # the sample config's column names (the Online Retail export's)
        {
            "InvoiceNo": order.astype(str),
            "StockCode": [f"{p:06d}" for p in product],
            "Quantity": 1,
            "UnitPrice": 2.5,
            "InvoiceDate": pd.Timestamp("2024-01-01") + pd.to_timedelta(order * 37, unit="min"),
            "CustomerID": (order % 997).astype(str),
            "Country": "United Kingdom",
            "Description": [f"ITEM {p}" for p in product],
        }
    ).to_parquet(tmp_path / "lines.parquet")
    config = load_config(
        SAMPLE_CONFIG,
        values={"input.paths": [str(tmp_path / "lines.parquet")], "output.dir": str(tmp_path / "out")},
    )
    references = int(command[0] == "evaluate")
    estimate = estimated_peak(estimated_lines(config.input), config, references)
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK_OF,
            sys.executable,
            "-m",
            "pipeline",
            *command,
            "--config",
            str(SAMPLE_CONFIG),
            "--input",
            str(tmp_path / "lines.parquet"),
            "--output",
            str(tmp_path / "out"),
            "--set",
            "gates.enabled=false",
            "--set",
            f"memory_budget={-(-estimate // 10**6) / 1000}",  # the estimate in GB, rounded up: accepted
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    peak = int(found.stdout.split()[-1]) * 1024
    assert peak <= estimate, f"{command[0]}: peak {peak / 2**20:.0f} MiB, estimated {estimate / 2**20:.0f} MiB"
