"""Instacart-like synthetic order lines: Zipf popularity, planted associations, Parquet out.

Usage::

    python benchmarks/synthetic.py --baskets 3000000 --products 50000 --out /tmp/synthetic.parquet

Each basket draws a Poisson(``mean_size - 1``) + 1 number of products from a
Zipf(``zipf``) popularity law; with probability ``planted_rate`` it also gets
one of ``planted`` fixed product groups of 2-3 (the associations a miner must
find). Columns follow the canonical names: order_id and product_id as integers
(as Instacart ships them; ``--text-ids``: as zero-padded text, as most retail
exports have them), quantity, unit_price, timestamp, customer_id, segment.
Deterministic for a given seed. Memory stays around 2 GB for 30 M lines
because it writes in chunks of baskets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CHUNK = 500_000


def synthetic_lines(
    baskets: int,
    products: int,
    mean_size: float = 10.0,
    zipf: float = 1.1,
    planted: int = 200,
    planted_rate: float = 0.2,
    seed: int = 42,
) -> list[pa.Table]:
    """The order lines, as Arrow tables of at most ``CHUNK`` baskets each."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, products + 1) ** zipf
    weights /= weights.sum()
    cumulative = np.cumsum(weights)
    groups = rng.choice(products // 10, size=(planted, 3), replace=True) + products // 100
    group_sizes = rng.integers(2, 4, size=planted)
    prices = np.round(rng.lognormal(1.0, 0.8, size=products), 2) + 0.1
    chunks = []
    for start in range(0, baskets, CHUNK):
        n = min(CHUNK, baskets - start)
        sizes = rng.poisson(mean_size - 1, size=n) + 1
        draws = np.searchsorted(cumulative, rng.random(sizes.sum()))
        order = np.repeat(np.arange(start, start + n), sizes)
        with_group = np.flatnonzero(rng.random(n) < planted_rate)
        picked = rng.integers(0, planted, size=with_group.size)
        extra_sizes = group_sizes[picked]
        extra_orders = np.repeat(with_group + start, extra_sizes)
        extra_products = (
            np.concatenate([groups[g, :s] for g, s in zip(picked, extra_sizes, strict=True)])
            if with_group.size
            else np.empty(0, dtype=np.int64)
        )
        order = np.concatenate([order, extra_orders])
        product = np.concatenate([draws, extra_products])
        sort = np.argsort(order, kind="stable")
        order, product = order[sort], product[sort]
        seconds = (order.astype(np.int64) * 37) % (365 * 86400)
        chunks.append(
            pa.table(
                {
                    "order_id": pa.array(order + 1, pa.int64()),
                    "product_id": pa.array(product + 1, pa.int64()),
                    "quantity": pa.array(rng.integers(1, 4, size=order.size), pa.int32()),
                    "unit_price": pa.array(prices[product], pa.float64()),
                    "timestamp": pa.array(
                        np.datetime64("2025-01-01T00:00:00") + seconds.astype("timedelta64[s]"),
                        pa.timestamp("s"),
                    ),
                    "customer_id": pa.array(order % 200_000 + 1, pa.int64()),
                    "segment": pa.array(np.where(order % 7 == 0, "B2B", "B2C")),
                }
            )
        )
    return chunks


def as_text_ids(chunk: pa.Table) -> pa.Table:
    """``chunk`` with order and product ids as zero-padded text (``00001234``, ``000042``)."""
    for name, width in (("order_id", 8), ("product_id", 6)):
        text = pc.utf8_lpad(pc.cast(chunk[name], pa.string()), width=width, padding="0")
        chunk = chunk.set_column(chunk.schema.get_field_index(name), name, text)
    return chunk


def write_parquet(path: Path, chunks: list[pa.Table]) -> int:
    """Write the chunks as one Parquet file; return the number of lines."""
    with pq.ParquetWriter(path, chunks[0].schema, compression="zstd") as writer:
        for chunk in chunks:
            writer.write_table(chunk, row_group_size=1_000_000)
    return sum(c.num_rows for c in chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baskets", type=int, default=3_000_000)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--text-ids", action="store_true", help="order and product ids as zero-padded text")
    args = parser.parse_args()
    chunks = synthetic_lines(args.baskets, args.products, seed=args.seed)
    lines = write_parquet(args.out, [as_text_ids(c) for c in chunks] if args.text_ids else chunks)
    print(f"{args.out}: {lines:,} lines, {args.baskets:,} baskets")


if __name__ == "__main__":
    main()
