"""The baseline: the job written the way an analyst would with pandas and mlxtend.

pandas reads the export, drops cancellations, returns, non-products and
missing ids, one-hot encodes the baskets with ``TransactionEncoder``, mines with
``fpgrowth``, derives rules with ``association_rules``, keeps single-product
consequents and writes Parquet. Run as its own process by ``benchmarks/run.py``
so its wall time and peak memory are measured like ours.

Usage::

    python benchmarks/baseline_mlxtend.py INPUT OUT.parquet --min-support 0.005 [--max-len 3]
        [--format lines|baskets] [--delimiter ' ']
"""

from __future__ import annotations

import argparse
import warnings

import pandas as pd

with warnings.catch_warnings():
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

NON_PRODUCTS = ["POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"]


def baskets_from_export(path: str) -> list[list[str]]:
    """Order lines (Online Retail layout) to baskets, cleaned the usual way."""
    df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str})
    df["StockCode"] = df["StockCode"].str.strip().str.upper()
    df = df[~df["InvoiceNo"].str.startswith("C") & (df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    df = df[~df["StockCode"].isin(NON_PRODUCTS) & df["InvoiceNo"].notna() & df["StockCode"].notna()]
    return df.groupby("InvoiceNo")["StockCode"].apply(lambda s: sorted(set(s))).tolist()


def baskets_from_lines_file(path: str, delimiter: str) -> list[list[str]]:
    """One basket per line."""
    with open(path, encoding="utf-8") as handle:
        return [sorted({i.strip() for i in line.split(delimiter) if i.strip()}) for line in handle if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--min-support", type=float, required=True)
    parser.add_argument("--max-len", type=int, default=None)
    parser.add_argument("--format", choices=["lines", "baskets"], default="lines")
    parser.add_argument("--delimiter", default=",")
    args = parser.parse_args()
    if args.format == "baskets":
        baskets = baskets_from_lines_file(args.input, args.delimiter)
    else:
        baskets = baskets_from_export(args.input)
    encoder = TransactionEncoder()
    onehot = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
    itemsets = fpgrowth(onehot, min_support=args.min_support, use_colnames=True, max_len=args.max_len)
    rules = association_rules(itemsets, metric="confidence", min_threshold=0.1)
    rules = rules[(rules["consequents"].apply(len) == 1) & (rules["lift"] > 1)]
    out = pd.DataFrame(
        {
            "antecedent": rules["antecedents"].apply(sorted),
            "consequent": rules["consequents"].apply(lambda c: next(iter(c))),
            "support": rules["support"],
            "confidence": rules["confidence"],
            "lift": rules["lift"],
        }
    )
    out.to_parquet(args.output)


if __name__ == "__main__":
    main()
