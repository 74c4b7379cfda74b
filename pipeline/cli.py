"""The ``basket`` command: a thin layer over the library (``pipeline.flow.run`` and friends).

Each command builds the one validated :class:`~pipeline.config.Config`, calls
the library, and prints. Library errors become a message on stderr and the
exit code of :class:`~pipeline.errors.ExitCode`; nothing else happens here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd

from pipeline.config import Config, load_config
from pipeline.contract.files import LATEST, latest_run
from pipeline.contract.vocabulary import ALL_SEGMENTS, CROSS_SELL, POST_PURCHASE, PRODUCT, UPSELL
from pipeline.errors import AfterPublishError, ConfigError, ExitCode, OutputError, PipelineError, quoted
from pipeline.flow.evaluate import evaluate, write_evaluation
from pipeline.flow.inputs import prepare_inputs
from pipeline.flow.publish import rollback
from pipeline.flow.run import RunResult, run
from pipeline.flow.tune import Sweep, tune, tune_offers
from pipeline.logs import configure_logging, rich_handler
from pipeline.read.explain import explain
from pipeline.read.lookup import offers_after_purchase, offers_for_cart, offers_for_item, rules_table, was_sold
from pipeline.stages import StageListener

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


#: The group's own options, accepted after the subcommand too (``basket run -q`` as ``basket -q run``).
_GLOBAL_FLAGS = ("-v", "--verbose", "-q", "--quiet")
_GLOBAL_VALUES = ("--log-format",)


class _Basket(click.Group):
    """Turns library errors into a one-line message and a documented exit code; takes the global options
    wherever they stand on the command line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _globals_first(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PipelineError as exc:
            click.echo(f"basket: error: {quoted(exc, 4000)}", err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("basket: interrupted; nothing was published", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


#: The output directory a reading command (recommend, rules, explain, report, rollback) reads.
_published_output = click.option(
    "-o",
    "--output",
    "output_dir",
    default="output",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory of runs.",
)


@click.group(cls=_Basket, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="basket-pipeline")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "plain", "json"]),
    default="auto",
    show_default=True,
    help="auto: coloured on a terminal, plain lines otherwise; json: one object per line.",
)
@click.pass_context
def main(ctx: click.Context, verbose: bool, quiet: bool, log_format: str) -> None:
    """Mine transaction exports for cross-sell recommendations.

    \b
    Exit codes: 0 ok, 1 internal error, 2 usage or config error,
    3 input data error, 4 output error, 5 another run holds the lock,
    6 a quality gate failed, 7 published but the report (or what followed
    the switch) failed, 130 interrupted before publishing (docs/operations.md).
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    configure_logging(level, log_format)
    _use_jemalloc()
    # A live per-stage display replaces the INFO lines on an interactive terminal.
    ctx.obj = {"progress": level == logging.INFO and log_format == "auto" and sys.stderr.isatty()}


def _globals_first(args: list[str]) -> list[str]:
    """The command line with the group's options moved before the subcommand (``--`` ends the search)."""
    found: list[str] = []
    rest: list[str] = []
    iterator = iter(args)
    for arg in iterator:
        if arg == "--":
            rest += [arg, *iterator]
            break
        if arg in _GLOBAL_FLAGS or arg.startswith(tuple(f"{o}=" for o in _GLOBAL_VALUES)):
            found.append(arg)
        elif arg in _GLOBAL_VALUES:
            found += [arg, next(iterator, "")]
        else:
            rest.append(arg)
    return [*found, *rest]


def _published(output_dir: Path) -> str | None:
    """The run ``OUTPUT/latest`` points at, or None."""
    try:
        return latest_run(output_dir).name
    except OutputError:
        return None


def config_options(command: F) -> F:
    """The options every command that builds a Config shares, defined once."""
    options = [
        click.option(
            "-c",
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="TOML config file (configs/default.toml documents every key).",
        ),
        click.option(
            "-i",
            "--input",
            "inputs",
            multiple=True,
            metavar="PATH",
            help="Export file or glob; repeat for several. Replaces input.paths.",
        ),
        click.option("--catalog", metavar="PATH", help="Product catalog file. Sets catalog.path."),
        click.option("-o", "--output", metavar="DIR", help="Output directory. Sets output.dir."),
        click.option("--as-of", metavar="DATE", help="Use data up to this date or instant. Sets as_of."),
        click.option(
            "-s",
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a config key, e.g. --set mine.min_support=0.01. Repeatable.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_config(
    config_path: Path | None,
    inputs: tuple[str, ...],
    catalog: str | None,
    output: str | None,
    as_of: str | None,
    overrides: tuple[str, ...],
    engine: str | None = None,
) -> Config:
    """File, then --set, then the explicit flags: the last one wins."""
    values: dict[str, Any] = {}
    if inputs:
        values["input.paths"] = list(inputs)
    if catalog:
        values["catalog.path"] = catalog
    if output:
        values["output.dir"] = output
    if as_of:
        values["as_of"] = as_of
    if engine:
        values["engine"] = engine
    return load_config(config_path, overrides, values)


@main.command(
    "run",
    epilog="""\b
Examples:
  basket run --config configs/default.toml
  basket run -c configs/default.toml --set mine.min_support=0.01 --as-of 2011-11-30
  basket run --input 'exports/2026-*.csv.gz' --catalog catalog.parquet --output /srv/basket
  basket run -c configs/default.toml --engine spark --set spark.master=yarn
""",
)
@config_options
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    help="Run the stages in this process or on Apache Spark (docs/spark.md). Sets engine.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option("--force", is_flag=True, help="Publish even when a quality gate fails (logged as warnings).")
@click.option("--report", "with_report", is_flag=True, help="Write the HTML report into the run directory too.")
@click.pass_obj
def run_command(obj: dict[str, Any], as_json: bool, force: bool, with_report: bool, **options: Any) -> None:
    """Run the whole pipeline and publish OUTPUT/latest."""
    config = build_config(**options)
    output_dir = Path(config.output.dir)
    before = _published(output_dir)
    try:
        with _progress(obj["progress"] and not as_json) as listener:
            result = run(config, force=force, listener=listener)
    except KeyboardInterrupt:
        after = _published(output_dir)
        if after is not None and after != before:
            # Interrupted after the switch (retention): the new run is live; say so, with its own code.
            raise AfterPublishError(f"interrupted after run {after} was published ({output_dir / LATEST})") from None
        raise
    summary = _summary(result)
    if with_report:
        from pipeline.read.report import write_report  # matplotlib: imported only when drawing

        try:
            summary["report"] = str(write_report(result.output_dir, result.run_id))
        except Exception as exc:  # the run is live: whatever broke the report must not hide that
            log.exception("the report of run %s failed", result.run_id)
            raise AfterPublishError(
                f"run {result.run_id} was published ({result.output_dir / LATEST}), but its report failed: {exc}; "
                f"retry with 'basket report --output {result.output_dir} --run {result.run_id}'"
            ) from None
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(_summary_text(result) + (f"\nReport: {summary['report']}" if with_report else ""))


@main.command(
    "report",
    epilog="""\b
Examples:
  basket report --output output
  basket report --output /srv/basket --run 20261120T021500123Z-1a2b3c4d --out /tmp/report.html
""",
)
@_published_output
@click.option("--run", "run_id", metavar="RUN_ID", help="The run to report on (default: the one latest points at).")
@click.option(
    "--out",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the HTML file (default: report.html in the run's directory).",
)
def report_command(output_dir: Path, run_id: str | None, path: Path | None) -> None:
    """Write a self-contained HTML report of a run: funnel, products, rules, offers, changes."""
    from pipeline.read.report import write_report  # matplotlib: imported only when drawing

    click.echo(write_report(output_dir, run_id, path))


@main.command(
    "validate",
    epilog="""\b
Example:
  basket validate --config configs/default.toml --input new_export.csv
""",
)
@config_options
def validate_command(**options: Any) -> None:
    """Check exports, catalog and config without mining: exit 0 when they are usable."""
    config = build_config(**options)
    inputs = prepare_inputs(config)
    cleaned = inputs.cleaned
    lines = [
        "Inputs are usable.",
        *(f"  read {f.path}: {f.rows:,} rows" for f in inputs.files),
        f"  rows kept         {inputs.baskets.lines:>10,}",
        f"  rows rejected     {cleaned.rejects.rows:>10,}",
        *(f"    {reason:<22}{n:>10,}" for reason, n in cleaned.counts.items() if n),
        f"  baskets           {inputs.baskets.count:>10,}",
        f"  products          {len(inputs.baskets.items):>10,}",
    ]
    if inputs.catalog is not None:
        lines.append(f"  missing from catalog {len(inputs.missing_from_catalog):>7,} products")
    click.echo("\n".join(lines))


@main.command(
    "recommend",
    epilog="""\b
Examples:
  basket recommend --output output --item 22386
  basket recommend --output output --item 22386 --upsell
  basket recommend --output output --cart 22386,85099B --json
  basket recommend --output output --cart 22386,85099B --customer 17850
  basket recommend --output output --after 22386 --segment "United Kingdom"
  basket recommend --output output --after 22386 --customer 17850
""",
)
@_published_output
@click.option("--item", metavar="ID", help="The product being viewed (product page).")
@click.option("--upsell", is_flag=True, help="With --item: pricier alternatives instead of complements.")
@click.option("--cart", metavar="ID,ID", help="The products in the cart, comma-separated (cart block).")
@click.option("--after", metavar="ID", help="A product just bought (post-purchase e-mail).")
@click.option(
    "--customer",
    metavar="ID",
    help="With --after: the customer, whose own most bought products come first (buy again); "
    "with --cart: the customer whose history orders the cart's offers.",
)
@click.option(
    "--segment",
    default=ALL_SEGMENTS,
    show_default=True,
    help="Customer segment ('*' = all); a segment not mined on its own gets the global offers.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Offers to show (default: output.top_k).")
@click.option("--json", "as_json", is_flag=True, help="Print the offers as JSON records.")
def recommend_command(
    output_dir: Path,
    item: str | None,
    upsell: bool,
    cart: str | None,
    after: str | None,
    customer: str | None,
    segment: str,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print what the storefront would show for a product, a cart or after a purchase, read from OUTPUT/latest."""
    if sum(x is not None for x in (item, cart, after)) != 1:
        raise ConfigError("give exactly one of --item ID, --cart ID,ID or --after ID")
    if upsell and item is None:
        raise ConfigError("--upsell goes with --item")
    if customer is not None and after is None and cart is None:
        raise ConfigError("--customer goes with --after or --cart")
    columns = [
        "offer",
        "antecedent_key",
        "consequent",
        "consequent_name",
        "confidence",
        "lift",
        "consequent_margin",
        "score",
    ]
    if item is not None:
        offers = offers_for_item(output_dir, item, segment, limit, kind=UPSELL if upsell else CROSS_SELL)
    elif after is not None:
        offers = offers_after_purchase(output_dir, after, customer, segment, limit)
        columns.append("source")
    else:
        products = [p for p in (cart or "").split(",") if p.strip()]
        offers = offers_for_cart(output_dir, products, segment, limit, customer)
        columns.append("source")
    offers.insert(0, "offer", range(1, len(offers) + 1))
    empty = "No offers."
    product = item if item is not None else after
    if offers.empty and product is not None and not was_sold(output_dir, product, segment):
        empty = f"No offers: {product} was never sold in the run's data (or is not a product id)."
    _echo_frame(offers[columns], as_json, empty)


@main.command(
    "evaluate",
    epilog="""\b
Examples:
  basket evaluate --config configs/default.toml
  basket evaluate -c configs/default.toml --cutoff 2011-11-15 --out reports/eval --json
""",
)
@config_options
@click.option(
    "--cutoff",
    metavar="DATE",
    help="Train on orders before this date, test on the rest. "
    "Sets evaluate.cutoff (default: the last evaluate.test_share of orders are the test).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write evaluation.parquet and evaluation.json (default: OUTPUT/evaluation).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_command(cutoff: str | None, out_dir: Path | None, as_json: bool, **options: Any) -> None:
    """Replay later orders as carts against rules mined on earlier ones: hit rate, coverage, attach value."""
    if cutoff:
        options["overrides"] = (*options["overrides"], f"evaluate.cutoff={cutoff}")
    config = build_config(**options)
    evaluation = evaluate(config)
    written = write_evaluation(evaluation, out_dir or Path(config.output.dir) / "evaluation")
    if as_json:
        click.echo((written / "evaluation.json").read_text().rstrip())
        return
    metrics = evaluation.metrics
    click.echo(
        f"Trained on {evaluation.train_orders:,} orders before {evaluation.cutoff:%Y-%m-%d %H:%M}; "
        f"replayed {evaluation.carts:,} carts of {evaluation.test_orders:,} later orders. "
        f"{evaluation.product_pages:.1%} of the products sold in training have cross-sells on their page."
    )
    carts = max(evaluation.carts, 1)
    variants = (
        f", {evaluation.variant_targets:,} ({evaluation.variant_targets / carts:.1%}) a colour or size variant of a "
        'product of their cart (rank.cart_variants = "never")'
        if evaluation.variant_targets
        else ""
    )
    click.echo(
        f"Out of reach of every rule: {evaluation.new_targets:,} carts ({evaluation.new_targets / carts:.1%}) hold out "
        f"a product never sold in training{variants}."
    )
    click.echo(f"At {evaluation.k} offers (output.top_k):")
    headline = metrics[metrics["k"] == evaluation.k].drop(columns=["k", "carts", "orders", "aov"])
    click.echo(headline.set_index("strategy").to_string(float_format=lambda x: f"{x:.4f}"))
    click.echo(
        "Hit rate per case (per order) at each number of offers; a case is a cart (cart), a product page view "
        "(product) or an order before the customer's next (post_purchase):"
    )
    cells = metrics.assign(
        cell=[f"{c:.4f} ({o:.4f})" for c, o in zip(metrics["hit_rate"], metrics["order_hit_rate"], strict=True)]
    )
    grid = cells.pivot_table(index=["placement", "strategy"], columns="k", values="cell", aggfunc="first")
    click.echo(grid.to_string())
    click.echo(f"Average test order value {metrics['aov'].iloc[0]:.2f}. Written to {written}/")


@main.command(
    "rules",
    epilog="""\b
Examples:
  basket rules --output output --item 22727
  basket rules --output output --min-lift 10 --sort lift --limit 5
""",
)
@_published_output
@click.option("--item", metavar="ID", help="Only rules with this product in the antecedent or as the consequent.")
@click.option("--min-lift", type=float, help="Only rules with a lift above this.")
@click.option(
    "--sort",
    type=click.Choice(["score", "lift", "confidence", "support", "pair_count", "leverage"]),
    default="score",
    show_default=True,
    help="Order, best first.",
)
@click.option("--segment", default=ALL_SEGMENTS, show_default=True, help="Customer segment ('*' = all).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Rules to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON records.")
def rules_command(
    output_dir: Path, item: str | None, min_lift: float | None, sort: str, segment: str, limit: int, as_json: bool
) -> None:
    """Query the rules of OUTPUT/latest."""
    rules = rules_table(output_dir, item, min_lift, sort, limit, segment)
    columns = [
        "placement",
        "antecedent_key",
        "consequent",
        "consequent_name",
        "support",
        "confidence",
        "lift",
        "pair_count",
        "score",
        "rank",
    ]
    _echo_frame(rules[columns], as_json, "No rules.")


@main.command(
    "explain",
    epilog="""\b
Examples:
  basket explain --output output 22727 22726
  basket explain --output output 22727,22386 85099B --json
""",
)
@_published_output
@click.option("--segment", default=ALL_SEGMENTS, show_default=True, help="Customer segment ('*' = all).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.argument("antecedent", metavar="ID[,ID...]")
@click.argument("consequent", metavar="ID")
def explain_command(output_dir: Path, segment: str, as_json: bool, antecedent: str, consequent: str) -> None:
    """Why ID (the offer) is, or is not, recommended for ID[,ID...] (the product or cart)."""
    facts = explain(output_dir, [p for p in antecedent.split(",") if p.strip()], consequent, segment)
    if as_json:
        click.echo(json.dumps(facts, indent=2, default=str))
        return
    click.echo(
        f"{'|'.join(facts['antecedent'])} -> {facts['consequent']} (segment {facts['segment']}, run {facts['run_id']})"
    )
    click.echo(f"  {facts['verdict']}")
    for rule in facts["rules"]:
        # Post-purchase rules count pairs of consecutive orders, not baskets.
        unit = "order pairs" if rule["placement"] == POST_PURCHASE else "baskets"
        click.echo(
            f"  {rule['placement']}/{rule['kind']}: rank {rule['rank']}, {unit} {rule['antecedent_count']:,} with the "
            f"antecedent, {rule['consequent_count']:,} with the offer, {rule['pair_count']:,} with both; support "
            f"{rule['support']:.4f}, confidence {rule['confidence']:.3f}, lift {rule['lift']:.2f}, "
            f"margin {rule['consequent_margin']}, score {rule['score']:.3f}"
        )
        click.echo("    passed: " + ", ".join(rule["filters_passed"]))
        click.echo(f"    score: {rule['ranked_by']}")


@main.command(
    "tune",
    epilog="""\b
Examples:
  basket tune --config configs/default.toml --sweep mine.min_support=0.02,0.01,0.005,0.002
  basket tune -c configs/default.toml --sweep rules.min_confidence=0.1,0.3,0.5 --json
  basket tune -c configs/default.toml --input export.csv.gz --as-of 2011-09-30 \\
      --set evaluate.cutoff=2011-09-01 --sweep rank.margin_power=0,0.05,0.1,0.25 --evaluate
""",
)
@config_options
@click.option(
    "--sweep",
    "sweep_text",
    required=True,
    metavar="KEY=V1,V2,...",
    help="A mine.*, rules.*, margin.* or rank.* key and the values to try.",
)
@click.option(
    "--evaluate",
    "evaluated",
    is_flag=True,
    help="Judge each value by basket evaluate's hit rate and margin per cart, and per product page view, on the "
    "evaluation split (set --as-of and evaluate.cutoff to a validation period) instead of counting offers.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON records.")
def tune_command(sweep_text: str, evaluated: bool, as_json: bool, **options: Any) -> None:
    """Try several values of one threshold on the same baskets, without publishing: counts and seconds each."""
    config, sweep = build_config(**options), Sweep.parse(sweep_text)
    table = tune_offers(config, sweep) if evaluated else tune(config, sweep)
    _echo_frame(table, as_json, "No candidates.")
    if evaluated and "chosen" in table and table["chosen"].any() and not as_json:
        value = table.loc[table["chosen"], sweep.key].iloc[0]
        click.echo(
            f"Chosen: {sweep.key}={value}, the most margin that keeps {config.evaluate.kept_hits:.0%} of the "
            f"hit rate at {sweep.key}=0 (evaluate.kept_hits; docs/evaluation.md)."
        )


@main.command(
    "rollback",
    epilog="""\b
Examples:
  basket rollback --output /srv/basket
  basket rollback --output /srv/basket --to 20261120T021500123Z-1a2b3c4d
""",
)
@_published_output
@click.option("--to", "run_id", metavar="RUN_ID", help="The run to publish (default: the one before latest).")
def rollback_command(output_dir: Path, run_id: str | None) -> None:
    """Point OUTPUT/latest back at an earlier run, atomically."""
    target = rollback(output_dir, run_id)
    click.echo(f"{output_dir / 'latest'} -> {target}")


def _echo_frame(frame: pd.DataFrame, as_json: bool, empty: str) -> None:
    """A result table: JSON records for scripts, aligned text for people."""
    if as_json:
        click.echo(frame.to_json(orient="records", indent=2))
    elif frame.empty:
        click.echo(empty)
    else:
        click.echo(frame.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"))


def _use_jemalloc() -> None:
    """Arrow's jemalloc allocator for this process, unless ``ARROW_DEFAULT_MEMORY_POOL`` names one.

    Reading and cleaning a 10-million-line export is about a quarter faster
    and peaks about 15% lower with it than with the wheel's default mimalloc
    (``benchmarks/ingest.py``). The library leaves the choice to the process
    that imports it; the command makes it here. With jemalloc, freed memory is
    returned at once (decay 0): 3 M baskets peaked 0.1 GB lower, in no more time
    (``benchmarks/whole_run.py``).
    """
    import pyarrow as pa

    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except (NotImplementedError, pa.ArrowException):  # a pyarrow built without jemalloc
            log.debug("pyarrow has no jemalloc allocator; keeping %s", pa.default_memory_pool().backend_name)
    if pa.default_memory_pool().backend_name == "jemalloc":
        # Freed pages go back to the system at once, not after jemalloc's decay time: a stage's
        # freed Arrow columns (the lines as read, once cleaned) otherwise still count when the next
        # stage allocates, and that sum was the run's peak.
        pa.jemalloc_set_decay_ms(0)


@contextmanager
def _progress(enabled: bool) -> Iterator[StageListener | None]:
    """A rich display with one line per stage (spinner, what it produced, seconds), or nothing.

    While it shows, the log prints warnings only, through the display's own
    console: printed above the live lines, not overwritten by their next refresh.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    logger = logging.getLogger("pipeline")
    level, handlers = logger.level, logger.handlers[:]
    tasks: dict[str, TaskID] = {}
    columns = (SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        logger.handlers[:] = [rich_handler(progress.console)]
        logger.setLevel(logging.WARNING)

        def listener(name: str, elapsed: float | None, detail: str) -> None:
            if elapsed is None:
                tasks[name] = progress.add_task(name, total=1)
            else:
                progress.update(tasks[name], completed=1, description=f"{name:<14}{detail}")

        try:
            yield listener
        finally:
            logger.handlers[:] = handlers
            logger.setLevel(level)


def _summary(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "run_dir": str(result.run_dir),
        "latest": str(result.output_dir / "latest"),
        "counts": result.counts.model_dump(mode="json"),
        "timings_seconds": {k: round(v, 3) for k, v in result.timings.items()},
    }


def _summary_text(result: RunResult) -> str:
    counts = result.counts
    rejected = ", ".join(f"{k} {v:,}" for k, v in counts.rejected.items() if v) or "none"
    lines = [
        f"Published run {result.run_id}",
        f"  output            {result.output_dir / 'latest'} -> {result.run_dir}",
        f"  rows read         {counts.rows_in:>10,}",
        f"  rows rejected     {counts.rows_rejected:>10,}  ({rejected})",
        f"  baskets           {counts.baskets:>10,}",
        f"  products          {counts.products:>10,}",
        f"  itemsets          {counts.itemsets:>10,}  (support >= {counts.min_count} baskets)",
        f"  rules             {counts.rules:>10,}",
        f"  recommendations   {counts.recommendations:>10,}  for {counts.antecedents:,} antecedents",
        "    " + ", ".join(f"{k} {v:,}" for k, v in counts.by_placement.items()),
        f"  bundles           {counts.bundles:>10,}",
        f"  buy-again rows    {counts.buy_again:>10,}  (each customer's most bought products)",
        f"  history rows      {counts.history:>10,}  (what a known customer's cart block weighs in)",
    ]
    if len(counts.segments) > 1:
        lines.append("  segments          " + ", ".join(f"{k} ({v:,} baskets)" for k, v in counts.segments.items()))
    if counts.catalog_products is not None:
        lines.append(f"  missing from catalog {counts.products_missing_from_catalog:>7,} products")
    lines.append(f"  time              {sum(result.timings.values()):>10.1f} s")
    # The product pages' offers: a cart row may be a variant of its antecedent, shown only after a first offer.
    pages = [("kind", "=", CROSS_SELL), ("segment", "=", ALL_SEGMENTS), ("placement", "=", PRODUCT)]
    top = pd.read_parquet(result.run_dir / "recommendations.parquet", filters=pages)
    top = top.sort_values(["score", "consequent"], ascending=[False, True], na_position="last").head(5)
    if not top.empty:
        lines.append("Top product-page offers by score:")
        for row in top.itertuples():
            name = f" ({row.consequent_name})" if isinstance(row.consequent_name, str) else ""
            lines.append(
                f"  {row.antecedent_key} -> {row.consequent}{name}: "
                f"confidence {row.confidence:.2f}, lift {row.lift:.1f}, score {row.score:.3f}"
            )
    return "\n".join(lines)
