"""A colour or size variant is not a complement: the variant policy, and both filters that apply it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipeline.contract.vocabulary import KEY_SEPARATOR
from pipeline.flow.run import run
from pipeline.local.baskets import export_names
from pipeline.policy.names import described_products
from pipeline.policy.offers import cart_block
from pipeline.policy.variants import VariantIndex, not_first, variant_keys, variant_offers
from pipeline.read.explain import explain
from pipeline.read.lookup import offers_for_cart

from conftest import Export, export_config


def test_base_codes_names_and_declared_groups_make_variants() -> None:
    known = {
        "85099B": variant_keys("85099B", "JUMBO BAG RED RETROSPOT"),
        "85099C": variant_keys("85099C", "JUMBO BAG BAROQUE BLACK WHITE"),
        "22726": variant_keys("22726", "ALARM CLOCK BAKELIKE GREEN"),
        "22727": variant_keys("22727", "Alarm clock bakelike red "),
        "22386": variant_keys("22386", "JUMBO BAG PINK POLKADOT"),
        "1001": variant_keys("1001", "MUG", "mugs"),
        "1002": variant_keys("1002", "CUP", "mugs"),
    }
    antecedents = np.array(["85099B", "22726", "22386", "22386|85099B", "1001", "22726"])
    offered = np.array(["85099C", "22727", "85099B", "21931", "1002", "22423"])
    # Same base code; same name up to a colour (any case, stray spaces); a declared group.
    assert variant_offers(antecedents, offered, known).tolist() == [True, True, False, False, True, False]
    # A product the catalog lacks still has its id's key.
    assert variant_offers(np.array(["23084A"]), np.array(["23084B"]), {}).tolist() == [True]
    # A name of one word besides colours says nothing.
    assert variant_keys("1", "RED") == frozenset()
    # A colour word in the plural is one too: the rose colourway of a range of teacups is a variant of the green.
    roses, green = (
        variant_keys("22699", "ROSES REGENCY TEACUP AND SAUCER"),
        variant_keys("22697", "GREEN REGENCY TEACUP"),
    )
    assert roses & variant_keys("22698", "PINK REGENCY TEACUP AND SAUCER") and not roses & green
    # ... but not a word that only ends like one ("MS" is not the size M), nor a plural of another word.
    assert variant_keys("7", "MS TEA") == frozenset({"name:MS TEA"})
    assert variant_keys("8", "TEA CUPS") == frozenset({"name:TEA CUPS"})


words = st.lists(
    st.sampled_from(["RED", "PINKS", "LARGE", "MUG", "HEART", "TIN", "SET", "3", "MS"]), min_size=1, max_size=5
)


@given(first=words, second=words)
def test_being_a_variant_is_symmetric(first: list[str], second: list[str]) -> None:
    known = {"a": variant_keys("a", " ".join(first)), "b": variant_keys("b", " ".join(second))}
    there = variant_offers(np.array(["a"]), np.array(["b"]), known)
    back = variant_offers(np.array(["b"]), np.array(["a"]), known)
    assert there.tolist() == back.tolist()


def test_the_cart_block_never_leads_with_a_variant_of_any_product_of_the_cart() -> None:
    """A rule triggered by one cart product (22386 -> 85099F) may offer a variant of another cart product
    (85099B, same base code): whatever part of the cart triggered the rule, the cart block puts it after
    the first offer (rank.cart_variants = "not_first") or drops it ("never"); the cart without 85099B
    keeps it first, and so does the cart block without the index."""
    offers = pd.DataFrame(
        {
            "case": [0, 0, 1],
            "antecedent_key": ["22386", "22386", "22386"],
            "antecedent_size": [1, 1, 1],
            "consequent": ["85099F", "23203", "85099F"],
            "score": [0.9, 0.5, 0.9],
            "confidence": [0.2, 0.4, 0.2],
            "lift": [10.0, 7.0, 10.0],
            "consequent_margin": [1.0, 1.0, 1.0],
        }
    )
    case = np.array([0, 0, 1])
    product = np.array(["22386", "85099B", "22386"], dtype=object)
    index = VariantIndex.of(["22386", "85099B", "85099F", "23203"], {})
    later = cart_block(offers, case, product, None, True, 0.25, 3, variants=index)
    assert later[["case", "consequent"]].values.tolist() == [[0, "23203"], [0, "85099F"], [1, "85099F"]]
    kept = cart_block(offers, case, product, None, True, 0.25, 3, variants=index, cart_variants="never")
    assert kept[["case", "consequent"]].values.tolist() == [[0, "23203"], [1, "85099F"]]
    assert cart_block(offers, case, product, None, True, 0.25, 3)["consequent"].tolist() == [
        "85099F",
        "23203",
        "85099F",
    ]
    # A cart whose only offers are variants of it shows none: no variant leads a cart.
    alone = cart_block(offers[offers["consequent"] == "85099F"], case, product, None, True, 0.25, 3, variants=index)
    assert alone[["case", "consequent"]].values.tolist() == [[1, "85099F"]]


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=30))
def test_not_first_puts_each_carts_best_non_variant_first_and_keeps_the_rest_in_order(
    rows: list[tuple[int, bool]],
) -> None:
    rows = sorted(rows, key=lambda r: r[0])  # each case's offers together, best first (a stable sort)
    case = np.array([c for c, _ in rows], dtype=np.int64)
    variant = np.array([v for _, v in rows], dtype=bool)
    shown = not_first(case, variant)
    for c in set(case.tolist()):
        given_rows = np.flatnonzero(case == c)
        got = [int(r) for r in shown if case[r] == c]
        complements = given_rows[~variant[given_rows]]
        if complements.size == 0:
            assert got == []  # only variants: none shown
            continue
        lead = int(complements[0])
        assert got == [lead, *(int(r) for r in given_rows if r != lead)]
    assert np.all(np.diff(case[shown]) >= 0)  # cases stay in order


names = st.sampled_from(["MUG RED", "MUG PINK", "HEART TIN", "HEART TIN LARGE", "SET 3", None])
ids = st.sampled_from(["100A", "100B", "200", "201", "300C", "301"])


@given(
    catalog=st.dictionaries(ids, names),
    carts=st.lists(st.lists(ids, min_size=1, max_size=4), min_size=1, max_size=4),
    offers=st.lists(st.tuples(st.integers(0, 3), ids), max_size=10),
    categorical=st.booleans(),
)
def test_a_cart_variant_is_a_variant_of_the_whole_cart_as_one_antecedent(
    catalog: dict[str, str | None], carts: list[list[str]], offers: list[tuple[int, str]], categorical: bool
) -> None:
    """The index's verdict for (cart, offer) is the antecedent filter's verdict for the cart taken as one
    antecedent; products as arrays or categoricals alike."""
    known = {p: variant_keys(p, n) for p, n in catalog.items()}
    offers = [(c % len(carts), p) for c, p in offers]
    case = np.repeat(np.arange(len(carts)), [len(c) for c in carts])
    product = np.array([p for c in carts for p in c], dtype=object)
    offered = np.array([p for _, p in offers], dtype=object)
    index = VariantIndex.of(["200", *product, *offered], known)
    if categorical:
        product, offered = pd.Categorical(product), pd.Categorical(offered)
    flagged = index.cart_variants(case, product, np.array([c for c, _ in offers], dtype=np.int64), offered)
    antecedents = np.array([KEY_SEPARATOR.join(carts[c]) for c, _ in offers], dtype=object)
    expected = variant_offers(antecedents, np.array([p for _, p in offers], dtype=object), known)
    assert flagged.tolist() == expected.tolist()


def _with_groups(export: Export, directory: Path) -> Path:
    """The fixture catalog declaring the two jumbo bags (always bought together) one variant group."""
    catalog = pd.read_csv(export.catalog, dtype=str)
    catalog["variant_group"] = catalog["product_id"].map({"22386": "jumbo bag", "85099B": "jumbo bag"})
    path = directory / "catalog_with_groups.csv"
    catalog.to_csv(path, index=False)
    return path


def test_declared_variants_are_never_each_others_cross_sell(export: Export, tmp_path: Path) -> None:
    catalog = str(_with_groups(export, tmp_path))
    kept = run(export_config(export, tmp_path / "kept", **{"catalog.path": catalog, "rank.drop_variants": False}))
    dropped = run(export_config(export, tmp_path / "dropped", **{"catalog.path": catalog}))

    def bag_offers(result: object) -> pd.DataFrame:
        recs = pd.read_parquet(Path(result.run_dir) / "recommendations.parquet")  # type: ignore[attr-defined]
        bags = recs["antecedent"].map(lambda a: "22386" in a or "85099B" in a)
        return recs[bags & recs["consequent"].isin(["22386", "85099B"])]

    never = run(export_config(export, tmp_path / "never", **{"catalog.path": catalog, "rank.cart_variants": "never"}))

    assert len(bag_offers(kept)) > 0  # the planted association is offered when variants are kept ...
    assert bag_offers(never).empty  # ... and never when they are variants, under the strict rule
    basket_offers = bag_offers(kept)["placement"].isin(["product", "cart"]).sum()
    assert never.counts.rules_dropped["variant_of_antecedent"] >= basket_offers > 0
    facts = explain(never.output_dir, ["22386"], "85099B")
    assert facts["verdict"] == (
        "not offered: no basket rule: a colour or size variant of the antecedent: "
        "never offered as a cross-sell (rank.drop_variants)"
    )
    # By default a product page never offers its variant: the cart block gets it, as a cart row of the product.
    bags = bag_offers(dropped)
    assert len(bags) > 0 and set(bags["placement"]) == {"cart"} and set(bags["antecedent_size"]) == {1}
    assert dropped.counts.rules_dropped["variant_of_antecedent"] < never.counts.rules_dropped["variant_of_antecedent"]
    verdict = explain(dropped.output_dir, ["22386"], "85099B")["verdict"]
    assert verdict.startswith("offered: rank 1 of the cart offers, a colour or size variant of the antecedent")


@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["10", "2", "A"]), st.one_of(st.none(), st.sampled_from(["MUG", "CUP", " MUG", "bowl"]))
        ),
        max_size=40,
    ),
    categorical=st.booleans(),
)
def test_a_product_is_named_by_its_most_frequent_description(
    lines: list[tuple[str, str | None]], categorical: bool
) -> None:
    ids = np.array([p for p, _ in lines], dtype=object)
    names = pd.Series([n for _, n in lines], dtype=object)
    items = np.array(sorted(set(ids.tolist())), dtype=object)
    codes = np.searchsorted(items, ids).astype(np.int64)
    found = export_names(codes, items, names.astype("category") if categorical else names)
    described: dict[str, Counter[str]] = {}
    for product, name in lines:
        if name is not None:
            described.setdefault(product, Counter())[name] += 1
    expected = {p: min(c, key=lambda n: (-c[n], n)) for p, c in described.items()}
    assert (found.to_dict() if found is not None else {}) == expected


def test_the_catalog_names_a_product_and_the_export_names_the_rest() -> None:
    catalog = pd.DataFrame(
        {"product_id": ["1", "2"], "name": ["CATALOG MUG", None], "category": ["Home", None], "variant_group": None}
    )
    export = pd.Series({"1": "EXPORT MUG", "2": "EXPORT CUP", "3": "EXPORT BOWL"})
    described = described_products(catalog, export).set_index("product_id")
    assert described["name"].to_dict() == {"1": "CATALOG MUG", "2": "EXPORT CUP", "3": "EXPORT BOWL"}
    assert described.loc["1", "category"] == "Home" and pd.isna(described.loc["3", "category"])
    alone = described_products(catalog, None)
    assert alone["product_id"].tolist() == ["1", "2"] and alone["name"].isna().tolist() == [False, True]
    assert described_products(None, export).set_index("product_id")["name"].to_dict() == export.to_dict()


def test_the_export_descriptions_name_the_variants_the_catalog_does_not(export: Export, tmp_path: Path) -> None:
    # The two jumbo bags (always bought together) described as colours of one bag; the catalog names neither.
    text = export.path.read_text(encoding="utf-8").replace("JUMBO BAG RED RETROSPOT", "JUMBO BAG RED POLKADOT")
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(text, encoding="utf-8")
    catalog = pd.read_csv(export.catalog, dtype=str)
    unnamed = tmp_path / "unnamed.csv"
    catalog.assign(name=catalog["name"].where(~catalog["product_id"].isin(["22386", "85099B"]))).to_csv(
        unnamed, index=False
    )
    overrides = {"input.paths": [str(renamed)]}
    named = run(export_config(export, tmp_path / "named", **overrides, **{"catalog.path": str(unnamed)}))
    ignored = run(
        export_config(
            export,
            tmp_path / "ignored",
            **overrides,
            **{"catalog.path": str(unnamed), "input.columns.product_name": None},
        )
    )
    catalog_first = run(export_config(export, tmp_path / "catalog", **overrides))

    def bag_offers(result: object) -> int:
        recs = pd.read_parquet(Path(result.run_dir) / "recommendations.parquet")  # type: ignore[attr-defined]
        bags = recs["antecedent"].map(lambda a: "22386" in a or "85099B" in a) & (recs["placement"] == "product")
        return int((bags & recs["consequent"].isin(["22386", "85099B"])).sum())

    assert bag_offers(named) == 0  # variants by the export's names (never on a product page) ...
    assert bag_offers(ignored) > 0  # ... offered when the export's descriptions are not read ...
    assert bag_offers(catalog_first) > 0  # ... and when the catalog names them apart (its names come first)
    products = pd.read_parquet(named.run_dir / "products.parquet").drop_duplicates("product_id")
    names = products.set_index("product_id")["name"]
    assert names["85099B"] == "JUMBO BAG RED POLKADOT" and names["00123"] == "TEA CUP"
    ignored_names = pd.read_parquet(ignored.run_dir / "products.parquet").set_index("product_id")["name"]
    assert ignored_names.loc[["85099B"]].isna().all()
    # The offers carry the names too: the catalog's where it has one, else the export's (none when not read).
    for result, name in ((named, "JUMBO BAG RED POLKADOT"), (ignored, None)):
        offers = pd.read_parquet(result.run_dir / "recommendations.parquet")
        bag = offers.loc[offers["consequent"] == "85099B", "consequent_name"]
        assert len(bag) > 0 and (bag.isna().all() if name is None else bag.eq(name).all())
        assert offers.loc[offers["consequent"] == "00124", "consequent_name"].eq("SAUCER").all()
        emails = pd.read_parquet(result.run_dir / "buy_again.parquet")
        bag = emails.loc[emails["product_id"] == "85099B", "product_name"]
        assert len(bag) > 0 and (bag.isna().all() if name is None else bag.eq(name).all())


def test_the_best_sellers_that_fill_a_cart_block_are_no_variant_of_the_cart(export: Export, tmp_path: Path) -> None:
    # The jumbo bags declared one variant group: a cart of one of them, filled up to every product sold,
    # never shows the other under the strict rule (the rules drop it, and so does the best-seller fill);
    # by default its rule offers it after the first offer; without the rule it is offered anywhere.
    catalog = str(_with_groups(export, tmp_path))
    settings = {"never": {"rank.cart_variants": "never"}, "not_first": {}, "kept": {"rank.drop_variants": False}}
    for name, shown in (("never", False), ("not_first", True), ("kept", True)):
        result = run(export_config(export, tmp_path / name, **{"catalog.path": catalog, **settings[name]}))
        offers = offers_for_cart(result.output_dir, ["22386"], limit=20)
        assert ("85099B" in set(offers["consequent"])) is shown
        assert offers["source"].isin(["category_best_seller", "best_seller"]).any()
        if name == "not_first":
            bag = offers.index[offers["consequent"] == "85099B"][0]
            assert bag > 0 and offers.loc[bag, "source"] == "rule"
