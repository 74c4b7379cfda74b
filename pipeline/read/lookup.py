"""The published table in, what the storefront would show out: offers for a product or a cart.

These are the reads a shop makes against ``OUTPUT/latest``, done the way
``docs/output.md`` recommends: a Parquet filter on ``antecedent_key``, so only
the row groups that can hold the key are read.

For a cart, every subset of the cart of up to ``max_len - 1`` products is a
key; each candidate product not already in the cart keeps its best rule and,
with an item model (``rank.by = "model_margin"``), is scored for the whole
cart from ``neighbours.parquet`` (:func:`pipeline.policy.offers.cart_block`);
the best ``top_k`` are offered; category best sellers fill up a cart the
rules say little about. A segment that was not mined on its own
(too few baskets) is served the global (``*``) rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract.files import MANIFEST, latest_run
from pipeline.contract.manifest import Manifest, read_manifest
from pipeline.contract.vocabulary import ALL_SEGMENTS, CART, CROSS_SELL, KEY_SEPARATOR, POST_PURCHASE, PRODUCT
from pipeline.local.clean import normalise_ids
from pipeline.policy.model import ItemModel
from pipeline.policy.offers import cart_block
from pipeline.policy.variants import Keys, VariantIndex, catalog_variant_keys

#: Carts larger than this are cut to their first products: 2^n subsets grow fast.
MAX_CART_KEYS = 20_000


def run_manifest(output_dir: Path) -> Manifest:
    """The manifest of the run ``OUTPUT/latest`` points at, validated."""
    return read_manifest(latest_run(output_dir) / MANIFEST)


def offers_for_item(
    output_dir: Path,
    product_id: str,
    segment: str = ALL_SEGMENTS,
    limit: int | None = None,
    placement: str = PRODUCT,
    kind: str = CROSS_SELL,
) -> pd.DataFrame:
    """The ranked offers for one product: the product-page block (``kind="upsell"``:
    the up-sell block; ``placement="post_purchase"``: the follow-up e-mail)."""
    manifest = run_manifest(output_dir)
    (key,) = normalised_ids([product_id], manifest)
    table = _read(output_dir, [key], _segment(segment, manifest), [placement], kind)
    return table.head(limit or manifest.config.output.top_k).reset_index(drop=True)


def was_sold(output_dir: Path, product_id: str, segment: str = ALL_SEGMENTS) -> bool:
    """Whether the latest run's baskets hold ``product_id`` (as the run normalised ids)."""
    manifest = run_manifest(output_dir)
    (key,) = normalised_ids([product_id], manifest)
    filters = [("segment", "=", _segment(segment, manifest)), ("product_id", "=", key)]
    return pq.read_table(latest_run(output_dir) / "products.parquet", filters=filters).num_rows > 0


def offers_after_purchase(
    output_dir: Path,
    product_id: str,
    customer_id: str | None = None,
    segment: str = ALL_SEGMENTS,
    limit: int | None = None,
) -> pd.DataFrame:
    """The follow-up e-mail after buying ``product_id``: with ``customer_id``, the customer's own most
    bought products first (``source = "buy_again"``), then the post-purchase rules (``source = "rule"``),
    each product once. ``basket evaluate`` measures the mix against the rules alone (``docs/evaluation.md``)."""
    manifest = run_manifest(output_dir)
    limit = limit or manifest.config.output.top_k
    rules = offers_for_item(output_dir, product_id, segment, limit, placement=POST_PURCHASE).assign(source="rule")
    if customer_id is None:
        return rules
    table = _customer_rows(output_dir, "buy_again.parquet", customer_id).to_pandas()
    own = pd.DataFrame(
        {
            "consequent": table["product_id"],
            "consequent_name": table["product_name"],
            "orders": table["orders"],
            "source": "buy_again",
        }
    )
    both = pd.concat([own, rules], ignore_index=True).drop_duplicates("consequent")
    return both.head(limit).reset_index(drop=True)


def offers_for_cart(
    output_dir: Path,
    cart: Iterable[str],
    segment: str = ALL_SEGMENTS,
    limit: int | None = None,
    customer_id: str | None = None,
) -> pd.DataFrame:
    """The best offers for a cart of products: the cart block.

    Rules first: every cross-sell rule (placements ``product`` and ``cart``)
    whose antecedent lies inside the cart; each product not in the cart keeps
    its best rule (``source = "rule"``, ``antecedent`` is the part of the cart
    that triggered it), ordered for the whole cart by the item model and, with
    ``customer_id``, by what that customer bought before (``history.parquet``,
    ``model.history_weight``); under ``rank.drop_variants`` a colour or size
    variant of a product of the cart is never the first offer (not offered at
    all with ``rank.cart_variants = "never"``). When they give fewer than
    ``limit`` offers, the best sellers of the cart's categories fill up
    (``source = "category_best_seller"``), then the overall best sellers.
    """
    manifest = run_manifest(output_dir)
    segment = _segment(segment, manifest)
    limit = limit or manifest.config.output.top_k
    products = sorted(set(normalised_ids(cart, manifest)))
    max_len = manifest.config.mine.max_len or len(products) + 1
    keys: list[str] = []
    for size in range(1, min(len(products), max_len - 1) + 1):
        keys.extend(KEY_SEPARATOR.join(c) for c in combinations(products, size))
        if len(keys) > MAX_CART_KEYS:
            break
    table = _read(output_dir, keys, segment, [PRODUCT, CART], CROSS_SELL)
    table = table[~table["consequent"].isin(products)].assign(case=0)
    config = manifest.config
    model = _cart_model(output_dir, segment, products) if config.rank.by == "model_margin" else None
    if model is not None and customer_id is not None:
        table["bought"] = _history(output_dir, customer_id).reindex(table["consequent"]).fillna(0).to_numpy()
    scored = cart_block(
        table,
        np.zeros(len(products), dtype=np.int64),
        np.asarray(products, dtype=object),
        model,
        has_margins(manifest),
        config.rank.margin_power,
        limit,
        config.model.history_weight,
        _variants(output_dir, [*products, *table["consequent"]]) if config.rank.drop_variants else None,
        config.rank.cart_variants,
    )
    table = scored.drop(columns=["case", "bought"], errors="ignore").assign(source="rule")
    if len(table) < limit:
        fill = _best_sellers(
            output_dir, segment, products, set(table["consequent"]), limit - len(table), config.rank.drop_variants
        )
        table = pd.concat([table, fill], ignore_index=True)
    return table.reset_index(drop=True)


def has_margins(manifest: Manifest) -> bool:
    """Whether the run's offers were scored with margins (runs before schema 2.4: whether it had a catalog)."""
    known = manifest.counts.catalog_margins
    return manifest.config.catalog.path is not None if known is None else known > 0


def _cart_model(output_dir: Path, segment: str, cart: list[str]) -> ItemModel | None:
    """The item model's weights from the cart's products (``neighbours.parquet``), or None without them."""
    path = latest_run(output_dir) / "neighbours.parquet"
    if not path.exists():
        return None
    rows = pq.read_table(path, filters=[("segment", "=", segment), ("product_id", "in", cart or [""])])
    return ItemModel.from_table(rows)


def _variants(output_dir: Path, products: list[str]) -> VariantIndex:
    """The variant keys of ``products`` from the names and declared groups the run published."""
    return VariantIndex.of(products, published_variants(latest_run(output_dir), products))


def published_variants(run_dir: Path, products: list[str] | None = None) -> dict[str, Keys]:
    """Variant keys of the run's products (or of ``products`` among them), from the ids, names and
    declared groups it published (``products.parquet``)."""
    filters = None if products is None else [("product_id", "in", products or [""])]
    rows = pq.read_table(run_dir / "products.parquet", filters=filters).to_pandas().drop_duplicates("product_id")
    return catalog_variant_keys(rows["product_id"], rows["name"], rows["variant_group"])


def _history(output_dir: Path, customer_id: str) -> pd.Series:
    """The customer's orders per product they bought (``history.parquet``; empty for runs before 2.6)."""
    if not (latest_run(output_dir) / "history.parquet").exists():
        return pd.Series(dtype=np.int64)
    rows = _customer_rows(output_dir, "history.parquet", customer_id, ["product_id", "orders"])
    return pd.Series(rows["orders"].to_numpy(), index=rows["product_id"].to_pylist(), dtype=np.int64)


def _customer_rows(output_dir: Path, name: str, customer_id: str, columns: list[str] | None = None) -> pa.Table:
    """One customer's rows of a per-customer table of the latest run (``buy_again``, ``history``)."""
    filters = [("customer_id", "=", str(customer_id).strip())]
    return pq.read_table(latest_run(output_dir) / name, filters=filters, columns=columns)


def _best_sellers(
    output_dir: Path, segment: str, cart: list[str], offered: set[str], n: int, drop_variants: bool
) -> pd.DataFrame:
    """The ``n`` best sellers of the cart's categories (then of all), not in the cart nor offered yet, and
    with ``drop_variants`` (``rank.drop_variants``) no colour or size variant of a product of the cart."""
    products = pq.read_table(latest_run(output_dir) / "products.parquet", filters=[("segment", "=", segment)])
    products = products.to_pandas()
    categories = set(products.loc[products["product_id"].isin(cart), "category"].dropna())
    products["in_cart_category"] = products["category"].isin(categories)
    shown = ~products["product_id"].isin([*cart, *offered]).to_numpy()
    if drop_variants:
        ids = products["product_id"].to_numpy(dtype=object)
        index = VariantIndex.of([*cart, *ids], catalog_variant_keys(ids, products["name"], products["variant_group"]))
        nobody = np.zeros(ids.size, dtype=np.int64)
        shown &= ~index.cart_variants(np.zeros(len(cart), dtype=np.int64), np.asarray(cart, dtype=object), nobody, ids)
    products = products[shown]
    products = products.sort_values(
        ["in_cart_category", "baskets", "product_id"], ascending=[False, False, True], kind="stable"
    ).head(n)
    return pd.DataFrame(
        {
            "segment": segment,
            "consequent": products["product_id"].to_numpy(),
            "consequent_name": products["name"].to_numpy(),
            "source": ["category_best_seller" if c else "best_seller" for c in products["in_cart_category"]],
        }
    )


def rules_table(
    output_dir: Path,
    item: str | None = None,
    min_lift: float | None = None,
    sort: str = "score",
    limit: int = 20,
    segment: str = ALL_SEGMENTS,
) -> pd.DataFrame:
    """The latest run's rules, optionally those involving ``item``, with lift above ``min_lift``, best first."""
    manifest = run_manifest(output_dir)
    filters: list[tuple[str, str, Any]] = [("segment", "=", segment)]
    if min_lift is not None:
        filters.append(("lift", ">", min_lift))
    rules = pq.read_table(latest_run(output_dir) / "rules.parquet", filters=filters).to_pandas()
    if item is not None:
        (product,) = normalised_ids([item], manifest)
        involved = rules["antecedent"].map(lambda a: product in a) | (rules["consequent"] == product)
        rules = rules[involved]
    return rules.sort_values([sort, "antecedent_key", "consequent"], ascending=[False, True, True], kind="stable").head(
        limit
    )


def _segment(segment: str, manifest: Manifest) -> str:
    """The segment's own rows where it was mined, else the global ones."""
    return segment if segment in manifest.counts.segments else ALL_SEGMENTS


def normalised_ids(ids: Iterable[str], manifest: Manifest) -> list[str]:
    """Ids as the run normalised them (trimmed, cased), so ' 85123a' finds 85123A."""
    case = manifest.config.clean.id_case
    return [str(i) for i in normalise_ids(pd.Series(list(ids), dtype=object), case).dropna()]


def _read(output_dir: Path, keys: list[str], segment: str, placements: list[str], kind: str) -> pd.DataFrame:
    path = latest_run(output_dir) / "recommendations.parquet"
    filters = [
        ("segment", "=", segment),
        ("placement", "in", placements),
        ("kind", "=", kind),
        ("antecedent_key", "in", keys or [""]),
    ]
    return pq.read_table(path, filters=filters).to_pandas()
