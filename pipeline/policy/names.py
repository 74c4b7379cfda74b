"""What a product is called: the catalog's name, else the export's own description of it.

Exports usually describe the product on every line (Online Retail's
``Description``; ``input.columns.product_name``), and catalogs lag behind
what is sold. A product the catalog does not name is named by its lines'
most frequent description (ties: the first in text order), the rule that
``data/build_sample.py`` derives the sample catalog's names by. The names
decide which products are colour or size variants of each other
(:mod:`pipeline.policy.variants`) and are published in ``products.parquet``,
which the storefront lookup and ``basket explain`` read them from. Both
engines count (product, description) lines their own way and decide here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.contract.schema import TEXT

#: The columns of :func:`described_products`.
DESCRIBED_COLUMNS = ("product_id", "name", "category", "variant_group")


def most_frequent_names(product_ids: np.ndarray, names: np.ndarray, lines: np.ndarray) -> pd.Series:
    """Product id -> its most frequent name, from how many ``lines`` give each (product id, name) pair.

    Ties go to the name first in text order, so that the answer does not depend
    on the order of the input (or of a Spark aggregation).
    """
    frame = pd.DataFrame({"product_id": product_ids, "name": names, "lines": lines})
    frame = frame.sort_values(["product_id", "lines", "name"], ascending=[True, False, True], kind="stable")
    first = frame.drop_duplicates("product_id")
    return pd.Series(first["name"].to_numpy(dtype=object), index=first["product_id"].to_numpy(dtype=object))


def described_products(catalog: pd.DataFrame | None, export_names: pd.Series | None) -> pd.DataFrame:
    """``product_id, name, category, variant_group`` of every catalog product and every product an export
    line names: the catalog's name where it has one, else the export's (``export_names``, id -> name)."""
    info = (
        pd.DataFrame(columns=list(DESCRIBED_COLUMNS))
        if catalog is None
        else catalog.reindex(columns=list(DESCRIBED_COLUMNS)).reset_index(drop=True)
    )
    if export_names is None or export_names.empty:
        return info.astype(dict.fromkeys(DESCRIBED_COLUMNS, TEXT))
    known = info.set_index("product_id")
    ids = known.index.union(pd.Index(export_names.index), sort=False)
    known = known.reindex(ids)
    known["name"] = known["name"].astype(TEXT).fillna(export_names.reindex(ids).astype(TEXT))
    return known.rename_axis("product_id").reset_index().astype(dict.fromkeys(DESCRIBED_COLUMNS, TEXT))
