"""Candidate thresholds in, what each would give out: pick a support in seconds, not by trial and error.

The exports are read, cleaned and turned into baskets once; then, for each
candidate value of one mining or rule key (``mine.min_support``,
``mine.max_len``, ``rules.min_confidence``, ...), every segment's offers are
made by the chain ``basket run`` uses (:func:`pipeline.flow.offers.offer_segments`)
and counted as ``basket run`` counts them.
Nothing is published. The explosion guard (``mine.max_itemsets``) still
applies: a candidate that would exhaust memory is reported as stopped.

:func:`tune_offers` judges candidates by what they would sell instead: each is
replayed by ``basket evaluate`` (:func:`pipeline.flow.evaluate.evaluate`) on
the config's evaluation split, which should be a validation period
(``as_of`` and ``evaluate.cutoff`` before the period reported on). The margin
weight is chosen by one rule, :func:`chosen_margin_power`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from pipeline.config import Config, suggestion
from pipeline.contract.vocabulary import CART, CROSS_SELL, PRODUCT
from pipeline.errors import ConfigError
from pipeline.flow.evaluate import evaluate
from pipeline.flow.offers import offer_segments
from pipeline.flow.run import prepare_local

log = logging.getLogger(__name__)

#: Keys a sweep may vary: everything after the baskets.
SWEEPABLE = (
    "mine.",
    "rules.",
    "pairs.",
    "margin.",
    "rank.",
    "model.",
    "output.top_k",
    "segment.min_",
    "post_purchase.",
    "upsell.",
    "bundles.",
)


@dataclass(frozen=True)
class Sweep:
    """One key and the values to try, parsed from ``key=v1,v2,...``."""

    key: str
    values: list[Any]

    @classmethod
    def parse(cls, text: str) -> Sweep:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"--sweep {text!r}: expected key=value,value,..., e.g. mine.min_support=0.01,0.005")
        if not key.startswith(SWEEPABLE):
            raise ConfigError(
                f"--sweep {key}: only {', '.join(k + '*' for k in SWEEPABLE)} keys change after the baskets"
                f"{suggestion(key.split('.')[:1])}"
            )
        return cls(key, [v.strip() for v in values.split(",") if v.strip()])


def tune(config: Config, sweep: Sweep) -> pd.DataFrame:
    """One row per candidate value: what ``basket run`` would publish with it, and seconds (or why it stopped).

    Columns: itemsets, rules, recommendations, offers per placement and kind
    (``offers <placement>/<kind>``), antecedents with offers, products offered
    (``covered_products``) and the share of products sold whose page gets an
    offer (``pages_with_offers``): the counts of :func:`pipeline.flow.run.run`,
    from the same chain (:func:`pipeline.flow.offers.offer_segments`).
    """
    candidates = [(value, _with(config, sweep.key, value)) for value in sweep.values]
    prepared = prepare_local(config)
    rows = []
    for value, candidate in candidates:
        started = time.perf_counter()
        row: dict[str, Any] = {sweep.key: value}
        engine = prepared.engine.with_config(candidate)
        try:
            segments = offer_segments(engine, prepared.baskets, candidate, "tune")
        except ConfigError as exc:
            row.update(status=f"stopped: {str(exc).split(';')[0]}", seconds=time.perf_counter() - started)
            rows.append(row)
            continue
        produced = prepared.tables("tune", segments)
        counts = produced.counts
        recommendations = produced.tables["recommendations"]
        assert isinstance(recommendations, pa.Table)  # the local engine's tables are in memory
        pages = pc.unique(
            recommendations.filter((pc.field("placement") == PRODUCT) & (pc.field("kind") == CROSS_SELL))[
                "antecedent_key"
            ]
        )
        row.update(
            min_count=counts.min_count,
            itemsets=counts.itemsets,
            rules=counts.rules,
            recommendations=counts.recommendations,
            **{f"offers {key}": n for key, n in counts.by_placement.items()},
            antecedents=counts.antecedents,
            covered_products=len(counts.covered_products),
            pages_with_offers=len(pages) / max(counts.products, 1),
            seconds=time.perf_counter() - started,
            status="ok",
        )
        rows.append(row)
    return pd.DataFrame(rows)


#: What :func:`tune_offers` reports of each candidate: ``basket evaluate``'s metrics of the cart block...
EVALUATED = ("hit_rate", "hit_rate_low", "hit_rate_high", "order_hit_rate", "attach_margin", "coverage")
#: ... and of the product page, as (column, metric).
EVALUATED_PAGE = (("page_hit_rate", "hit_rate"), ("page_margin", "attach_margin"))
#: The margin weights :func:`chosen_margin_power` chooses: the weight each candidate ranks with (a
#: ``RankConfig`` attribute: a page's "none" is ``margin_power``), and its placement's (hit rate, margin) columns.
CHOSEN_BY = {
    "rank.margin_power": ("margin_power", "hit_rate", "attach_margin"),
    "rank.page_margin_power": ("page_power", "page_hit_rate", "page_margin"),
}


def tune_offers(config: Config, sweep: Sweep) -> pd.DataFrame:
    """One row per candidate value: the cart block's hit rate and margin per cart (:data:`EVALUATED`,
    ``rules by rank.by`` at ``output.top_k`` offers) on the config's evaluation split, the product page's
    (:data:`EVALUATED_PAGE`), the share of product pages with offers, and seconds. Sweeping a margin weight
    (:data:`CHOSEN_BY`: the cart's ``rank.margin_power`` or the page's ``rank.page_margin_power``, 0 among
    the values), the column ``chosen`` marks the value :func:`chosen_margin_power` picks on that placement's
    columns."""
    candidates = [(value, _with(config, sweep.key, value)) for value in sweep.values]  # every value checked first
    rows = []
    for value, candidate in candidates:
        started = time.perf_counter()
        result = evaluate(candidate)
        metrics = result.metrics
        ours = metrics[(metrics["strategy"] == f"rules by {candidate.rank.by}") & (metrics["k"] == result.k)]
        mine, page = (ours[ours["placement"] == placement] for placement in (CART, PRODUCT))
        row: dict[str, Any] = {sweep.key: value, "k": result.k, "carts": result.carts}
        row.update({name: mine[name].iloc[0] if len(mine) else float("nan") for name in EVALUATED})
        row.update({name: page[of].iloc[0] if len(page) else float("nan") for name, of in EVALUATED_PAGE})
        row.update(product_pages=result.product_pages, seconds=time.perf_counter() - started)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if sweep.key in CHOSEN_BY:
        weight, hit_column, margin_column = CHOSEN_BY[sweep.key]
        powers = [float(getattr(candidate.rank, weight)) for _, candidate in candidates]
        hits, margins = frame[hit_column].tolist(), frame[margin_column].tolist()
        chosen = chosen_margin_power(powers, hits, margins, config.evaluate.kept_hits)
        frame["chosen"] = [power == chosen for power in powers]
    return frame


def chosen_margin_power(
    powers: list[float], hit_rates: list[float], margins: list[float], kept_hits: float
) -> float | None:
    """The margin weight (``rank.margin_power``, or a page's) of most margin per case that keeps
    ``kept_hits`` (``evaluate.kept_hits``) of the hit rate at 0 (ties: the smaller weight), from each
    weight's validation hit rate and margin per case (cart or page view); None when 0 is not among
    ``powers`` or no margin is known (no catalog margins: the weight changes nothing)."""
    base = [hit for power, hit in zip(powers, hit_rates, strict=True) if power == 0]
    kept = [
        (margin, -power)
        for power, hit, margin in zip(powers, hit_rates, margins, strict=True)
        if base and hit >= kept_hits * base[0] and math.isfinite(margin)
    ]
    return -max(kept)[1] if kept else None


def _with(config: Config, key: str, value: str) -> Config:
    """``config`` with one ``section.name`` key set to ``value`` (validated like the file)."""
    section, _, name = key.partition(".")
    current = getattr(config, section, None)
    if current is None or name not in type(current).model_fields:
        raise ConfigError(f"--sweep {key}: no such key{suggestion(key.split('.'))} (see docs/config.md)")
    try:
        updated = type(current).model_validate({**current.model_dump(), name: value})
    except ValidationError as exc:
        raise ConfigError(f"--sweep {key}={value}: {exc.errors()[0]['msg']}") from None
    return config.model_copy(update={section: updated})
