"""Shared fixtures: a small, realistically dirty export whose right answers are known by construction."""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = ROOT / "configs" / "default.toml"
SHARED = ROOT.parent / "shared" / "datasets"
HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]

#: Products of the synthetic shop: id -> (name, price). Ids keep leading zeros.
PRODUCTS = {
    "00123": ("TEA CUP", "1.50"),
    "00124": ("SAUCER", "1.20"),
    "85123A": ("HEART HOLDER", "2.55"),
    "22386": ("JUMBO BAG PINK POLKADOT", "1.95"),
    "85099B": ("JUMBO BAG RED RETROSPOT", "1.95"),
    "21931": ("JUMBO STORAGE BAG", "1.95"),
    "47566": ("PARTY BUNTING", "4.95"),
    "84879": ("BIRD ORNAMENT", "1.69"),
    "22720": ("CAKE TIN SET", "4.95"),
    "22960": ("JAM MAKING SET", "4.25"),
}

#: The hand-written dirty lines appended to the clean orders, with the reason
#: the cleaner must give each (None: the line is clean and kept).
DIRTY_LINES: list[tuple[list[str], str | None]] = [
    (["9001", "POST", "POSTAGE", "1", "2011-11-20 10:00:00", "18.00", "12345", "France"], "non_product"),
    (["9001", "00123", "TEA CUP", "2", "2011-11-20 10:00:00", "1.50", "12345", "France"], None),
    (["9001", " 00124 ", "SAUCER", "2", "2011-11-20 10:00:00", "1.20", "12345", "France"], None),
    (["C9002", "00123", "TEA CUP", "-2", "2011-11-20 11:00:00", "1.50", "12345", "France"], "cancelled"),
    (
        ["9003", "22720", "CAKE TIN SET", "-5", "2011-11-20 12:00:00", "4.95", "", "United Kingdom"],
        "nonpositive_quantity",
    ),
    (
        ["A9004", "ADJ", "Adjust bad debt", "1", "2011-11-20 12:00:00", "-11062.06", "", "United Kingdom"],
        "negative_price",
    ),
    (["9005", "22960", "damaged", "1", "2011-11-20 13:00:00", "0", "", "United Kingdom"], "zero_price"),
    (["", "00123", "TEA CUP", "1", "2011-11-20 13:00:00", "1.50", "17850", "United Kingdom"], "missing_order_id"),
    (["9006", "  ", "no id", "1", "2011-11-20 13:00:00", "1.50", "17850", "United Kingdom"], "missing_product_id"),
    (["9007", "00123", "TEA CUP", "two", "2011-11-20 13:00:00", "1.50", "17850", "United Kingdom"], "bad_quantity"),
    (["9008", "00123", "TEA CUP", "1", "2011-11-20 13:00:00", "1,50", "17850", "United Kingdom"], "bad_unit_price"),
    (["9009", "00123", "TEA CUP", "1", "yesterday", "1.50", "17850", "United Kingdom"], "bad_timestamp"),
    (["9010", "85123a", "heart holder", "1", "2011-11-21 09:00:00", "2.55", "17850", "United Kingdom"], None),
    (
        ["9010", "85123a", "heart holder", "1", "2011-11-21 09:00:00", "2.55", "17850", "United Kingdom"],
        "duplicate_line",
    ),
    (
        ["9010", "BANK CHARGES", "Bank charges", "1", "2011-11-21 09:00:00", "15.00", "17850", "United Kingdom"],
        "non_product",
    ),
    (["9011", "gift_0001_20", "voucher", "1", "2011-11-21 09:00:00", "16.67", "", "United Kingdom"], "non_product"),
    # Two exports concatenated: the second one's header is a line of the data.
    ([f" {name}" if name == "StockCode" else name for name in HEADER], "repeated_header"),
]
#: Raw text after the rows, as broken exports have it: a stray quote opens a description that the next
#: line's stray quote closes, swallowing the line between (one record, rejected: unbalanced_quote); a quoted
#: description with a line break (one record, kept); a blank line (no record).
RAW_TAIL = (
    '9012,00123,"TEA CUP,1,2011-11-21 10:00:00,1.50,17850,United Kingdom\r\n'
    "9013,00124,SAUCER,1,2011-11-21 10:00:00,1.20,17850,United Kingdom\r\n"
    '9014,00125,PLATE",1,2011-11-21 10:00:00,2.00,17850,United Kingdom\r\n'
    '9015,00123,"TEA CUP\r\ngift wrapped",1,2011-11-21 11:00:00,1.50,17850,United Kingdom\r\n'
    "\r\n"
)
#: Rejects per reason of the dirty lines and the raw tail (the wholesale order's aside).
DIRTY_REJECTS = Counter(reason for _, reason in DIRTY_LINES if reason) + Counter({"unbalanced_quote": 1})
#: A wholesale order: more distinct products than the fixture config's cap.
WHOLESALE_ORDER = "9999"
WHOLESALE_PRODUCTS = 30


@dataclass(frozen=True)
class Export:
    """A written dirty export and what it is known to contain."""

    path: Path
    catalog: Path
    clean_orders: int
    rows: int


def clean_orders(seed: int = 7, orders: int = 120) -> list[list[str]]:
    """Orders with planted associations: tea cup + saucer, the three jumbo bags."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    for number in range(orders):
        basket: set[str] = set()
        if rng.random() < 0.45:
            basket |= {"00123", "00124"} if rng.random() < 0.8 else {"00123"}
        if rng.random() < 0.40:
            basket |= {"22386", "85099B"} | ({"21931"} if rng.random() < 0.6 else set())
        basket |= {p for p in ("85123A", "47566", "84879", "22720", "22960") if rng.random() < 0.2}
        if not basket:
            basket = {"85123A"}
        day = 1 + number % 28
        for product in sorted(basket):
            name, price = PRODUCTS[product]
            quantity = str(rng.choice([1, 2, 6, 12]))
            rows.append(
                [
                    str(5000 + number),
                    product,
                    name,
                    quantity,
                    f"2011-11-{day:02d} 10:{number % 60:02d}:00",
                    price,
                    str(17000 + number % 40),
                    rng.choice(["United Kingdom", "France", "Germany"]),
                ]
            )
    return rows


def write_export(directory: Path) -> Export:
    """Write the dirty export (CSV) and its catalog into ``directory``."""
    rows = clean_orders()
    rows += [line for line, _ in DIRTY_LINES]
    rows += [
        [WHOLESALE_ORDER, f"{30000 + i}", "WHOLESALE ITEM", "24", "2011-11-22 08:00:00", "0.85", "14646", "Netherlands"]
        for i in range(WHOLESALE_PRODUCTS)
    ]
    path = directory / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
        handle.write(RAW_TAIL)
    catalog = directory / "catalog.csv"
    products = pd.DataFrame(
        [
            {
                "product_id": pid,
                "name": name,
                "category": "Bags" if "BAG" in name else "Home",
                "price": price,
                "cost": f"{float(price) * 0.6:.2f}",
            }
            for pid, (name, price) in PRODUCTS.items()
        ]
    )
    products.to_csv(catalog, index=False)
    orders = {r[0] for r in clean_orders()} | {"9001", "9010", "9015"}
    return Export(path=path, catalog=catalog, clean_orders=len(orders), rows=len(rows) + 2)


def export_config(export: Export, output: Path, **overrides: object) -> Config:
    """The sample config pointed at a fixture export, with a small wholesale cap."""
    values: dict[str, object] = {
        "input.paths": [str(export.path)],
        "catalog.path": str(export.catalog),
        "output.dir": str(output),
        "clean.max_basket_size": 20,
        "mine.min_support": 0.05,
        "rules.min_confidence": 0.2,
        "margin.min_margin_rate": None,
    }
    values.update(overrides)
    return load_config(SAMPLE_CONFIG, values=values)


@pytest.fixture
def export(tmp_path: Path) -> Export:
    return write_export(tmp_path)


@pytest.fixture
def config(export: Export, tmp_path: Path) -> Config:
    return export_config(export, tmp_path / "out")
