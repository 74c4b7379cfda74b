"""What an offer is worth and which offers a shopper sees: margins, scores, order and top-k.

The consequent's catalog margin decides whether an offer is worth showing
(``margin.min_margin``, ``margin.min_margin_rate``: :func:`margin_too_low`) and
how it ranks. Scores (``rank.by``; a product page's by ``rank.page_by``:
:func:`placement_scores`, :func:`offer_scores`):

==================== ===========================================================
model_margin         the item model's weight x margin (:mod:`pipeline.policy.model`:
(default)            EASE over the whole co-occurrence matrix; a rule's weight
                     sums its antecedent products' weights). Rows the model does
                     not cover (post-purchase rules) score as incremental_margin.
incremental_margin   (confidence - support(consequent)) x margin: the margin the
                     offer adds over what the customer would have bought anyway.
                     The first factor is the uplift in purchase probability that
                     the antecedent brings (relevance); the second is the value.
expected_margin      confidence x margin
similar_margin       Jaccard similarity x margin: SAR's item similarity, the
                     baskets holding both over those holding either; unlike
                     confidence it does not favour best-sellers
lift                 lift
confidence           confidence
==================== ===========================================================

Without a catalog, margin-based scores fall back to their probability factor
(``confidence - support(consequent)``, resp. ``confidence``). With
``catalog.missing = "keep"``, rules recommending a product the catalog lacks
keep a null margin and a null margin-based score, and rank after every scored
offer of their antecedent.

Within each group (:data:`pipeline.contract.vocabulary.GROUP`) offers are
numbered from 1 in :data:`RULE_ORDER` (:data:`UPSELL_ORDER` for up-sells);
the best ``output.top_k`` of each group are published (:func:`shown`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.arrays import lexicographic_order
from pipeline.config import CartVariants, MarginConfig, RankConfig
from pipeline.contract.vocabulary import PRODUCT
from pipeline.policy.model import ItemModel
from pipeline.policy.variants import VariantIndex, not_first

#: How rule offers are ordered within a group: (column, ascending), nulls last.
RULE_ORDER: tuple[tuple[str, bool], ...] = (
    ("score", False),
    ("confidence", False),
    ("lift", False),
    ("consequent", True),
)
#: How the cart block orders the offers that match a cart (each product keeps its first): best score
#: first, ties to the more confident, then the more specific rule, then by product id.
CART_ORDER: tuple[tuple[str, bool], ...] = (
    ("score", False),
    ("confidence", False),
    ("lift", False),
    ("antecedent_size", False),
    ("consequent", True),
)
#: How a customer's buy-again list is ordered: the products of most of their orders, then the most recent.
BUY_AGAIN_ORDER: tuple[tuple[str, bool], ...] = (("orders", False), ("last_bought", False), ("product_id", True))
#: How up-sell offers are ordered within a group.
UPSELL_ORDER: tuple[tuple[str, bool], ...] = (("score", False), ("consequent", True))


def margin_too_low(margin: np.ndarray, price: np.ndarray, config: MarginConfig) -> np.ndarray:
    """Offers whose consequent earns less than ``margin.min_margin`` or ``margin.min_margin_rate``.

    An unknown margin or price (null) is not "too low": the catalog policy
    (``catalog.missing``) decides about products the catalog lacks.
    """
    margin = np.asarray(margin, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    low = np.zeros(margin.shape, dtype=bool)
    if config.min_margin is not None:
        low |= margin < config.min_margin
    if config.min_margin_rate is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(price > 0, margin / price, np.nan)
        low |= rate < config.min_margin_rate
    return low


def expected_margin(confidence: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Confidence x margin: what showing the offer earns per view, on average."""
    return np.asarray(confidence, dtype=np.float64) * np.asarray(margin, dtype=np.float64)


def offer_scores(
    by: str,
    confidence: np.ndarray,
    consequent_support: np.ndarray,
    lift: np.ndarray,
    margin: np.ndarray,
    has_margins: bool,
    margin_power: float = 1.0,
    jaccard: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """The ranking score of each offer under ``rank.by`` (see the module's table).

    ``margin_power`` (``rank.margin_power``, alpha) weighs the margin in the
    margin-based scores, ``probability x margin ** alpha``: 0 ranks by the
    probability alone, 1 by the margin earned; between, a trade-off chosen on
    held-out orders (``docs/evaluation.md``).
    """
    if by == "lift":
        return np.asarray(lift, dtype=np.float64)
    probability = np.asarray(confidence, dtype=np.float64)
    if by == "confidence":
        return probability
    if by == "model_margin" and weight is not None:
        probability = np.asarray(weight, dtype=np.float64)
    elif by in ("incremental_margin", "model_margin"):
        probability = probability - np.asarray(consequent_support, dtype=np.float64)
    if by == "similar_margin":
        probability = np.asarray(jaccard, dtype=np.float64)
    return valued(probability, margin, has_margins, margin_power)


def placement_scores(
    rank: RankConfig,
    placement: np.ndarray,
    confidence: np.ndarray,
    consequent_support: np.ndarray,
    lift: np.ndarray,
    margin: np.ndarray,
    has_margins: bool,
    jaccard: np.ndarray,
    weight: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each offer's score where it is published, and its score in the cart block.

    The first: ``rank.page_by``'s on a product page (``placement`` ``product``), ``rank.by``'s elsewhere
    (the cart block, the follow-up e-mail); the second: ``rank.by``'s everywhere, which orders a page's
    offers as the cart block's candidates (:func:`cart_candidates`). At ``rank.margin_power``, a page's at
    ``rank.page_power``. Both engines score every rule through this one function.
    """
    measures = (confidence, consequent_support, lift, margin, has_margins)
    scores = offer_scores(rank.by, *measures, rank.margin_power, jaccard, weight=weight)
    if not rank.paged:
        return scores, scores
    page = np.asarray(placement, dtype=object) == PRODUCT
    paged = offer_scores(rank.page, *measures, rank.page_power, jaccard, weight=weight)
    return np.where(page, paged, scores), scores


def cart_candidates(page_rank: np.ndarray, cart_rank: np.ndarray, top_k: int) -> np.ndarray:
    """The product-page offers that are also published as ``cart`` rows of their one product.

    When ``rank.page_by`` orders a page, its ``top_k`` (``page_rank``) may leave out offers that
    ``rank.by`` ranks among the first ``top_k`` (``cart_rank``): the cart block draws its candidates from
    the published rows, so those become ``cart`` rows of the product, ranked by ``rank.by`` with its
    variants there. The page keeps the offers that sell on a page; a cart keeps the candidates the item
    model judges best with the rest of the cart.
    """
    return ~shown(page_rank, top_k) & shown(cart_rank, top_k)


def valued(probability: np.ndarray, margin: np.ndarray, has_margins: bool, margin_power: float) -> np.ndarray:
    """``probability x margin ** margin_power``; the probability alone when the catalog knows no margin
    (:func:`pipeline.local.catalog.knows_margins`)."""
    if not has_margins:
        return np.asarray(probability, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(probability, dtype=np.float64) * np.power(np.asarray(margin, dtype=np.float64), margin_power)


def cart_block(
    offers: pd.DataFrame,
    case: np.ndarray,
    product: np.ndarray | pd.Categorical,
    model: ItemModel | None,
    has_margins: bool,
    margin_power: float,
    k: int,
    history_weight: float = 0.0,
    variants: VariantIndex | None = None,
    cart_variants: CartVariants = "not_first",
) -> pd.DataFrame:
    """The cart block: each cart's best ``k`` offers, from the rule offers its products trigger.

    ``offers`` are the offers (rows of ``recommendations``, with a ``case``
    column naming their cart) whose antecedent lies inside the cart and whose
    consequent does not; the cart of case ``c`` holds ``product[case == c]``.
    Each offered product keeps its best rule (:data:`CART_ORDER`); with an
    item model (``rank.by = "model_margin"``) it is then scored for the whole
    cart, ``sum of the cart's weights towards it x margin ** margin_power``
    (:meth:`~pipeline.policy.model.ItemModel.cart_weights`), the rule's own
    score without one. Where the cart's customer is known, ``offers`` carry
    ``bought``, their orders that held the offered product (``history.parquet``):
    the weight gains ``history_weight x ln(1 + bought)`` (``model.history_weight``),
    so among the offers the cart allows, what this customer buys again rises.
    With ``variants`` (under ``rank.drop_variants``) an offer that is a colour
    or size variant of any product of its cart, not only of the part of the
    cart that triggered its rule, is never the first (``cart_variants =
    "not_first"``: :func:`pipeline.policy.variants.not_first`) or dropped
    (``"never"``).
    The storefront's lookup and ``basket evaluate`` both call this.
    """
    offers = sorted_by(offers, [("case", True), *CART_ORDER]).drop_duplicates(["case", "consequent"])
    if variants is not None:
        offered = _products(offers["consequent"])
        variant = variants.cart_variants(case, product, offers["case"].to_numpy(dtype=np.int64), offered)
        offers = offers[~variant] if cart_variants == "never" else offers.assign(_variant=variant)
    if model is not None:
        weight = model.cart_weights(
            case, product, offers["case"].to_numpy(dtype=np.int64), _products(offers["consequent"])
        )
        if history_weight and "bought" in offers:
            weight = weight + history_weight * np.log1p(offers["bought"].to_numpy(dtype=np.float64))
        offers = offers.assign(
            score=valued(weight, offers["consequent_margin"].to_numpy(dtype=np.float64), has_margins, margin_power)
        )
        offers = sorted_by(offers, [("case", True), *CART_ORDER])
    if "_variant" in offers:
        lead = not_first(offers["case"].to_numpy(dtype=np.int64), offers.pop("_variant").to_numpy(dtype=bool))
        offers = offers.take(lead).reset_index(drop=True)
    return offers[offers.groupby("case", sort=False).cumcount().to_numpy() < k]


def _products(column: pd.Series) -> np.ndarray | pd.Categorical:
    """Product ids as the model looks them up: a categorical column (``basket evaluate``'s) as it is."""
    values = column.array
    return values if isinstance(values, pd.Categorical) else column.to_numpy(dtype=object)


def sorted_by(frame: pd.DataFrame, order: list[tuple[str, bool]]) -> pd.DataFrame:
    """``frame`` sorted by ``order`` ((column, ascending) pairs), stable, missing values last: as pandas'
    ``sort_values`` sorts it (a property test checks), at numpy's speed."""
    keys = [_sort_key(frame[column], ascending) for column, ascending in order]
    return frame.take(lexicographic_order(keys)).reset_index(drop=True)


def _sort_key(values: pd.Series, ascending: bool) -> np.ndarray:
    """One column as a float key in its sort direction: a missing value NaN (last either way), text and
    categories by their rank in text (category) order."""
    array = values.array
    if isinstance(array, pd.Categorical):
        codes = array.codes
    elif pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        key = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return key if ascending else -key
    else:
        codes = pd.factorize(values, sort=True)[0]
    key = codes.astype(np.float64)
    key[codes < 0] = np.nan
    return key if ascending else -key


def shown(rank: np.ndarray, top_k: int) -> np.ndarray:
    """Offers the storefront shows: the first ``output.top_k`` of each group."""
    return np.asarray(rank) <= top_k
