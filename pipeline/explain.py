"""Why is (or isn't) a product offered for another? The published run in, an explanation out.

For an antecedent (one product, or several: a part of a cart) and a
consequent, :func:`explain` reads ``OUTPUT/latest`` and reports the rule's
counts and measures, its rank and placement, whether it made the top-k, and
which filter stopped it otherwise: too few baskets together (not a frequent
itemset), confidence or lift below the thresholds, redundant (a shorter
antecedent predicts at least as well), or removed after mining (margin,
catalog or significance; the manifest's ``rules_dropped`` counts those).
Everything is recomputed from the published itemsets, so the answer does not
depend on the rule having survived.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.lookup import normalised_ids, run_manifest
from pipeline.publish import latest_run
from pipeline.recommendations import ALL_SEGMENTS, CART, POST_PURCHASE, PRODUCT


def explain(output_dir: Path, antecedent: list[str], consequent: str, segment: str = ALL_SEGMENTS) -> dict[str, Any]:
    """The facts behind ``antecedent -> consequent`` in the latest run, and a one-line verdict."""
    manifest = run_manifest(output_dir)
    run_dir = latest_run(output_dir)
    items = sorted(set(normalised_ids(antecedent, manifest)))
    (target,) = normalised_ids([consequent], manifest)
    key = "|".join(items)
    config = manifest["config"]
    rules = pq.read_table(
        run_dir / "rules.parquet",
        filters=[("segment", "=", segment), ("antecedent_key", "=", key), ("consequent", "=", target)],
    ).to_pandas()
    facts: dict[str, Any] = {"antecedent": items, "consequent": target, "segment": segment, "run_id": manifest["run_id"]}
    facts["rules"] = [
        {**row, "filters_passed": _passed(config, row["placement"])}
        for row in rules.drop(columns=["antecedent"]).to_dict(orient="records")
    ]
    top_k = config["output"]["top_k"]
    verdicts = [
        f"rank {row['rank']} of the {row['placement']} offers"
        + ("" if row["rank"] <= top_k else f" (not shown: only the top {top_k} are published)")
        for row in facts["rules"]
    ]
    if not any(row["placement"] in (PRODUCT, CART) for row in facts["rules"]):
        counts = _itemset_counts(run_dir)
        together = counts.get(tuple(sorted([*items, target])))
        facts.update(baskets=manifest["counts"]["baskets"], min_count=manifest["counts"]["min_count"], together=together)
        verdicts.append("no basket rule: " + _no_basket_rule(counts, items, target, together, segment, manifest))
    shown = any(row["rank"] <= top_k for row in facts["rules"])
    facts["verdict"] = ("offered: " if shown else "not offered: ") + "; ".join(verdicts)
    return facts


def _no_basket_rule(
    counts: dict[tuple[str, ...], int],
    items: list[str],
    target: str,
    together: int | None,
    segment: str,
    manifest: dict[str, Any],
) -> str:
    """Why there is no product or cart rule ``items -> target``."""
    config = manifest["config"]
    if target in items:
        return "the product is part of the antecedent: it is never offered to itself"
    if segment != ALL_SEGMENTS:
        return "none in this segment; explain with segment '*' for the global rules"
    if together is None:
        return (
            f"not frequent: bought together in fewer than {manifest['counts']['min_count']} baskets "
            f"(mine.min_support {config['mine']['min_support']}), or longer than mine.max_len"
        )
    return _why_dropped(counts, items, target, together, manifest["counts"]["baskets"], config)


def _why_dropped(
    counts: dict[tuple[str, ...], int], items: list[str], target: str, together: int, n: int, config: dict[str, Any]
) -> str:
    """Which rule filter removed a rule whose itemset is frequent."""
    confidence = together / counts[tuple(items)]
    lift = confidence / (counts[(target,)] / n)
    measures = f"confidence {confidence:.3f}, lift {lift:.2f}"
    if confidence < config["rules"]["min_confidence"]:
        return f"{measures}: confidence below rules.min_confidence {config['rules']['min_confidence']}"
    if lift <= config["rules"]["min_lift"]:
        return f"{measures}: lift not above rules.min_lift {config['rules']['min_lift']}"
    for size in range(len(items)):
        for part in combinations(items, size):
            base = counts[part] if part else n
            general = counts.get(tuple(sorted([*part, target])), 0) / base
            if config["rules"]["drop_redundant"] and general >= confidence:
                return f"{measures}: redundant, {'|'.join(part) or 'no product'} -> {target} has confidence {general:.3f}"
    return (
        f"{measures}: passed the rule filters, then removed by the margin, catalog or significance filter "
        "(see counts.rules_dropped in the manifest)"
    )


def _passed(config: dict[str, Any], placement: str) -> list[str]:
    """The filters a published rule of ``placement`` has passed."""
    rules, margin = config["rules"], config["margin"]
    if placement == POST_PURCHASE:
        passed = [f"confidence >= {config['post_purchase']['min_confidence']}", f"lift > {rules['min_lift']}"]
    else:
        passed = [f"confidence >= {rules['min_confidence']}", f"lift > {rules['min_lift']}"]
        if rules["drop_redundant"]:
            passed.append("not redundant")
    if rules["max_p_value"] is not None:
        passed.append(f"{rules['p_adjust'] or 'unadjusted'} p-value <= {rules['max_p_value']}")
    if margin["min_margin"] is not None:
        passed.append(f"margin >= {margin['min_margin']}")
    if margin["min_margin_rate"] is not None:
        passed.append(f"margin rate >= {margin['min_margin_rate']}")
    return passed


def _itemset_counts(run_dir: Path) -> dict[tuple[str, ...], int]:
    table = pq.read_table(run_dir / "itemsets.parquet", columns=["itemset", "count"]).to_pandas()
    return {tuple(itemset): int(count) for itemset, count in zip(table["itemset"], table["count"], strict=True)}
