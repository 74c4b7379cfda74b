"""How good are the offers? Hit rate against margin per cart on the full UCI Online Retail export.

For each margin weight alpha (``rank.margin_power``) and each setting of the
grid (``--grid key=v1,v2``: e.g. the item model's ``model.l2``) the offers are
trained and replayed twice with ``basket evaluate``'s method:

- *validation*: train on orders before 2011-09-01, replay September 2011
  (data cut at 2011-09-30): this is where alpha is chosen;
- *test*: train on orders before 2011-10-01, replay the rest: reported, never tuned on.

Usage::

    python benchmarks/offers.py                      # alpha 0, 0.25, 0.5, 1
    python benchmarks/offers.py --alpha 0 0.5 --set pairs.min_count=5
    python benchmarks/offers.py --alpha 0.25 --grid model.l2=3,10,30 --split validation

Writes ``benchmarks/results/offers.md`` and ``offers.json``, with alpha as the
validation rows choose it (:func:`chosen_alpha`); with ``--plot PNG``, the
curve of hit rate against margin per cart. Skips with a message where
``../shared/datasets`` is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.flow.evaluate import evaluate  # noqa: E402
from pipeline.flow.tune import chosen_margin_power  # noqa: E402
from pipeline.policy.variants import variant_keys, variant_offers  # noqa: E402

EXPORT = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
RESULTS = ROOT / "benchmarks" / "results"
SPLITS = {
    "validation": {"evaluate.cutoff": "2011-09-01", "as_of": "2011-09-30"},
    "test": {"evaluate.cutoff": "2011-10-01"},
}
STRATEGIES = (
    "rules by model_margin",
    "rules by model_margin, the cart alone",
    "rules by incremental_margin",
    "rules by similar_margin",
    "rules by lift",
    "storefront (rules, then best sellers)",
    "best-sellers",
)


def export_names() -> dict[str, str]:
    """Each product's first description in the export: names for the variant check beyond the sample's catalog."""
    frame = pd.read_csv(EXPORT, usecols=["StockCode", "Description"], dtype=str).dropna()
    frame["StockCode"] = frame["StockCode"].str.strip().str.upper()
    return dict(frame.drop_duplicates("StockCode")[["StockCode", "Description"]].itertuples(index=False))


def rank_one_variants(recommendations: pa.Table, names: dict[str, str]) -> float:
    """Share of product pages whose first cross-sell is a variant of the product, judged on the export's names."""
    pages = recommendations.filter(
        (pc.field("placement") == "product") & (pc.field("kind") == "cross_sell") & (pc.field("rank") == 1)
    ).to_pandas()
    if pages.empty:
        return 0.0
    known = {p: variant_keys(p, n) for p, n in names.items()}
    flagged = variant_offers(pages["antecedent_key"].to_numpy(), pages["consequent"].to_numpy(), known)
    return float(flagged.mean())


def measure(
    alpha: float, setting: dict[str, str], split: str, overrides: list[str], names: dict[str, str]
) -> list[dict[str, object]]:
    """The cart placement's metrics at k = 3 and 10 for one alpha and one grid setting on one split."""
    values = {
        "input.paths": [str(EXPORT)],
        "evaluate.bootstrap": 200,
        "rank.margin_power": alpha,
        **SPLITS[split],
    }
    overrides = [*overrides, *(f"{k}={v}" for k, v in setting.items())]
    config = load_config(ROOT / "configs" / "default.toml", overrides, values=values)
    started = time.perf_counter()
    result = evaluate(config)
    seconds = time.perf_counter() - started
    metrics = result.metrics[(result.metrics["placement"] == "cart") & result.metrics["k"].isin([3, 10])]
    context = {
        "split": split,
        "alpha": alpha,
        "setting": ", ".join(f"{k}={v}" for k, v in setting.items()) or "-",
        "seconds": round(seconds, 1),
        "product_pages": result.product_pages,
        "rank_one_variants": rank_one_variants(result.trained["recommendations"], names),
    }
    return [{**context, **row} for row in metrics.to_dict(orient="records") if row["strategy"] in STRATEGIES]


#: The strategy whose alpha is chosen and drawn: the cart block as configured.
CHOSEN = "rules by model_margin"


def chosen_alpha(rows: list[dict[str, object]], setting: str, kept_hits: float) -> float | None:
    """The alpha the validation rows of one grid ``setting`` choose (:data:`CHOSEN`, 3 offers), by the
    rule ``basket tune --evaluate`` applies (:func:`pipeline.flow.tune.chosen_margin_power`)."""
    mine = [r for r in rows if r["split"] == "validation" and r["setting"] == setting]
    mine = [r for r in mine if r["strategy"] == CHOSEN and r["k"] == 3]
    return chosen_margin_power(
        [float(r["alpha"]) for r in mine],  # type: ignore[arg-type]
        [float(r["hit_rate"]) for r in mine],  # type: ignore[arg-type]
        [float(r["attach_margin"]) for r in mine],  # type: ignore[arg-type]
        kept_hits,
    )


def plot_tradeoff(rows: list[dict[str, object]], path: Path) -> None:
    """Hit rate against margin per cart (3 offers) of :data:`CHOSEN`, a line per split and grid setting,
    each point labelled with its alpha."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    lines = sorted({(str(r["split"]), str(r["setting"])) for r in rows})
    for split, setting in lines:
        points = sorted(
            (float(r["alpha"]), float(r["attach_margin"]), float(r["hit_rate"]))  # type: ignore[arg-type]
            for r in rows
            if (r["split"], r["setting"], r["strategy"], r["k"]) == (split, setting, CHOSEN, 3)
        )
        style = "-" if split == "test" else "--"
        axes.plot([p[1] for p in points], [p[2] for p in points], style, marker="o", label=f"{split}, {setting}")
        for alpha, margin, hit in points:
            axes.annotate(f"{alpha:g}", (margin, hit), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xlabel("margin per cart (3 offers)")
    axes.set_ylabel("hit rate@3 per cart")
    axes.set_title(f"{CHOSEN}: each point a margin weight alpha")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a config override")
    parser.add_argument("--grid", action="append", default=[], help="key=v1,v2: measure each value")
    parser.add_argument("--split", choices=list(SPLITS), nargs="+", default=list(SPLITS))
    parser.add_argument("--plot", type=Path, help="draw hit rate against margin per cart into this PNG")
    args = parser.parse_args()
    if not EXPORT.exists():
        print(f"{EXPORT} is not present: nothing to measure")
        return
    names = export_names()
    settings: list[dict[str, str]] = [{}]
    for item in args.grid:
        key, _, values = item.partition("=")
        settings = [{**s, key: v} for s in settings for v in values.split(",")]
    rows = [
        r
        for alpha in args.alpha
        for setting in settings
        for split in args.split
        for r in measure(alpha, setting, split, args.overrides, names)
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "offers.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    lines = [
        f"Overrides: {', '.join(args.overrides) or 'none'} (configs/default.toml otherwise).",
        "",
        "| split | alpha | setting | strategy | k | hit rate (95% interval) | per order | margin per cart "
        "| products offered | product pages | rank-1 variants | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['split']} | {r['alpha']} | {r['setting']} | {r['strategy']} | {r['k']} | {r['hit_rate']:.3f} "
            f"({r['hit_rate_low']:.3f}-{r['hit_rate_high']:.3f}) | {r['order_hit_rate']:.3f} | "
            f"{r['attach_margin']:.3f} | {r['coverage']:.3f} | {r['product_pages']:.3f} | "
            f"{r['rank_one_variants']:.3f} | {r['seconds']} |"
        )
    kept_hits = load_config(ROOT / "configs" / "default.toml", args.overrides).evaluate.kept_hits
    for setting in dict.fromkeys(str(r["setting"]) for r in rows):
        alpha = chosen_alpha(rows, setting, kept_hits)
        if alpha is not None:
            lines.append(
                f"\nChosen on validation ({setting}): alpha {alpha:g}, the most margin per cart that keeps "
                f"{kept_hits:.0%} of alpha 0's hit rate@3 ({CHOSEN}; evaluate.kept_hits)."
            )
    (RESULTS / "offers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.plot is not None:
        plot_tradeoff(rows, args.plot)


if __name__ == "__main__":
    main()
