"""Why is (or isn't) a product offered for another? The published run in, an explanation out.

For an antecedent (one product, or several: a part of a cart) and a
consequent, :func:`explain` reads ``OUTPUT/latest`` and reports the rule's
counts and measures, its rank and placement, whether it made the top-k, and
which filter stopped it otherwise: too few baskets together (not a frequent
itemset), confidence or lift below the thresholds, redundant (a shorter
antecedent predicts at least as well), or removed after mining (margin,
catalog or significance; the manifest's ``rules_dropped`` counts those).
Everything is recomputed from the published itemsets through the rule policy
the engines use (:mod:`pipeline.policy.rules`), so the answer does not depend
on the rule having survived.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.contract.files import latest_run
from pipeline.contract.manifest import Manifest
from pipeline.contract.vocabulary import ALL_SEGMENTS, CART, KEY_SEPARATOR, POST_PURCHASE, PRODUCT
from pipeline.policy.offers import shown
from pipeline.policy.rules import KEPT, passed_filters, rule_verdicts, verdict_reason
from pipeline.policy.variants import variant_offers
from pipeline.read.lookup import has_margins, normalised_ids, published_variants, run_manifest


def explain(output_dir: Path, antecedent: list[str], consequent: str, segment: str = ALL_SEGMENTS) -> dict[str, Any]:
    """The facts behind ``antecedent -> consequent`` in the latest run, and a one-line verdict."""
    manifest = run_manifest(output_dir)
    run_dir = latest_run(output_dir)
    items = sorted(set(normalised_ids(antecedent, manifest)))
    (target,) = normalised_ids([consequent], manifest)
    key = KEY_SEPARATOR.join(items)
    config = manifest.config
    rules = pq.read_table(
        run_dir / "rules.parquet",
        filters=[("segment", "=", segment), ("antecedent_key", "=", key), ("consequent", "=", target)],
    ).to_pandas()
    facts: dict[str, Any] = {"antecedent": items, "consequent": target, "segment": segment, "run_id": manifest.run_id}
    facts["rules"] = [
        {
            **row,
            "filters_passed": passed_filters(config, post_purchase=row["placement"] == POST_PURCHASE),
            "ranked_by": _ranked_by(row, config, has_margins(manifest)),
        }
        for row in rules.drop(columns=["antecedent"]).to_dict(orient="records")
    ]
    top_k = config.output.top_k
    on_page = any(row["placement"] == PRODUCT for row in facts["rules"])
    verdicts = [
        f"rank {row['rank']} of the {row['placement']} offers"
        + ("" if shown(row["rank"], top_k) else f" (not shown: only the top {top_k} are published)")
        + ((_CART_CANDIDATE if on_page else _CART_VARIANT) if row["placement"] == CART and len(items) == 1 else "")
        for row in facts["rules"]
    ]
    if not any(row["placement"] in (PRODUCT, CART) for row in facts["rules"]):
        counts = _itemset_counts(run_dir)
        if len(items) == 1 and segment == ALL_SEGMENTS:
            counts.update(_pair_counts(run_dir, items[0], target))
        together = counts.get(tuple(sorted([*items, target])))
        facts.update(baskets=manifest.counts.baskets, min_count=manifest.counts.min_count, together=together)
        verdicts.append(
            "no basket rule: " + _no_basket_rule(counts, items, target, together, segment, manifest, run_dir)
        )
    offered = any(shown(row["rank"], top_k) for row in facts["rules"])
    facts["verdict"] = ("offered: " if offered else "not offered: ") + "; ".join(verdicts)
    return facts


#: Why a one-product antecedent has a cart offer that is also one of its page's: rank.by ranks it among the
#: first, rank.page_by does not (pipeline.policy.offers.cart_candidates).
_CART_CANDIDATE = (
    ", a candidate for a cart holding the antecedent: among the first by rank.by, which orders the cart block, "
    "though its product page, ordered by rank.page_by, does not show it"
)
#: Why a one-product antecedent has a cart offer: the offer is a colour or size variant of it.
_CART_VARIANT = (
    ", a colour or size variant of the antecedent: never on its product page, and in a cart holding it "
    "never the first offer (rank.cart_variants)"
)


#: The probability factor of each margin-based score (pipeline.policy.offers.offer_scores).
_FACTORS = {
    "incremental_margin": "(confidence - the offer's support)",
    "expected_margin": "confidence",
    "similar_margin": "Jaccard similarity",
}


def _ranked_by(row: dict[str, Any], config: Config, margins: bool) -> str:
    """What the rule's score is made of, in words (``margins``: whether the run's catalog knew any)."""
    # Runs before schema 2.9 (no rank.page_by in their manifest) ordered product pages by rank.by, and runs
    # before rank.page_margin_power weighed a page's margin by rank.margin_power.
    page = row["placement"] == PRODUCT and "page_by" in config.rank.model_fields_set
    paged_power = "page_margin_power" in config.rank.model_fields_set
    power = config.rank.page_power if page and paged_power else config.rank.margin_power
    value = f" x margin^{power:g}" if margins else ""
    by = config.rank.page if page else config.rank.by
    where = " (a product page's score: rank.page_by)" if page and config.rank.page_by != "same" else ""
    weight = row.get("model_weight")
    if by == "model_margin" and weight is not None and np.isfinite(weight):
        return (
            f"model_margin: item-model weight {weight:.4f} (how much the antecedent predicts this product once "
            f"everything else bought with them is accounted for, best-sellers discounted; model.l2 "
            f"{config.model.l2:g}, model.popularity_power {config.model.popularity_power:g}){value}{where}"
        )
    if by == "model_margin" and row["placement"] != POST_PURCHASE:
        return "model_margin: a product outside the item model (model.max_items): ranked after the weighted offers"
    by = "incremental_margin" if by == "model_margin" else by
    factor = _FACTORS.get(by)
    return f"{by}: {factor}{value}{where}" if factor else f"{by}{where}"


def _no_basket_rule(
    counts: dict[tuple[str, ...], int],
    items: list[str],
    target: str,
    together: int | None,
    segment: str,
    manifest: Manifest,
    run_dir: Path,
) -> str:
    """Why there is no product or cart rule ``items -> target``."""
    if target in items:
        return "the product is part of the antecedent: it is never offered to itself"
    if segment != ALL_SEGMENTS:
        return "none in this segment; explain with segment '*' for the global rules"
    config = manifest.config
    if (
        config.rank.drop_variants
        and config.rank.cart_variants == "never"
        and variant_offers(
            np.array([KEY_SEPARATOR.join(items)]), np.array([target]), published_variants(run_dir, [*items, target])
        ).any()
    ):
        return "a colour or size variant of the antecedent: never offered as a cross-sell (rank.drop_variants)"
    if together is None:
        if len(items) == 1 and config.pairs.enabled:
            return (
                f"bought together in fewer than {config.pairs.min_count} baskets (pairs.min_count): the product "
                "page's rules come from pairs bought together at least that often"
            )
        return (
            f"not frequent: bought together in fewer than {manifest.counts.min_count} baskets "
            f"(mine.min_support {config.mine.min_support}), or longer than mine.max_len"
        )
    verdict, reason = _rule_verdict(counts, items, target, together, manifest)
    if verdict != KEPT:
        return reason
    floor = " or customer floor (pairs.min_customers)" if len(items) == 1 and config.pairs.enabled else ""
    return (
        f"{reason}, then removed by the margin, catalog or significance filter{floor} "
        "(see counts.rules_dropped in the manifest)"
    )


def _rule_verdict(
    counts: dict[tuple[str, ...], int], items: list[str], target: str, together: int, manifest: Manifest
) -> tuple[int, str]:
    """The rule policy's verdict on ``items -> target`` from the itemset counts, and its sentence."""
    n = manifest.counts.baskets
    confidence = together / counts[tuple(items)]
    consequent_support = counts[(target,)] / n
    # The best more general rule (a proper subset of the antecedent, the empty one included).
    general, general_rule = consequent_support, f"no product -> {target}"
    for size in range(1, len(items)):
        for part in combinations(items, size):
            value = counts.get(tuple(sorted([*part, target])), 0) / counts[part]
            if value > general:
                general, general_rule = value, f"{KEY_SEPARATOR.join(part)} -> {target}"
    verdict = int(
        rule_verdicts(
            np.array([confidence]), np.array([consequent_support]), np.array([general]), manifest.config.rules
        )[0]
    )
    reason = verdict_reason(
        verdict, confidence, confidence / consequent_support, general, general_rule, manifest.config.rules
    )
    return verdict, reason


def _pair_counts(run_dir: Path, product: str, target: str) -> dict[tuple[str, ...], int]:
    """The pair's count (``pairs.parquet``) and its products' basket counts (``products.parquet``), where
    published: the counts of a product-page rule that the itemsets' support threshold does not reach."""
    a, b = sorted([product, target])
    found: dict[tuple[str, ...], int] = {}
    path = run_dir / "pairs.parquet"
    if not path.exists():  # runs before schema 2.4
        return found
    pair = pq.read_table(path, filters=[("product_a", "=", a), ("product_b", "=", b)], columns=["count"])
    if pair.num_rows:
        found[(a, b)] = int(pair["count"][0].as_py())
    singles = pq.read_table(
        run_dir / "products.parquet",
        filters=[("segment", "=", ALL_SEGMENTS), ("product_id", "in", [a, b])],
        columns=["product_id", "baskets"],
    ).to_pylist()
    found.update({(row["product_id"],): int(row["baskets"]) for row in singles})
    return found


def _itemset_counts(run_dir: Path) -> dict[tuple[str, ...], int]:
    table = pq.read_table(run_dir / "itemsets.parquet", columns=["itemset", "count"]).to_pandas()
    return {tuple(itemset): int(count) for itemset, count in zip(table["itemset"], table["count"], strict=True)}
