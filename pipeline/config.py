"""The one validated, frozen configuration object every stage receives.

A run is configured by a TOML file (``configs/default.toml`` documents every
key), then by ``--set section.key=value`` overrides and CLI flags. The result
is validated once, here, with messages that name the key, and passed
explicitly to each stage: no globals, no environment reads.

Relative paths in a config file are resolved against the file's own folder, so
a cron job gives the same answer whatever its working directory.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError

CANONICAL_COLUMNS: tuple[str, ...] = (
    "order_id",
    "product_id",
    "quantity",
    "unit_price",
    "timestamp",
    "customer_id",
    "segment",
    "product_name",
)
MANDATORY_COLUMNS: tuple[str, ...] = ("order_id", "product_id")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        """TOML has no null: ``"none"`` switches off a key whose default is on (max_len = "none")."""
        if isinstance(value, str) and value.strip().lower() == "none":
            return None
        return value


class ColumnMap(_Section):
    """Canonical column -> the column's name in the export.

    ``None`` means "use the canonical name if the file has it". A name given
    here must exist in the file.
    """

    order_id: str | None = None
    product_id: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    timestamp: str | None = None
    customer_id: str | None = None
    segment: str | None = None
    #: The line's product description: the product's name where the catalog gives none (variants, products.parquet).
    product_name: str | None = None


class CatalogColumnMap(_Section):
    """Catalog column -> the column's name in the catalog file."""

    product_id: str | None = None
    name: str | None = None
    category: str | None = None
    price: str | None = None
    cost: str | None = None
    margin_rate: str | None = None
    variant_group: str | None = None


class InputConfig(_Section):
    """Where the transaction exports are and how to read them."""

    paths: tuple[str, ...] = ()
    format: Literal["lines", "baskets"] = "lines"
    delimiter: str = Field(",", min_length=1)
    encoding: str = "utf-8"
    sheet: str | int = 0
    timestamp_format: str | None = None
    columns: ColumnMap = ColumnMap()

    def header_names(self) -> tuple[str, str] | None:
        """The file's names for the order and product id columns; None for basket files (no header).

        A line whose ids are exactly these is a header repeated inside the data
        (exports concatenated with their headers), rejected as ``repeated_header``.
        """
        if self.format == "baskets":
            return None
        return (self.columns.order_id or "order_id", self.columns.product_id or "product_id")


class CatalogConfig(_Section):
    """The product catalog: names, categories, prices and costs."""

    path: str | None = None
    delimiter: str = Field(",", min_length=1)
    encoding: str = "utf-8"
    columns: CatalogColumnMap = CatalogColumnMap()
    missing: Literal["keep", "drop"] = "keep"


class CleanConfig(_Section):
    """Which order lines are rejected, and how ids are normalised."""

    cancel_prefixes: tuple[str, ...] = ("C",)
    drop_nonpositive_quantity: bool = True
    drop_negative_price: bool = True
    drop_zero_price: bool = True
    non_product_ids: tuple[str, ...] = ()
    non_product_pattern: str | None = None
    id_case: Literal["upper", "lower", "keep"] = "upper"
    drop_duplicates: bool = True
    window_days: int | None = Field(None, ge=1)
    max_basket_size: int | None = Field(100, ge=1)
    max_invalid_share: float = Field(0.05, ge=0, le=1)

    @field_validator("non_product_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class MineConfig(_Section):
    """Frequent-itemset mining thresholds and engine."""

    min_support: float = Field(0.01, gt=0, le=1)
    min_count: int | None = Field(None, ge=1)
    engine: Literal["auto", "count", "fim", "mlxtend"] = "auto"
    algorithm: Literal["fpgrowth", "apriori"] = "fpgrowth"
    max_len: int | None = Field(3, ge=2)
    max_itemsets: int | None = Field(5_000_000, ge=1)

    @model_validator(mode="after")
    def _countable(self) -> MineConfig:
        """``count`` counts pairs and triples only: itemsets of more products need a growth engine."""
        if self.engine == "count" and (self.max_len is None or self.max_len > 3):
            raise ValueError(
                f"mine.engine = 'count' counts itemsets of 2 or 3 products, and mine.max_len is "
                f"{self.max_len or 'none'}; set mine.max_len to 2 or 3, or use 'auto' or 'fim'"
            )
        return self


class RulesConfig(_Section):
    """Association-rule filters."""

    min_confidence: float = Field(0.1, ge=0, le=1)
    min_lift: float = Field(1.0, ge=0)
    drop_redundant: bool = True
    max_candidates: int | None = Field(20_000_000, ge=1)
    max_p_value: float | None = Field(None, gt=0, le=1)
    p_adjust: Literal["holm", "bh"] | None = "holm"


class PairsConfig(_Section):
    """The product page's rules: every pair of products bought together often enough, by enough customers."""

    enabled: bool = True
    #: Baskets that must hold both products (an absolute count: pairs are cheap at any support).
    min_count: int = Field(3, ge=1)
    #: Distinct customers behind those baskets (a basket without customer id is its own customer).
    min_customers: int = Field(2, ge=1)


class MarginConfig(_Section):
    """Margin filters on the recommended (consequent) product."""

    min_margin: float | None = 0.0
    min_margin_rate: float | None = Field(None, le=1)


class ModelConfig(_Section):
    """The item model that orders the offers under ``rank.by = "model_margin"`` (pipeline.policy.model)."""

    #: EASE's ridge penalty: larger trusts rare pairs less.
    l2: float = Field(1.0, gt=0)
    #: Each product's column of the basket matrix is scaled by its basket count ** -popularity_power
    #: before the regression: best-sellers' co-occurrences count less (0: plain EASE).
    popularity_power: float = Field(0.25, ge=0, le=1)
    #: Products in the dense model, those in the most baskets (memory about 32 x max_items^2 bytes).
    max_items: int = Field(5000, ge=1, le=15_000)
    #: Weights kept (and published in neighbours.parquet) per product, the strongest by absolute value.
    neighbours: int = Field(100, ge=1, le=10_000)
    #: A known customer's cart block adds history_weight x ln(1 + their orders that held the offered
    #: product) to the cart's weights towards it (0: the cart alone).
    history_weight: float = Field(0.1, ge=0, le=10)
    #: Products per customer for it, their most bought (history.parquet).
    history_products: int = Field(50, ge=1, le=1000)


#: ``rank.cart_variants``: what the cart block does with a colour or size variant of a product of the cart.
CartVariants = Literal["not_first", "never"]
#: The scores that order offers (pipeline.policy.offers.offer_scores).
RankBy = Literal["model_margin", "incremental_margin", "expected_margin", "similar_margin", "lift", "confidence"]


class RankConfig(_Section):
    """How recommendations for one antecedent are ordered."""

    by: RankBy = "model_margin"
    #: The score of a product page's offers (one product in, placement "product"); "same": ``by``'s. The item
    #: model weighs a product against the rest of a cart, which a page does not have: measured on held-out
    #: orders, a page ordered by the offer's confidence x margin ** margin_power sells more (docs/evaluation.md).
    page_by: RankBy | Literal["same"] = "expected_margin"
    #: The weight of margin in the margin-based scores: probability x margin ** margin_power. Chosen on a
    #: validation period by evaluate.kept_hits's rule (docs/evaluation.md).
    margin_power: float = Field(0.05, ge=0, le=4)
    #: The margin weight of a product page's scores (``page_by``); None: ``margin_power``. A page's curve of
    #: hits against margin is flatter than a cart's, so the same rule may choose a larger weight there.
    page_margin_power: float | None = Field(0.1, ge=0, le=4)
    #: No product page (nor follow-up e-mail) offers a colour or size variant of its product; the cart block
    #: follows cart_variants (pipeline.policy.variants).
    drop_variants: bool = True
    #: Under drop_variants, the cart block's variants of the cart's products: "not_first" offers them after a
    #: first offer that is not one (wholesale buyers take several colours), "never" does not offer them.
    cart_variants: CartVariants = "not_first"

    @model_validator(mode="after")
    def _page_model(self) -> RankConfig:
        if self.page_by == "model_margin" and self.by != "model_margin":
            raise ValueError('page_by = "model_margin" needs the item model: by = "model_margin"')
        return self

    @property
    def page(self) -> RankBy:
        """The score of a product page's offers: ``page_by``, or ``by`` when that is "same"."""
        return self.by if self.page_by == "same" else self.page_by

    @property
    def page_power(self) -> float:
        """The margin weight of a product page's scores: ``page_margin_power``, else ``margin_power``."""
        return self.margin_power if self.page_margin_power is None else self.page_margin_power

    @property
    def paged(self) -> bool:
        """Whether product pages are ordered otherwise than the cart block: their own score or margin weight."""
        return self.page != self.by or self.page_power != self.margin_power


class OutputConfig(_Section):
    """Where runs are written and how many offers each antecedent gets."""

    dir: str = "output"
    top_k: int = Field(3, ge=1, le=100)
    keep_runs: int = Field(7, ge=1)


class SegmentConfig(_Section):
    """Mining per customer segment (country, B2B/B2C), with a fallback to the global rules."""

    column: str | None = None
    min_baskets: int = Field(500, ge=1)
    min_support: float | None = Field(None, gt=0, le=1)


class PostPurchaseConfig(_Section):
    """Rules from one order of a customer to their next order: the follow-up e-mail."""

    enabled: bool = True
    max_days: int = Field(30, ge=1)
    min_confidence: float = Field(0.05, ge=0, le=1)
    #: Each customer's own most bought products (buy_again.parquet), for the follow-up e-mail.
    buy_again: bool = True


class UpsellConfig(_Section):
    """Pricier alternatives in the same category."""

    enabled: bool = True
    min_price_step: float = Field(0.10, ge=0)
    max_price_step: float = Field(0.25, gt=0)
    min_buyers: int = Field(5, ge=1)


class BundlesConfig(_Section):
    """Product bundles from strongly associated itemsets."""

    enabled: bool = True
    max_size: int = Field(4, ge=2)
    min_all_confidence: float = Field(0.3, ge=0, le=1)
    discount: float = Field(0.10, ge=0, lt=1)
    top_n: int = Field(200, ge=1)


class GatesConfig(_Section):
    """Quality gates: a run that fails one is written but not published."""

    enabled: bool = True
    min_baskets: int = Field(100, ge=0)
    max_reject_share: float = Field(0.5, ge=0, le=1)
    min_rules: int = Field(1, ge=0)
    #: Largest share of the published run's baskets that may be missing ("is the export complete?").
    max_basket_drop: float | None = Field(0.5, ge=0, le=1)
    max_rule_change: float | None = Field(0.5, ge=0)
    max_product_change: float | None = Field(0.5, ge=0, le=1)


class EvaluateConfig(_Section):
    """The time-based hold-out of ``basket evaluate``."""

    cutoff: datetime | date | None = None
    test_share: float = Field(0.2, gt=0, lt=1)
    max_orders: int | None = Field(5000, ge=1)
    #: The numbers of offers shown that every strategy is measured at, in one pass.
    k: tuple[int, ...] = Field((1, 3, 5, 10), min_length=1)
    #: Resamples of the test orders for the 95% intervals of the hit rate; 0 = none.
    bootstrap: int = Field(200, ge=0, le=10_000)
    #: How ``basket tune --evaluate`` chooses ``rank.margin_power`` (and a page's ``rank.page_margin_power``):
    #: the most margin among the weights whose hit rate keeps this share of weight 0's. Relevance first: the
    #: margin breaks near-ties between relevant offers, it does not buy margin with offers that no longer sell
    #: (docs/evaluation.md).
    kept_hits: float = Field(0.99, gt=0, le=1)

    @field_validator("k")
    @classmethod
    def _k(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(k < 1 or k > 100 for k in value):
            raise ValueError("every k must be between 1 and 100")
        return tuple(sorted(set(value)))

    @field_validator("cutoff", mode="before")
    @classmethod
    def _cutoff(cls, value: Any) -> Any:
        return _date_or_instant(value)


class SparkConfig(_Section):
    """Where and how ``engine = "spark"`` runs: the Spark master, the app name, any Spark setting."""

    #: None ("none"): the master that ``spark-submit --master`` gives.
    master: str | None = Field("local[*]", min_length=1)
    app_name: str = Field("basket", min_length=1)
    #: ``FPGrowth.numPartitions``: the partitions of the conditional FP-trees (unset: the input's).
    num_partitions: int | None = Field(None, ge=1)
    #: Any Spark setting, e.g. ``"spark.executor.memory" = "8g"``; values are passed as text.
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


class Config(_Section):
    """Everything one run needs. Build it with :func:`load_config`."""

    #: ``local``: pandas and pyfim on this machine; ``spark``: every stage on Apache Spark.
    engine: Literal["local", "spark"] = "local"
    input: InputConfig = InputConfig()
    catalog: CatalogConfig = CatalogConfig()
    clean: CleanConfig = CleanConfig()
    mine: MineConfig = MineConfig()
    rules: RulesConfig = RulesConfig()
    pairs: PairsConfig = PairsConfig()
    margin: MarginConfig = MarginConfig()
    rank: RankConfig = RankConfig()
    model: ModelConfig = ModelConfig()
    output: OutputConfig = OutputConfig()
    segment: SegmentConfig = SegmentConfig()
    post_purchase: PostPurchaseConfig = PostPurchaseConfig()
    upsell: UpsellConfig = UpsellConfig()
    bundles: BundlesConfig = BundlesConfig()
    gates: GatesConfig = GatesConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    spark: SparkConfig = SparkConfig()
    as_of: datetime | date | None = None
    #: Gigabytes the local engine may use: a run estimated to need more is refused before reading.
    memory_budget: float | None = Field(None, gt=0)

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of(cls, value: Any) -> Any:
        return _date_or_instant(value)

    @model_validator(mode="before")
    @classmethod
    def _segment_column(cls, raw: Any) -> Any:
        """``segment.column`` names the export's segment column: it is read as ``input.columns.segment``."""
        if not isinstance(raw, dict):
            return raw
        column = (raw.get("segment") or {}).get("column")
        if column is None or str(column).strip().lower() == "none":
            return raw
        columns = dict((raw.get("input") or {}).get("columns") or {})
        if columns.get("segment") not in (None, column):
            raise ValueError(
                f"segment.column = {column!r} but input.columns.segment = {columns['segment']!r}; "
                "set one of them (segment.column switches mining per segment on)"
            )
        columns["segment"] = column
        return {**raw, "input": {**(raw.get("input") or {}), "columns": columns}}

    @model_validator(mode="after")
    def _upsell_band(self) -> Config:
        if self.upsell.min_price_step >= self.upsell.max_price_step:
            raise ValueError("upsell.min_price_step must be below upsell.max_price_step")
        return self

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON form: equal configs hash equal."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def _date_or_instant(value: Any) -> Any:
    """'2011-11-30' is a day; '2011-11-30T00:00' an instant; 'none' is left for ``_none_word``."""
    if not isinstance(value, str) or value.strip().lower() == "none":
        return value
    if len(value.strip()) == 10:
        return date.fromisoformat(value.strip())
    return datetime.fromisoformat(value.strip())


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> Config:
    """Read a TOML config file, apply overrides, validate, return the frozen config.

    ``overrides`` are ``section.key=value`` strings (values parsed as TOML,
    falling back to a bare string); ``values`` maps dotted keys to Python
    values (the CLI's own flags). Later sources win: file, overrides, values.
    Raises :class:`ConfigError` naming the key for any invalid entry.
    """
    raw: dict[str, Any] = {}
    sources = []
    if path is not None:
        path = Path(path)
        sources.append(str(path))
        raw = _read_toml(path)
        _resolve_paths(raw, path.parent)
    overrides = list(overrides)
    if overrides:
        sources.append("--set")
    if values:
        sources.append("command-line options")
    source = " + ".join(sources) or "defaults"
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. mine.min_support=0.01")
        _set_dotted(raw, key.strip(), _parse_value(text.strip()), source="--set")
    for key, value in (values or {}).items():
        _set_dotted(raw, key, value, source="command line")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


#: A config file is a page of settings: anything larger is not one (``/dev/zero``, a data file by mistake).
MAX_CONFIG_BYTES = 1 << 20


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's settings; a clear error for a missing, special (FIFO, device), huge or invalid file."""
    try:
        # Opened without blocking, so a FIFO with no writer cannot hang the run; then checked to be a file.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ConfigError(f"config file {path} is not a regular file (a FIFO, a device or a directory?)")
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a config file")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make the file's relative paths relative to the file's folder."""

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and not Path(value).is_absolute():
            return os.path.normpath(base / value)
        return value

    section = raw.get("input")
    if isinstance(section, dict) and isinstance(section.get("paths"), list):
        section["paths"] = [resolve(p) for p in section["paths"]]
    for name, key in (("catalog", "path"), ("output", "dir")):
        section = raw.get(name)
        if isinstance(section, dict) and key in section:
            section[key] = resolve(section[key])


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(raw: dict[str, Any], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        key = ".".join(loc)
        if error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key{suggestion(loc)}")
        else:
            got = error.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {key}: {error['msg']}{shown}")
    return "\n".join(lines)


def suggestion(loc: list[str]) -> str:
    """' (did you mean ...?)' for an unknown key ``loc`` (section, name), from the fields of its section."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    if loc[-1] in model.model_fields:
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)" if close else ""
