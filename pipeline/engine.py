"""What an engine must do, and what it hands back: the seam between the orchestration and the engines.

The orchestration (:mod:`pipeline.flow`) decides which stages run, in which
order, for which segments; the policy (:mod:`pipeline.policy`) decides what a
rule, an offer or a bundle is. An engine only moves data: the local one in
pandas, numpy and pyfim (:mod:`pipeline.local.engine`), the Spark one in
DataFrames on a cluster (:mod:`pipeline.spark.engine`). Each implements
:class:`OfferEngine` over its own data types (shown here as ``Any``: a local
:class:`~pipeline.local.baskets.Baskets` or a Spark DataFrame).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.config import Config, MineConfig
    from pipeline.contract.counts import RunCounts
    from pipeline.contract.files import TableWriter
    from pipeline.contract.manifest import InputFile
    from pipeline.policy.model import Gram, ItemModel

#: How many products missing from the catalog the manifest lists by name.
MISSING_LISTED = 50


@dataclass(frozen=True)
class Ranked:
    """Offers ranked within their groups (an engine's table), and the rows each filter dropped."""

    rows: Any
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MinedRules:
    """A segment's cross-sell rules before ranking (in the engine's tables): what ranking does not change.

    ``pairs``/``pair_rules`` (with ``pairs.enabled``) are the product page's
    itemsets and rules after the customer floor; ``habits`` the rules it dropped.
    """

    itemsets: Any
    rules: Any
    rules_mined: int
    pairs: Any = None
    pair_rules: Any = None
    habits: int = 0


@dataclass
class SegmentTables:
    """The rows of one segment (``*``: every basket), in the engine's tables, and what was counted.

    ``itemsets`` and ``rules_mined`` describe the segment's basket rules;
    ``dropped`` counts the basket rules the margin and catalog filters removed.
    """

    segment: str
    baskets: int
    itemsets: Any
    rules_mined: int
    dropped: dict[str, int]
    rules: list[Any] = field(default_factory=list)
    recommendations: list[Any] = field(default_factory=list)
    bundles: Any | None = None
    products: Any | None = None
    buy_again: Any | None = None
    #: Each customer's history for their cart block (``history.parquet``).
    history: Any | None = None
    #: The item model's published rows (an Arrow table, whatever the engine), or None.
    neighbours: pa.Table | None = None
    #: The cross-sell rules before ranking: ``basket evaluate`` ranks them other ways.
    mined: MinedRules | None = None


@dataclass(frozen=True)
class Prepared:
    """An engine with a run's inputs read, cleaned and turned into baskets, ready for the chain.

    ``tables`` turns the run id and the segments' rows into the run's tables and counts.
    """

    engine: OfferEngine
    baskets: Any
    files: list[InputFile]
    tables: Callable[[str, list[SegmentTables]], RunTables]


@dataclass(frozen=True)
class RunTables:
    """What an engine produced, ready to be gated, written and published.

    ``tables`` maps each published table's name to an Arrow table or to a
    writer of it (the Spark engine's tables stay on the cluster); ``problems``
    are what the engine found wrong in them (:func:`pipeline.flow.gates.table_problems`).
    ``release`` frees what the engine holds for the writers, once they ran
    (the Spark engine's cached tables, which a long-lived session would keep).
    """

    run_id: str
    as_of: datetime | None
    files: list[InputFile]
    counts: RunCounts
    tables: dict[str, pa.Table | TableWriter]
    problems: list[str]
    release: Callable[[], None] = field(default=lambda: None, repr=False)


class OfferEngine(Protocol):
    """The operations :func:`pipeline.flow.offers.segment_offers` chains, on one engine's data.

    Every method applies the policy of :mod:`pipeline.policy` (the engines
    call its kernels); none decides what to keep or how to rank on its own.
    """

    config: Config

    def with_config(self, config: Config) -> OfferEngine:
        """The same engine and data with other settings (``basket tune``'s candidates)."""

    def segment_sizes(self, baskets: Any) -> dict[str, int]:
        """Baskets per value of the segment column (orders without one are left out)."""

    def segment(self, baskets: Any, value: str) -> Any:
        """The baskets of one segment value."""

    def basket_count(self, baskets: Any) -> int:
        """How many baskets there are."""

    def frequent_itemsets(self, baskets: Any, mine: MineConfig) -> Any:
        """The frequent itemsets of ``baskets`` at ``mine``'s threshold; the memory guard applies."""

    def itemset_count(self, itemsets: Any) -> int:
        """How many itemsets there are."""

    def association_rules(self, itemsets: Any) -> Any:
        """The rules of the itemsets that ``rules.*`` keeps."""

    def rule_count(self, rules: Any) -> int:
        """How many rules there are."""

    def pair_itemsets(self, baskets: Any, min_count: int, with_gram: bool) -> tuple[Any, Gram | None]:
        """Every product and pair of products in at least ``min_count`` baskets (``pairs.*``); with
        ``with_gram``, the item model's Gram matrix (:meth:`model_gram`) where the engine counts it in
        the same pass, else None."""

    def customer_floor(self, rules: Any, itemsets: Any, baskets: Any) -> tuple[Any, int]:
        """One-product rules of ``itemsets`` backed by at least ``pairs.min_customers`` customers, and how
        many were dropped."""

    def cart_rules(self, rules: Any, itemsets: Any) -> Any:
        """The rules whose antecedent holds two products or more."""

    def model_gram(self, baskets: Any) -> Gram:
        """The Gram matrix (baskets holding both) of the products the item model covers
        (:func:`pipeline.policy.model.model_products`, in its order), and their ids."""

    def ranked_rules(
        self, rules: Any, itemsets: Any, segment: str, placement: str | None, model: ItemModel | None
    ) -> Ranked:
        """Rules joined to the catalog, margin-filtered, weighted by ``model``, scored and ranked within
        their groups."""

    def post_purchase_rules(self, baskets: Any, mine: MineConfig) -> tuple[Any, Any] | None:
        """Rules from each order to the customer's next one and their antecedents, or None."""

    def upsell_offers(self, baskets: Any, segment: str) -> Ranked | None:
        """Ranked up-sell offers of the segment, or None."""

    def recommendations(self, ranked: Ranked, run_id: str) -> Any:
        """The storefront's rows of ``ranked``: the best ``output.top_k`` of each group."""

    def rules_table(self, ranked: Ranked) -> Any:
        """Every ranked rule, in the layout of ``rules.parquet``."""

    def bundles(self, itemsets: Any, segment: str) -> Any | None:
        """The segment's bundles, or None without a catalog."""

    def products(self, baskets: Any, segment: str) -> Any:
        """Every product sold in the segment with its category and basket count."""

    def customer_lists(self, baskets: Any, run_id: str, top_k: int, depth: int) -> tuple[Any, Any]:
        """Each customer's ``top_k`` most bought products (``BUY_AGAIN_ORDER``; ``buy_again.parquet``) and
        their ``depth`` most bought (``history.parquet``), from one ranking; 0 gives an empty list."""
