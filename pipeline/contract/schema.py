"""The output contract: one pyarrow schema per published table, declared once.

Every table is cast to its schema before it is written, even when it is
empty, so a night with no rules still produces files of the same shape.
``docs/output.md`` documents each column; bump :data:`SCHEMA_VERSION` as it
says (major: a column removed, renamed or retyped; minor: a column added).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

SCHEMA_VERSION = "2.9"

#: The pandas dtype of every id and text column inside the pipeline: pyarrow
#: strings with ``pd.NA`` for missing (pandas 3's default ``str`` uses NaN).
TEXT = pd.StringDtype(storage="pyarrow", na_value=pd.NA)


def text_column(values: Any, length: int) -> pd.api.extensions.ExtensionArray:
    """A ``TEXT`` column: ``values`` (one per row), or one value repeated ``length`` times."""
    if np.ndim(values):
        return pd.array(np.asarray(values, dtype=object), dtype=TEXT)
    return pd.array(np.full(length, values, dtype=object), dtype=TEXT)


_ITEMS = pa.list_(pa.string())

#: The columns an offer shares between ``rules`` and ``recommendations``.
_OFFER_FIELDS = [
    pa.field("segment", pa.string(), nullable=False),
    pa.field("placement", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("antecedent", _ITEMS, nullable=False),
    pa.field("antecedent_key", pa.string(), nullable=False),
    pa.field("antecedent_size", pa.int32(), nullable=False),
    pa.field("consequent", pa.string(), nullable=False),
    pa.field("consequent_name", pa.string()),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("support", pa.float64(), nullable=False),
    pa.field("confidence", pa.float64(), nullable=False),
    pa.field("lift", pa.float64()),
    pa.field("pair_count", pa.int64(), nullable=False),
    pa.field("consequent_margin", pa.float64()),
    pa.field("expected_margin", pa.float64()),
    pa.field("score", pa.float64()),
    pa.field("model_weight", pa.float64()),
]

RECOMMENDATIONS = pa.schema([*_OFFER_FIELDS, pa.field("run_id", pa.string(), nullable=False)])

RULES = pa.schema(
    [
        *_OFFER_FIELDS,
        pa.field("antecedent_count", pa.int64(), nullable=False),
        pa.field("consequent_count", pa.int64(), nullable=False),
        pa.field("leverage", pa.float64(), nullable=False),
        pa.field("conviction", pa.float64()),
        pa.field("all_confidence", pa.float64(), nullable=False),
        pa.field("kulczynski", pa.float64(), nullable=False),
        pa.field("jaccard", pa.float64(), nullable=False),
        pa.field("certainty", pa.float64()),
        pa.field("zhang", pa.float64()),
        pa.field("p_value", pa.float64()),
        pa.field("p_value_adjusted", pa.float64()),
        pa.field("consequent_price", pa.float64()),
    ]
)

ITEMSETS = pa.schema(
    [
        pa.field("itemset", _ITEMS, nullable=False),
        pa.field("itemset_key", pa.string(), nullable=False),
        pa.field("length", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("support", pa.float64(), nullable=False),
    ]
)

REJECTS = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_row", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("order_id", pa.string()),
        pa.field("product_id", pa.string()),
        pa.field("quantity", pa.string()),
        pa.field("unit_price", pa.string()),
        pa.field("timestamp", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("segment", pa.string()),
        pa.field("product_name", pa.string()),
    ]
)

BUNDLES = pa.schema(
    [
        pa.field("segment", pa.string(), nullable=False),
        pa.field("bundle", _ITEMS, nullable=False),
        pa.field("bundle_key", pa.string(), nullable=False),
        pa.field("size", pa.int32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("support", pa.float64(), nullable=False),
        pa.field("all_confidence", pa.float64(), nullable=False),
        pa.field("list_price", pa.float64(), nullable=False),
        pa.field("discount", pa.float64(), nullable=False),
        pa.field("bundle_price", pa.float64(), nullable=False),
        pa.field("bundle_margin", pa.float64(), nullable=False),
        pa.field("bundle_margin_rate", pa.float64(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
    ]
)

PRODUCTS = pa.schema(
    [
        pa.field("segment", pa.string(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("category", pa.string()),
        pa.field("baskets", pa.int64(), nullable=False),
        pa.field("category_rank", pa.int32(), nullable=False),
        pa.field("variant_group", pa.string()),
    ]
)

#: ``basket evaluate``: one row per strategy (see pipeline/flow/evaluate.py).
EVALUATION = pa.schema(
    [
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("placement", pa.string(), nullable=False),
        pa.field("k", pa.int32(), nullable=False),
        pa.field("carts", pa.int64(), nullable=False),
        pa.field("orders", pa.int64(), nullable=False),
        pa.field("hit_rate", pa.float64(), nullable=False),
        pa.field("hit_rate_low", pa.float64()),
        pa.field("hit_rate_high", pa.float64()),
        pa.field("order_hit_rate", pa.float64(), nullable=False),
        pa.field("precision", pa.float64(), nullable=False),
        pa.field("carts_with_offer", pa.float64(), nullable=False),
        pa.field("orders_with_offer", pa.float64(), nullable=False),
        pa.field("coverage", pa.float64(), nullable=False),
        pa.field("offers_per_cart", pa.float64(), nullable=False),
        pa.field("attach_value", pa.float64()),
        pa.field("attach_margin", pa.float64()),
        pa.field("aov", pa.float64()),
        pa.field("attach_value_share", pa.float64()),
    ]
)

#: The follow-up e-mail's personal block: each customer's own most bought products (since 2.2).
BUY_AGAIN = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("product_name", pa.string()),
        pa.field("orders", pa.int64(), nullable=False),
        pa.field("last_bought", pa.timestamp("us")),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

#: Each customer's most bought products with their order counts (since 2.6): the history a known
#: customer's cart block weighs in (model.history_weight; pipeline.policy.offers.cart_block).
HISTORY = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("orders", pa.int64(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
    ]
)

#: The item model's strongest weights per product (since 2.3): the storefront's cart block sums, over
#: the cart's products, their weights towards each offered product (pipeline.policy.model).
NEIGHBOURS = pa.schema(
    [
        pa.field("segment", pa.string(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("neighbour", pa.string(), nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

#: The product page's pairs (since 2.4): every two products bought together in at least ``pairs.min_count``
#: baskets (every basket, segment ``*``), with that count; the evidence ``basket explain`` cites for a pair
#: whose rule did not make it. Empty with ``pairs.enabled = false``.
PAIRS = pa.schema(
    [
        pa.field("product_a", pa.string(), nullable=False),
        pa.field("product_b", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("support", pa.float64(), nullable=False),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "recommendations": RECOMMENDATIONS,
    "rules": RULES,
    "itemsets": ITEMSETS,
    "pairs": PAIRS,
    "bundles": BUNDLES,
    "products": PRODUCTS,
    "buy_again": BUY_AGAIN,
    "history": HISTORY,
    "neighbours": NEIGHBOURS,
    "rejects": REJECTS,
}


def to_table(frame: pd.DataFrame, schema: pa.Schema, arrays: Mapping[str, pa.Array] | None = None) -> pa.Table:
    """Cast a frame to a published schema: exact columns, order and types.

    ``arrays`` supplies columns already built in Arrow (the list columns),
    aligned with the frame's rows. Raises ``KeyError`` for a missing or an
    extra column and ``pyarrow.ArrowInvalid`` for a value that does not fit.
    """
    arrays = dict(arrays or {})
    given = set(frame.columns) | set(arrays)
    if given != set(schema.names):
        raise KeyError(
            f"columns not in the schema: {sorted(given - set(schema.names))}; "
            f"missing: {sorted(set(schema.names) - given)}"
        )
    table = pa.Table.from_pandas(frame[[n for n in schema.names if n not in arrays]], preserve_index=False)
    for name, array in arrays.items():
        table = table.add_column(schema.get_field_index(name), name, array)
    return table.cast(schema)
