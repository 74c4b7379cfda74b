"""A published run in, one self-contained HTML report out: what an analyst shows a merchandiser.

The report is a single file with every chart embedded as a PNG (data URI)
and no external reference, so it opens from an e-mail or a shared drive
without network access. Charts are drawn with matplotlib: static images render
the same in every browser and print, need no JavaScript library, and
matplotlib is already installed with mlxtend. Sections:

1. the cleaning funnel: rows and orders left after each step, and why rows left;
2. item frequency: the most bought products;
3. basket sizes;
4. support against confidence of every rule, coloured by lift (the
   signature plot of R's arulesViz);
5. a grouped matrix of the strongest rules (antecedent x consequent, size =
   support, colour = lift);
6. the top offers per product with names and margins;
7. the best bundles with their prices;
8. what changed against the previous run: rules added, dropped and re-ranked.

A few lines of inline script record each chart's rendered size in the page
(``data-rendered``), which the browser test reads.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq

from pipeline.contract.counts import RunCounts
from pipeline.contract.files import MANIFEST, RUNS, latest_run, run_directory
from pipeline.contract.manifest import Manifest, read_manifest
from pipeline.contract.vocabulary import ALL_SEGMENTS, CART, CROSS_SELL, GROUP, PRODUCT
from pipeline.errors import OutputError
from pipeline.flow.publish import previous_run

REPORT = "report.html"
#: The rule key: one rule per (segment, placement, kind, antecedent, consequent).
_KEY = [*GROUP, "consequent"]
_TOP_PRODUCTS = 20
_TOP_OFFERS = 25
_GROUPED_RULES = 200
_GROUPED_CONSEQUENTS = 15
_GROUPS = 12
#: Characters of an id or name shown as a chart label.
_LABEL = 40


def write_report(output_dir: Path, run_id: str | None = None, path: Path | None = None) -> Path:
    """Write the report of ``run_id`` (default: the run ``latest`` points at); return its path.

    The default path is ``report.html`` inside the run's directory. The file is
    written beside its final name and renamed into place.
    """
    run_dir = latest_run(output_dir) if run_id is None else run_directory(Path(output_dir), run_id)
    if not (run_dir / MANIFEST).is_file():
        raise OutputError(f"{run_dir} is not a complete run (no {MANIFEST}); see {Path(output_dir) / RUNS}")
    manifest = read_manifest(run_dir / MANIFEST)
    before = previous_run(Path(output_dir), run_dir.name)
    page = _page(run_dir, manifest, Path(output_dir) / RUNS / before if before else None)
    target = path or run_dir / REPORT
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.tmp")
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write the report ({exc.strerror or exc})") from exc
    return target


def _page(run_dir: Path, manifest: Manifest, previous: Path | None) -> str:
    counts, config = manifest.counts, manifest.config
    rules = _read(run_dir, "rules")
    recommendations = _read(run_dir, "recommendations")
    products = _read(run_dir, "products")
    global_rules = rules[(rules["segment"] == ALL_SEGMENTS) & rules["placement"].isin([PRODUCT, CART])]
    sections = [
        ("Cleaning funnel", _funnel(counts)),
        ("Most bought products", _item_frequency(products)),
        ("Basket sizes", _basket_sizes(counts)),
        ("Rules: support against confidence", _scatter(global_rules)),
        ("Strongest rules, grouped", _matrix(global_rules)),
        ("Top offers per product", _top_offers(recommendations)),
        ("Bundles", _bundles(_read(run_dir, "bundles"))),
        ("Against the previous run", _comparison(rules, previous)),
    ]
    summary = (
        f"{counts.rows_in:,} rows read, {counts.rows_rejected:,} rejected; {counts.baskets:,} baskets of "
        f"{counts.products:,} products; {counts.itemsets:,} itemsets, {counts.rules:,} rules, "
        f"{counts.recommendations:,} offers, {counts.bundles:,} bundles."
    )
    body = "\n".join(f"<section><h2>{html.escape(title)}</h2>\n{content}\n</section>" for title, content in sections)
    return _TEMPLATE.format(
        run_id=html.escape(manifest.run_id),
        as_of=html.escape(str(manifest.as_of) if manifest.as_of is not None else "the export (no timestamps)"),
        summary=html.escape(summary),
        config=html.escape(
            f"min_support {config.mine.min_support}, max_len {config.mine.max_len}, "
            f"min_confidence {config.rules.min_confidence}, rank by {config.rank.by}"
        ),
        body=body,
    )


def _read(run_dir: Path, name: str) -> pd.DataFrame:
    path = run_dir / f"{name}.parquet"
    return pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame()


def _image(figure: plt.Figure, alt: str) -> str:
    """The figure as an embedded PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _label(text: object, width: int = _LABEL) -> str:
    """Any id or name as a chart label: cut to ``width`` characters with an ellipsis, and with every
    ``$`` escaped, so matplotlib draws it as text instead of parsing it as a formula."""
    value = str(text)
    if len(value) > width:
        value = value[: width - 1] + "…"
    return value.replace("$", r"\$")


def _cut(value: object, width: int = 2 * _LABEL) -> object:
    """A table cell: long text cut with an ellipsis (``to_html`` escapes it)."""
    return value[: width - 1] + "…" if isinstance(value, str) and len(value) > width else value


def _table(frame: pd.DataFrame) -> str:
    frame = frame.map(_cut)
    return frame.to_html(index=False, border=0, classes="data", float_format=lambda x: f"{x:,.3f}", na_rep="–")


def _funnel(counts: RunCounts) -> str:
    steps = [s for s in counts.funnel if s["step"] == "read" or counts.rejected.get(s["step"])]
    if not steps:
        return "<p>No funnel recorded for this run.</p>"
    frame = pd.DataFrame(steps)
    frame["rows rejected here"] = frame["rows"].shift(1).fillna(frame["rows"]).astype(int) - frame["rows"]
    figure, axis = plt.subplots(figsize=(8, 0.4 * len(frame) + 1))
    axis.barh(frame["step"][::-1], frame["rows"][::-1], color="#4c72b0")
    axis.set_xlabel("order lines left after the step")
    for y, (rows, orders) in enumerate(zip(frame["rows"][::-1], frame["orders"][::-1], strict=True)):
        axis.text(rows, y, f" {rows:,} lines, {orders:,} orders", va="center", fontsize=8)
    axis.margins(x=0.35)
    return _image(figure, "cleaning funnel") + _table(frame[["step", "rows rejected here", "rows", "orders"]])


def _item_frequency(products: pd.DataFrame) -> str:
    if products.empty:
        return "<p>No products.</p>"
    top = products[products["segment"] == ALL_SEGMENTS].nlargest(_TOP_PRODUCTS, "baskets")
    labels = [
        _label(f"{p} {n[:30] if isinstance(n, str) else ''}")
        for p, n in zip(top["product_id"], top["name"], strict=True)
    ]
    figure, axis = plt.subplots(figsize=(8, 6))
    axis.barh(labels[::-1], top["baskets"][::-1], color="#55a868")
    axis.set_xlabel("baskets")
    return _image(figure, "most bought products")


def _basket_sizes(counts: RunCounts) -> str:
    sizes = counts.basket_sizes
    if not sizes:
        return "<p>No basket sizes recorded for this run.</p>"
    figure, axis = plt.subplots(figsize=(8, 3.5))
    axis.bar(list(sizes), list(sizes.values()), color="#8172b2")
    axis.set_xlabel("distinct products in the basket")
    axis.set_ylabel("baskets")
    axis.set_xticks(list(sizes)[:: max(1, len(sizes) // 15)])
    return _image(figure, "basket sizes")


def _scatter(rules: pd.DataFrame) -> str:
    if rules.empty:
        return "<p>No rules.</p>"
    figure, axis = plt.subplots(figsize=(8, 5))
    shown = axis.scatter(rules["support"], rules["confidence"], c=rules["lift"], cmap="viridis", s=12, alpha=0.8)
    figure.colorbar(shown, ax=axis, label="lift")
    axis.set_xscale("log")
    axis.set_xlabel("support (log)")
    axis.set_ylabel("confidence")
    return _image(figure, "support against confidence, coloured by lift") + (
        f"<p>{len(rules):,} product and cart rules of all customers.</p>"
    )


def _matrix(rules: pd.DataFrame) -> str:
    """arulesViz's grouped matrix: antecedents clustered by the lift they give each consequent.

    The strongest rules (by lift) whose consequent is among the most predicted
    ones are kept; antecedents with similar lift profiles over those
    consequents form one group (average-linkage clustering); each balloon is a
    group x consequent: size = summed support, colour = mean lift.
    """
    if rules.empty:
        return "<p>No rules.</p>"
    strong = rules.nlargest(_GROUPED_RULES, "lift")
    consequents = strong["consequent"].value_counts().head(_GROUPED_CONSEQUENTS).index.tolist()
    strong = strong[strong["consequent"].isin(consequents)]
    profile = strong.pivot_table(index="antecedent_key", columns="consequent", values="lift", fill_value=0.0)
    if len(profile) > _GROUPS:
        from scipy.cluster.hierarchy import fcluster, linkage

        group = fcluster(linkage(profile.to_numpy(), method="average"), _GROUPS, criterion="maxclust")
    else:
        group = range(1, len(profile) + 1)
    strong = strong.merge(pd.DataFrame({"antecedent_key": profile.index, "group": list(group)}), on="antecedent_key")
    cells = strong.groupby(["group", "consequent"], as_index=False).agg(
        support=("support", "sum"), lift=("lift", "mean")
    )
    labels = {g: _group_label(members) for g, members in strong.groupby("group")["antecedent"]}
    groups = sorted(labels, key=lambda g: -cells.loc[cells["group"] == g, "lift"].max())
    figure, axis = plt.subplots(figsize=(max(7, 0.45 * len(groups) + 4), max(4, 0.35 * len(consequents) + 2)))
    shown = axis.scatter(
        [groups.index(g) for g in cells["group"]],
        [consequents.index(c) for c in cells["consequent"]],
        s=cells["support"] / cells["support"].max() * 400,
        c=cells["lift"],
        cmap="magma_r",
    )
    figure.colorbar(shown, ax=axis, label="mean lift")
    axis.set_xticks(range(len(groups)), [labels[g] for g in groups], rotation=70, ha="right", fontsize=8)
    axis.set_yticks(range(len(consequents)), [_label(c) for c in consequents])
    axis.set_xlabel("antecedent groups (balloon size = support)")
    axis.set_ylabel("offered product")
    return _image(figure, "grouped matrix of the strongest rules") + (
        f"<p>The {len(strong):,} strongest rules by lift, their antecedents in {len(groups)} groups.</p>"
    )


def _group_label(antecedents: pd.Series) -> str:
    """``{most common product, +n products}`` and the group's rule count, as arulesViz labels groups."""
    products = pd.Series([p for antecedent in antecedents for p in antecedent]).value_counts()
    more = f", +{len(products) - 1}" if len(products) > 1 else ""
    return _label(f"{len(antecedents)} rules: {{{_label(products.index[0], 24)}{more}}}")


def _top_offers(recommendations: pd.DataFrame) -> str:
    pages = (
        recommendations[
            (recommendations["segment"] == ALL_SEGMENTS)
            & (recommendations["placement"] == PRODUCT)
            & (recommendations["kind"] == CROSS_SELL)
        ]
        if not recommendations.empty
        else recommendations
    )
    if pages.empty:
        return "<p>No product-page offers.</p>"
    best = pages[pages["rank"] == 1].nlargest(_TOP_OFFERS, "score")["antecedent_key"]
    shown = pages[pages["antecedent_key"].isin(best)].copy()
    shown["order"] = shown["antecedent_key"].map({k: i for i, k in enumerate(best)})
    shown = shown.sort_values(["order", "rank"])
    columns = [
        "antecedent_key",
        "rank",
        "consequent",
        "consequent_name",
        "confidence",
        "lift",
        "consequent_margin",
        "score",
    ]
    return f"<p>The {len(best)} products with the best-scored first offer.</p>" + _table(shown[columns])


def _bundles(bundles: pd.DataFrame) -> str:
    if bundles.empty:
        return "<p>No bundles (they need a catalog with prices and costs).</p>"
    top = bundles[bundles["segment"] == ALL_SEGMENTS].head(_TOP_OFFERS)
    columns = [
        "rank",
        "bundle_key",
        "count",
        "all_confidence",
        "list_price",
        "bundle_price",
        "discount",
        "bundle_margin_rate",
    ]
    return f"<p>The best {len(top)} of {len(bundles):,} bundles by margin earned per basket.</p>" + _table(top[columns])


def _comparison(rules: pd.DataFrame, previous: Path | None) -> str:
    if previous is None:
        return "<p>No earlier published run to compare with.</p>"
    old = _read(previous, "rules")
    merged = rules[[*_KEY, "rank"]].merge(
        old[[*_KEY, "rank"]], on=_KEY, how="outer", suffixes=("", "_before"), indicator=True
    )
    added = merged[merged["_merge"] == "left_only"]
    dropped = merged[merged["_merge"] == "right_only"]
    both = merged[merged["_merge"] == "both"]
    moved = both[both["rank"] != both["rank_before"]]
    summary = pd.DataFrame(
        {
            "rules": ["added", "dropped", "rank changed", "unchanged"],
            "count": [len(added), len(dropped), len(moved), len(both) - len(moved)],
        }
    )
    examples = pd.concat(
        [
            added.head(10).assign(change="added"),
            dropped.head(10).assign(change="dropped"),
            moved.head(10).assign(change="rank changed"),
        ]
    )
    text = f"<p>Against run {html.escape(previous.name)}.</p>" + _table(summary)
    if not examples.empty:
        text += _table(examples[["change", *_KEY, "rank_before", "rank"]])
    return text


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Basket report {run_id}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }}
section {{ margin-bottom: 2.5em; }}
img.chart {{ max-width: 100%; display: block; margin: 0.5em 0; }}
table.data {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }}
table.data th, table.data td {{ padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }}
.meta {{ color: #555; }}
</style>
</head>
<body>
<h1>Market-basket report</h1>
<p class="meta">Run {run_id}, data as of {as_of}. {config}.</p>
<p>{summary}</p>
{body}
<script>
document.querySelectorAll("img.chart").forEach(function (img) {{
  function mark() {{ img.dataset.rendered = img.naturalWidth + "x" + img.naturalHeight; }}
  if (img.complete) {{ mark(); }} else {{ img.addEventListener("load", mark); }}
}});
</script>
</body>
</html>
"""
