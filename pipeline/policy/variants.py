"""Which products are variants of one another: a variant is not a complement.

The same mug in another colour is a substitute the shopper already
considered, not an addition: a cross-sell of it annoys. Two products are
variants when they share a *variant key*:

- a group the catalog declares (``catalog.columns.variant_group``);
- the same base code: the digits of an id made of digits and a letter suffix
  (``85099B`` and ``85099C`` are the base ``85099``);
- the same name up to colour and size words, in the singular or the plural
  (``ALARM CLOCK BAKELIKE GREEN`` and ``ALARM CLOCK BAKELIKE PINK``; ``ROSES
  REGENCY TEACUP AND SAUCER`` and ``GREEN REGENCY TEACUP AND SAUCER``), when
  at least two words remain.

With ``rank.drop_variants`` (default on) no product page offers a variant of
the viewed product: :func:`variant_offers` marks them, on every engine, and
:func:`variant_placements` takes them off the page. In the cart block
(:class:`VariantIndex`), whichever part of the cart triggered the rule,
``rank.cart_variants`` decides about a variant of any product of the cart:

- ``"not_first"`` (default): never the first offer, but offered after it. A
  buyer who takes the red alarm clock often takes the green one too (8.7% of
  the held-out products of Online Retail's test carts are a variant of their
  own cart: wholesale buyers stock a range); the first offer stays a
  complement. The product page's variants are published as ``cart`` rows of
  the viewed product, so the cart block can find them.
- ``"never"``: the strict rule, for shops where another colour is only ever a
  substitute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline.arrays import positions, ragged_arange
from pipeline.config import CartVariants
from pipeline.contract.vocabulary import CART, KEY_SEPARATOR, PRODUCT

#: Words that name a colour or a size: a name that differs only in these names a variant.
VARIANT_WORDS = frozenset(
    (
        # colours
        "RED", "BLUE", "GREEN", "PINK", "IVORY", "WHITE", "BLACK", "YELLOW", "ORANGE", "PURPLE", "BROWN", "GREY",
        "GRAY", "CREAM", "GOLD", "SILVER", "TURQUOISE", "LILAC", "AQUA", "TEAL", "NAVY", "BEIGE", "CHOCOLATE",
        "LIME", "MINT", "ROSE", "COPPER", "BRONZE", "CLEAR", "NATURAL", "LAVENDER", "VIOLET", "MAGENTA",
        "FUCHSIA", "PEACH", "KHAKI", "OLIVE", "CHARCOAL", "AMBER", "COBALT", "JADE", "LEMON", "MAUVE", "CORAL",
        # sizes
        "SMALL", "MEDIUM", "LARGE", "MINI", "BIG", "GIANT", "XS", "S", "M", "L", "XL", "XXL",
    )
)  # fmt: skip
_BASE_CODE = re.compile(r"^(\d{3,})[A-Z]{1,3}$", re.IGNORECASE)
_WORD = re.compile(r"[A-Z0-9]+")

#: Cells of the largest (cart, key) lookup table built at once (bytes of a boolean table).
LOOKUP_TABLE_CELLS = 1 << 27

#: A product's variant keys.
Keys = frozenset[str]


def variant_keys(product_id: str, name: object = None, group: object = None) -> Keys:
    """The variant keys of one product (see the module); products sharing a key are variants."""
    keys = set()
    if isinstance(group, str) and group.strip():
        keys.add("group:" + group.strip())
    base = _BASE_CODE.match(product_id)
    if base is not None:
        keys.add("code:" + base.group(1))
    words = content_words(name)
    if len(words) >= 2:
        keys.add("name:" + " ".join(words))
    return frozenset(keys)


def content_words(name: object) -> list[str]:
    """A name's words that are not colour or size words, upper-cased, in order (none for a missing name)."""
    if not isinstance(name, str):
        return []
    return [w for w in _WORD.findall(name.upper()) if not variant_word(w)]


def variant_word(word: str) -> bool:
    """Whether an upper-case ``word`` names a colour or a size (:data:`VARIANT_WORDS`), also in the plural:
    ``ROSES`` is the rose colourway of a range as ``ROSE`` is (the singular has 3 letters or more, so
    ``MS`` is not ``M``)."""
    if word in VARIANT_WORDS:
        return True
    singular = [word[:-1]] if word.endswith("S") else []
    if word.endswith("ES"):
        singular.append(word[:-2])
    return any(len(w) >= 3 and w in VARIANT_WORDS for w in singular)


def catalog_variant_keys(
    product_ids: Iterable[str], names: Iterable[object], groups: Iterable[object]
) -> dict[str, Keys]:
    """Every catalog product's variant keys (the catalog is product-sized: engines ship this to their workers)."""
    return {str(p): variant_keys(str(p), n, g) for p, n, g in zip(product_ids, names, groups, strict=True)}


def variant_offers(antecedent_keys: np.ndarray, consequents: np.ndarray, known: Mapping[str, Keys]) -> np.ndarray:
    """Offers whose consequent is a variant of a product of their antecedent (``a|b`` keys).

    ``known`` holds the catalog's products; a product the catalog lacks has its id's keys only.
    Each distinct product's keys are worked out once; the offers are then matched on (offer, key) pairs.
    """
    members = pd.Series(np.asarray(antecedent_keys, dtype=object)).str.split(KEY_SEPARATOR, regex=False).explode()
    offered = pd.Series(np.asarray(consequents, dtype=object))
    products = pd.unique(np.concatenate([members.to_numpy(dtype=object), offered.to_numpy(dtype=object)]))
    keys = [(p, k) for p in products for k in _keys(str(p), known)]
    if not keys:
        return np.zeros(len(offered), dtype=bool)
    table = pd.DataFrame(keys, columns=["product", "key"])
    held = pd.DataFrame({"offer": members.index.to_numpy(), "product": members.to_numpy(dtype=object)})
    held = held.merge(table, on="product")[["offer", "key"]]
    wanted = pd.DataFrame({"offer": offered.index.to_numpy(), "product": offered.to_numpy(dtype=object)})
    wanted = wanted.merge(table, on="product")[["offer", "key"]]
    both = wanted.merge(held, on=["offer", "key"])
    flagged = np.zeros(len(offered), dtype=bool)
    flagged[both["offer"].to_numpy(dtype=np.int64)] = True
    return flagged


def variant_placements(placement: np.ndarray, variant: np.ndarray, cart_variants: CartVariants) -> np.ndarray:
    """Where each offer is published under ``rank.drop_variants``: an offer that is not a ``variant`` of
    its antecedent keeps its ``placement``; one that is goes to the cart block (``cart``) when
    ``cart_variants`` is ``"not_first"`` and it was a product page's or a cart's offer, else nowhere
    (``""``: dropped, counted as ``variant_of_antecedent``)."""
    placement = np.asarray(placement, dtype=object)
    to_cart = np.isin(placement, [PRODUCT, CART]) if cart_variants == "not_first" else np.zeros(placement.size, bool)
    return np.where(np.asarray(variant, dtype=bool), np.where(to_cart, CART, ""), placement)


def not_first(case: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """The offers of ``rank.cart_variants = "not_first"``: positions of the rows to show, in order.

    Rows are each case's offers, best first (``case`` ascending); ``variant`` marks those that are a
    variant of a product of their cart. Each case's best offer that is not one comes first, the others
    follow in their order; a case whose offers are all variants shows none (no variant leads a cart).
    """
    case = np.asarray(case, dtype=np.int64)
    lead = np.zeros(case.size, dtype=bool)
    rows = np.flatnonzero(~np.asarray(variant, dtype=bool))
    if rows.size:
        lead[rows[np.r_[True, case[rows][1:] != case[rows][:-1]]]] = True
    order = np.lexsort([~lead, case])
    return order[np.isin(case, case[lead])[order]]


@dataclass(frozen=True)
class VariantIndex:
    """Products' variant keys as integer codes, worked out once for many carts.

    ``keys`` has a row per product of ``products`` and a column per distinct
    key; the cart block asks it, for thousands of carts at a time, which
    offers are a variant of a product of their own cart.
    """

    products: pd.Index
    keys: sp.csr_matrix

    @classmethod
    def of(cls, products: Iterable[object], known: Mapping[str, Keys]) -> VariantIndex:
        """The index of ``products``: the catalog's keys (``known``), else those of the id alone."""
        index = pd.Index(pd.unique(np.asarray([str(p) for p in products], dtype=object)))
        found = [_keys(p, known) for p in index]
        codes: dict[str, int] = {}
        columns = [codes.setdefault(k, len(codes)) for keys in found for k in sorted(keys)]
        rows = np.repeat(np.arange(len(index)), [len(keys) for keys in found])
        matrix = sp.csr_matrix(
            (np.ones(len(columns), dtype=np.int8), (rows, np.asarray(columns, dtype=np.int64))),
            shape=(len(index), len(codes)),
        )
        return cls(index, matrix)

    def cart_variants(
        self,
        case: np.ndarray,
        product: np.ndarray | pd.Categorical,
        offer_case: np.ndarray,
        offer: np.ndarray | pd.Categorical,
    ) -> np.ndarray:
        """Which offers are a variant of a product of their cart (the cart of offer ``i`` holds
        ``product[case == offer_case[i]]``); products outside the index have no keys."""
        width = max(self.keys.shape[1], 1)
        held_case, held_key = self._pairs(np.asarray(case, dtype=np.int64), product)
        offer_index, offer_key = self._pairs(np.arange(len(offer_case), dtype=np.int64), offer)
        wanted = np.asarray(offer_case, dtype=np.int64)[offer_index] * width + offer_key
        flagged = np.zeros(len(offer_case), dtype=bool)
        held = held_case * width + held_key
        # A table over the (cart, key) codes when it fits (basket evaluate's thousands of carts), else a sort.
        small = (int(held.max(initial=0)) + 1) <= LOOKUP_TABLE_CELLS
        flagged[offer_index[np.isin(wanted, held, kind="table" if small and held.size else None)]] = True
        return flagged

    def _pairs(self, owner: np.ndarray, product: np.ndarray | pd.Categorical) -> tuple[np.ndarray, np.ndarray]:
        """(owner, key code) for each key of each product (none for a product outside the index)."""
        position = positions(self.products, product)
        known = position >= 0
        owner, position = owner[known], position[known]
        counts = np.diff(self.keys.indptr)[position]
        at = np.repeat(self.keys.indptr[position], counts) + ragged_arange(counts)
        return np.repeat(owner, counts), self.keys.indices[at].astype(np.int64)


def _keys(product: str, known: Mapping[str, Keys]) -> Keys:
    """A product's variant keys: the catalog's, else those of its id alone."""
    found = known.get(product)
    return found if found is not None else variant_keys(product)
