"""What a run counted, typed: the ``counts`` of ``manifest.json``, built by each engine, read by the gates,
the command line, the lookups and the report (``docs/output.md`` describes every field)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunCounts(BaseModel):
    """Rows, baskets, itemsets, rules and offers of one run, as the manifest stores them.

    Fields added in later schema versions have defaults, so that an older
    manifest still reads (``basket report`` compares with the previous run).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    rows_in: int
    rejected: dict[str, int]
    rows_rejected: int
    rows_clean: int
    funnel: list[dict[str, Any]] = Field(default_factory=list)
    basket_sizes: dict[str, int] = Field(default_factory=dict)
    baskets: int
    products: int
    min_count: int
    itemsets: int
    rules_mined: int = 0
    rules_dropped: dict[str, int] = Field(default_factory=dict)
    rules: int
    recommendations: int
    antecedents: int
    by_placement: dict[str, int] = Field(default_factory=dict)
    segments: dict[str, int] = Field(default_factory=dict)
    bundles: int = 0
    buy_again: int = 0
    #: Rows of history.parquet: the customers' histories their cart blocks weigh in (since 2.6).
    history: int = 0
    #: Rows of neighbours.parquet: the item models' published weights (since 2.3).
    neighbours: int = 0
    catalog_products: int | None = None
    #: Catalog products with a known margin; none: offers score without margins (since 2.4).
    catalog_margins: int | None = None
    #: How the itemsets were mined and why (since 2.5): ``method`` (``count``, ``fim fpgrowth``,
    #: ``spark fpgrowth``, ...) and ``why`` (the setting, or ``auto``'s estimates).
    mining: dict[str, str] = Field(default_factory=dict)
    products_missing_from_catalog: int = 0
    products_missing_listed: list[str] = Field(default_factory=list)
    covered_products: list[str] = Field(default_factory=list)
