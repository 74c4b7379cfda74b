"""Rebuild the embedded sample from the full UCI Online Retail export.

Usage (from the project root, with ../shared/datasets beside it)::

    python data/build_sample.py ../shared/datasets/online_retail/online_retail.csv.gz data/

Writes ``online_retail_2011-10_2011-11.csv.gz`` (every raw line of October and
November 2011, byte for byte, dirt included) and ``catalog.csv`` (one row per
product, derived as ``data/README.md`` describes). Deterministic: the same
source gives the same files.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import sys
from pathlib import Path

import pandas as pd

FIRST_DAY, END_DAY = "2011-10-01", "2011-12-01"
SAMPLE_NAME = "online_retail_2011-10_2011-11.csv.gz"
PRODUCT_CODE = r"\d{5}[A-Z]*"

#: (category, base margin rate, keywords); the first category with a keyword
#: that starts a word of the product name wins ("BAG" matches "BAGS", not "HANDBAG").
CATEGORIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Christmas", 0.45, ("CHRISTMAS", "XMAS", "ADVENT", "SNOWFLAKE", "REINDEER", "SANTA")),
    ("Bags", 0.40, ("BAG", "SHOPPER", "TOTE")),
    ("Candles & lights", 0.50, ("CANDLE", "T-LIGHT", "TLIGHT", "LANTERN", "LIGHT", "LAMP")),
    (
        "Kitchen & dining",
        0.35,
        (
            "MUG",
            "CUP",
            "TEA",
            "PLATE",
            "BOWL",
            "CAKE",
            "JAR",
            "BAKING",
            "LUNCH",
            "BOTTLE",
            "CUTLERY",
            "NAPKIN",
            "SPOON",
            "TIN",
            "COASTER",
            "APRON",
            "OVEN",
            "JUG",
            "GLASS",
        ),
    ),
    (
        "Stationery & gift wrap",
        0.55,
        (
            "CARD",
            "WRAP",
            "PAPER",
            "NOTEBOOK",
            "PENS?\\b",
            "PENCIL",
            "STICKER",
            "TAPE",
            "RIBBON",
            "GIFT",
            "TISSUE",
            "ENVELOPE",
            "CHALK",
        ),
    ),
    (
        "Kids & party",
        0.40,
        (
            "TOY",
            "GAME",
            "PARTY",
            "CHILDRENS",
            "DOLLY",
            "SPACEBOY",
            "BALLOON",
            "CIRCUS",
            "PLAYHOUSE",
            "CRAYON",
            "BUNNY",
            "TEDDY",
        ),
    ),
    ("Garden", 0.38, ("GARDEN", "PLANT", "FLOWER", "BIRD", "WATERING", "HERB")),
    (
        "Accessories",
        0.60,
        ("JEWEL", "NECKLACE", "BRACELET", "EARRING", "RING", "HAIR", "PURSE", "UMBRELLA", "WALLET", "BEAD"),
    ),
    (
        "Home decor",
        0.45,
        (
            "SIGN",
            "FRAME",
            "CLOCK",
            "CUSHION",
            "DOORMAT",
            "HOOK",
            "HANGER",
            "MIRROR",
            "ORNAMENT",
            "DECORATION",
            "HEART",
            "BUNTING",
            "WREATH",
            "VASE",
            "DRAWER",
            "BOX",
            "HOLDER",
            "STAND",
            "PLAQUE",
            "DOORSTOP",
            "GARLAND",
        ),
    ),
)
#: Products no keyword places have no category (an empty field): a catch-all "Other"
#: would make a doormat an alternative of a skipping rope.
OTHER = ("", 0.40)
#: Each product's margin rate is its category's base rate plus a jitter in this +- range.
JITTER = 0.08


def slice_export(source: Path, target: Path) -> int:
    """Copy the header and every line dated in the sample window, verbatim; return lines kept."""
    kept = 0
    with (
        gzip.open(source, "rt", encoding="utf-8", newline="") as lines,
        gzip.GzipFile(target, "wb", mtime=0) as raw_out,
    ):
        out = io.TextIOWrapper(raw_out, encoding="utf-8", newline="")
        header = next(lines)
        out.write(header)
        date_at = next(csv.reader([header])).index("InvoiceDate")
        for line in lines:
            if FIRST_DAY <= next(csv.reader([line]))[date_at][:10] < END_DAY:
                out.write(line)
                kept += 1
        out.flush()
        out.detach()
    return kept


_PATTERNS = [(c, r, re.compile(r"\b(?:" + "|".join(k) + ")")) for c, r, k in CATEGORIES]


def category_of(name: str) -> tuple[str, float]:
    """The leaf category ``department / type`` and the department's base margin rate.

    The department is the first with a keyword starting a word of the name;
    the type is the keyword found ("Home decor / Clock"), so that products of
    one category are alternatives of each other, as in a shop's own taxonomy.
    """
    for department, rate, pattern in _PATTERNS:
        found = pattern.search(name)
        if found:
            return f"{department} / {found.group(0).strip().title()}", rate
    return OTHER


def jitter(product_id: str) -> float:
    """A stable pseudo-random number in [-JITTER, +JITTER] from the product id."""
    unit = int(hashlib.sha256(product_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return (2 * unit - 1) * JITTER


def build_catalog(sample: Path) -> pd.DataFrame:
    """One row per product code sold in the sample, with name, category, price and cost."""
    lines = pd.read_csv(sample, dtype=str, keep_default_na=False, na_values=[""])
    lines["product_id"] = lines["StockCode"].str.strip().str.upper()
    lines["name"] = lines["Description"].str.strip().str.replace(r"\s+", " ", regex=True)
    lines["price"] = pd.to_numeric(lines["UnitPrice"])
    sold = lines[
        lines["product_id"].str.fullmatch(PRODUCT_CODE)
        & ~lines["InvoiceNo"].str.startswith("C")
        & (pd.to_numeric(lines["Quantity"]) > 0)
        & (lines["price"] > 0)
        & lines["name"].notna()
    ]
    rows = []
    for product_id, group in sold.groupby("product_id", sort=True):
        name = group["name"].value_counts().sort_index().idxmax()
        price = round(float(group["price"].median()), 2)
        category, base = category_of(name)
        rate = round(base + jitter(product_id), 3)
        rows.append(
            {
                "product_id": product_id,
                "name": name,
                "category": category,
                "price": f"{price:.2f}",
                "cost": f"{price * (1 - rate):.2f}",
            }
        )
    return pd.DataFrame(rows)


def main(source: str, target_dir: str) -> None:
    target = Path(target_dir)
    kept = slice_export(Path(source), target / SAMPLE_NAME)
    catalog = build_catalog(target / SAMPLE_NAME)
    catalog.to_csv(target / "catalog.csv", index=False)
    counts = catalog["category"].value_counts().to_dict()
    sys.stdout.write(f"{kept} lines, {len(catalog)} products: {counts}\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
