"""The item model (EASE) that orders the offers: its weights against an independent ridge regression,
its truncation, the rule and cart sums, and the storefront's cart block reading it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.config import Config, ModelConfig
from pipeline.flow.run import run
from pipeline.policy import model as model_module
from pipeline.policy.model import (
    ItemModel,
    cosine_weights,
    ease_weights,
    jaccard_weights,
    model_products,
    symmetric_inverse,
)
from pipeline.read.lookup import offers_for_cart

from conftest import Export, export_config


@st.composite
def _baskets(draw: st.DrawFn) -> np.ndarray:
    rows = draw(st.integers(4, 25))
    cols = draw(st.integers(2, 6))
    cells = draw(st.lists(st.booleans(), min_size=rows * cols, max_size=rows * cols))
    return np.array(cells, dtype=np.float64).reshape(rows, cols)


@settings(max_examples=60, deadline=None)
@given(_baskets(), st.floats(0.1, 50), st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_each_column_of_the_weights_is_the_ridge_regression_on_the_other_products(
    x: np.ndarray, l2: float, popularity_power: float
) -> None:
    """EASE's closed form equals, column by column, the ridge regression of that product on the others
    (solved here as an augmented least-squares problem, without the Gram inverse); with a popularity
    power, the regression of the basket matrix whose columns are divided by basket count ** power."""
    weights = ease_weights(x.T @ x, l2, popularity_power)
    x = x / np.maximum(x.sum(axis=0), 1.0) ** popularity_power
    n = x.shape[1]
    for j in range(n):
        others = [i for i in range(n) if i != j]
        design = np.vstack([x[:, others], np.sqrt(l2) * np.eye(n - 1)])
        target = np.concatenate([x[:, j], np.zeros(n - 1)])
        expected, *_ = np.linalg.lstsq(design, target, rcond=None)
        assert weights[j, j] == 0
        np.testing.assert_allclose(weights[others, j], expected, rtol=1e-7, atol=1e-9)


def test_the_model_covers_the_products_in_the_most_baskets_ties_by_id() -> None:
    products = np.array(["B", "A", "C", "D", "E"], dtype=object)
    baskets = np.array([5, 5, 9, 0, 1])
    chosen = model_products(products, baskets, ModelConfig(max_items=3))
    assert list(products[chosen]) == ["C", "A", "B"]  # D was never bought: never in the model
    assert list(products[model_products(products, baskets, ModelConfig())]) == ["C", "A", "B", "E"]


def _fitted(neighbours: int = 100) -> tuple[ItemModel, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = (rng.random((200, 6)) < 0.3).astype(np.float64)
    x[:, 1] = np.maximum(x[:, 1], x[:, 0])  # B comes with A
    products = np.array(["F", "A", "E", "B", "D", "C"], dtype=object)  # not sorted: fit sorts them
    gram = x.T @ x
    config = ModelConfig(l2=5.0, neighbours=neighbours)
    model = ItemModel.fit(gram, products, config)
    return model, ease_weights(gram, 5.0, config.popularity_power), products


def test_a_rule_weighs_the_sum_of_its_antecedents_weights_and_nan_outside_the_model() -> None:
    model, dense, products = _fitted()
    at = {p: i for i, p in enumerate(products)}
    found = model.rule_weights(np.array(["A", "A|E", "Z", "A|Z"], dtype=object), np.array(["B", "B", "B", "Z"]))
    assert found[0] == pytest.approx(dense[at["A"], at["B"]])
    assert found[1] == pytest.approx(dense[at["A"], at["B"]] + dense[at["E"], at["B"]])
    assert np.isnan(found[2]) and np.isnan(found[3])  # antecedent, then consequent, unknown


@pytest.mark.parametrize("block_cells", [model_module.DENSE_BLOCK_CELLS, 6])
def test_a_cart_weighs_the_sum_over_its_products_and_the_table_reads_back(
    block_cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with one cart per dense block of sums (6 cells: the model's 6 products), offers out of cart order."""
    monkeypatch.setattr(model_module, "DENSE_BLOCK_CELLS", block_cells)
    model, dense, products = _fitted()
    at = {p: i for i, p in enumerate(products)}
    case = np.array([0, 0, 0, 1, 2])
    product = np.array(["A", "E", "Z", "C", "Z"], dtype=object)
    found = model.cart_weights(
        case, product, np.array([1, 0, 2, 0, 1]), np.array(["B", "B", "B", "D", "Z"], dtype=object)
    )
    expected = [
        dense[at["C"], at["B"]],
        dense[at["A"], at["B"]] + dense[at["E"], at["B"]],
        np.nan,  # a cart of products outside the model
        dense[at["A"], at["D"]] + dense[at["E"], at["D"]],
        np.nan,  # a product outside the model
    ]
    assert found == pytest.approx(expected, nan_ok=True)
    table = model.table()
    again = ItemModel.from_table(table)
    assert list(again.products) == sorted(products)
    np.testing.assert_array_equal(again.weights.toarray(), model.weights.toarray())


def test_each_product_keeps_its_strongest_weights() -> None:
    model, dense, products = _fitted(neighbours=2)
    table = model.table()
    assert table.groupby("product_id").size().max() == 2
    at = {p: i for i, p in enumerate(products)}
    for product, rows in table.groupby("product_id"):
        row = np.abs(dense[at[product]])
        assert sorted(np.abs(rows["weight"]), reverse=True) == pytest.approx(sorted(row, reverse=True)[:2])
        assert list(rows["weight"].abs()) == sorted(rows["weight"].abs(), reverse=True)  # strongest first


def test_the_storefront_scores_a_cart_with_the_published_weights(export: Export, tmp_path: Path) -> None:
    config: Config = export_config(export, tmp_path / "out")
    assert config.rank.by == "model_margin"
    result = run(config)
    neighbours = pq.read_table(result.run_dir / "neighbours.parquet").to_pandas()
    assert len(neighbours) == result.counts.neighbours > 0
    recommendations = pq.read_table(result.run_dir / "recommendations.parquet").to_pandas()
    pages = recommendations[(recommendations["placement"] == "product") & (recommendations["kind"] == "cross_sell")]
    assert pages["model_weight"].notna().all()
    # A product page's score is its confidence x margin ^ its own alpha (rank.page_by, rank.page_margin_power),
    # a cart's rule's its weight x margin ^ alpha.
    alpha, page_alpha = config.rank.margin_power, config.rank.page_power
    assert config.rank.page_by == "expected_margin" and page_alpha != alpha
    probability = pages["confidence"].to_numpy()
    assert pages["score"].to_numpy() == pytest.approx(probability * pages["consequent_margin"].to_numpy() ** page_alpha)
    carts = recommendations[(recommendations["placement"] == "cart") & (recommendations["kind"] == "cross_sell")]
    assert len(carts) > 0 and carts["model_weight"].notna().all()
    assert carts["score"].to_numpy() == pytest.approx(
        carts["model_weight"].to_numpy() * carts["consequent_margin"].to_numpy() ** alpha
    )
    cart = list(pages["antecedent_key"].value_counts().index[:3])
    offers = offers_for_cart(result.output_dir, cart, limit=5)
    rules = offers[offers["source"] == "rule"]
    assert len(rules) > 0 and not rules["consequent"].isin(cart).any()
    weights = neighbours[neighbours["product_id"].isin(cart)].groupby("neighbour")["weight"].sum()
    expected = (
        weights.reindex(rules["consequent"]).fillna(0).to_numpy() * rules["consequent_margin"].to_numpy() ** alpha
    )
    assert rules["score"].to_numpy() == pytest.approx(expected)
    assert list(rules["score"]) == sorted(rules["score"], reverse=True)
    # Every offer is still a published rule of a product of the cart.
    allowed = pages[pages["antecedent_key"].isin(cart)]
    assert set(rules["consequent"]) <= set(allowed["consequent"]) | set(
        recommendations.loc[recommendations["placement"] == "cart", "consequent"]
    )


@settings(max_examples=50, deadline=None)
@given(
    _baskets(),
    st.integers(1, 5),
    st.lists(st.lists(st.integers(0, 7), min_size=0, max_size=5), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7)), min_size=1, max_size=12),
)
def test_cart_and_rule_weights_are_the_brute_force_sums_of_the_kept_weights(
    x: np.ndarray, neighbours: int, carts: list[list[int]], offers: list[tuple[int, int]]
) -> None:
    """Products 0..n-1 are in the model, 6 and 7 never are (ids P6, P7): sums over the kept weights only."""
    n = x.shape[1]
    products = np.array([f"P{i}" for i in range(n)], dtype=object)
    model = ItemModel.fit(x.T @ x, products, ModelConfig(l2=1.0, neighbours=neighbours))
    kept = model.weights.toarray()  # rows and columns in sorted id order = P0..P(n-1) for n <= 6
    case = np.array([c for c, cart in enumerate(carts) for _ in cart], dtype=np.int64)
    held = np.array([f"P{p}" for cart in carts for p in cart], dtype=object)
    offers = [(c % len(carts), p) for c, p in offers]
    found = model.cart_weights(case, held, np.array([c for c, _ in offers]), np.array([f"P{p}" for _, p in offers]))
    for value, (c, p) in zip(found, offers, strict=True):
        inside = sorted({q for q in carts[c] if q < n})
        if p >= n or not inside:
            assert np.isnan(value)
        else:
            assert value == pytest.approx(sum(kept[q, p] for q in inside), abs=1e-12)
    keys = np.array(["|".join(f"P{q}" for q in sorted(set(cart))) or "P7" for cart in carts], dtype=object)
    targets = np.array([f"P{offers[c % len(offers)][1]}" for c in range(len(carts))], dtype=object)
    rules = model.rule_weights(keys, targets)
    expected = model.cart_weights(
        np.array([c for c, key in enumerate(keys) for _ in key.split("|")], dtype=np.int64),
        np.array([q for key in keys for q in key.split("|")], dtype=object),
        np.arange(len(keys)),
        targets,
    )
    np.testing.assert_allclose(rules, expected, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(-3, 3), min_size=6, max_size=6), min_size=6, max_size=6),
    st.lists(st.lists(st.integers(0, 7), min_size=0, max_size=4), min_size=1, max_size=5),
    st.integers(1, 7),
)
# Two products tied for the one place: the smaller id, not whichever a partition puts first.
@example([[0] * 6, [0, 0, 0, 0, 1, 1], *[[0] * 6] * 4], [[1]], 1)
def test_the_model_alone_offers_each_carts_best_summed_weights(
    weights: list[list[int]], carts: list[list[int]], k: int
) -> None:
    """``cart_top`` over every product is the brute-force ranking: the sum of the cart's weights towards
    each product not in the cart, positive ones only, best first, ties to the smaller id; products outside
    the model (P6, P7) add nothing. Whole-number weights: exact in single precision."""
    dense = np.array(weights, dtype=np.float64)
    np.fill_diagonal(dense, 0.0)
    products = np.array([f"P{i}" for i in range(6)], dtype=object)
    model = ItemModel(pd.Index(products), sp.csr_matrix(dense))
    case = np.array([c for c, cart in enumerate(carts) for _ in cart], dtype=np.int64)
    held = np.array([f"P{p}" for cart in carts for p in cart], dtype=object)
    found = model.cart_top(case, held, k)
    for c, cart in enumerate(carts):
        inside = {q for q in cart if q < 6}
        score = {p: sum(dense[q, p] for q in inside) for p in range(6) if p not in inside}
        expected = sorted((p for p, v in score.items() if v > 0), key=lambda p: (-score[p], p))[:k]
        offered = found[found["case"] == c]
        assert offered["product_id"].tolist() == [f"P{p}" for p in expected]
        assert offered["position"].tolist() == list(range(1, len(expected) + 1))


@given(st.lists(st.sets(st.integers(0, 4), min_size=1), min_size=1, max_size=20))
def test_knn_and_sar_similarities_are_those_of_the_products_basket_sets(baskets: list[set[int]]) -> None:
    """Item-kNN's cosine and SAR's Jaccard, counted from the baskets as sets (zero for a product with itself)."""
    x = np.array([[p in b for p in range(5)] for b in baskets], dtype=np.float64)
    cosine, jaccard = cosine_weights(x.T @ x), jaccard_weights(x.T @ x)
    for i in range(5):
        for j in range(5):
            holding = [{b for b, basket in enumerate(baskets) if p in basket} for p in (i, j)]
            both, either = len(holding[0] & holding[1]), len(holding[0] | holding[1])
            alone = max(len(holding[0]), 1) * max(len(holding[1]), 1)
            assert cosine[i, j] == pytest.approx(0.0 if i == j else both / alone**0.5)
            assert jaccard[i, j] == pytest.approx(0.0 if i == j or not either else both / either)


def test_a_known_customers_cart_block_weighs_in_their_history(export: Export, tmp_path: Path) -> None:
    """With a customer id, each rule offer's weight gains model.history_weight x ln(1 + the customer's
    orders that held it), from history.parquet; a stranger's cart is ordered as an anonymous one."""
    config: Config = export_config(export, tmp_path / "out")
    result = run(config)
    history = pq.read_table(result.run_dir / "history.parquet").to_pandas()
    assert len(history) == result.counts.history > 0
    assert history.groupby("customer_id")["rank"].max().le(config.model.history_products).all()
    neighbours = pq.read_table(result.run_dir / "neighbours.parquet").to_pandas()
    pages = pq.read_table(result.run_dir / "recommendations.parquet").to_pandas()
    pages = pages[(pages["placement"] == "product") & (pages["kind"] == "cross_sell")]
    # A cart of two products and a customer who bought one of its offers before.
    found = None
    for cart in (list(pair) for pair in zip(pages["antecedent_key"], pages["antecedent_key"].shift(-1), strict=True)):
        if None in cart or len(set(cart)) < 2:
            continue
        offered = set(offers_for_cart(result.output_dir, cart, limit=50)["consequent"])
        buyers = history[history["product_id"].isin(offered)]
        if len(buyers):
            found = cart, str(buyers["customer_id"].iloc[0])
            break
    assert found is not None
    cart, customer = found
    own = offers_for_cart(result.output_dir, cart, limit=50, customer_id=customer)
    rules = own[own["source"] == "rule"]
    bought = history[history["customer_id"] == customer].set_index("product_id")["orders"]
    weights = neighbours[neighbours["product_id"].isin(cart)].groupby("neighbour")["weight"].sum()
    weight = weights.reindex(rules["consequent"]).fillna(0).to_numpy()
    boost = config.model.history_weight * np.log1p(bought.reindex(rules["consequent"]).fillna(0).to_numpy())
    margin = rules["consequent_margin"].to_numpy() ** config.rank.margin_power
    assert (boost > 0).any()
    assert rules["score"].to_numpy() == pytest.approx((weight + boost) * margin)
    assert list(rules["score"]) == sorted(rules["score"], reverse=True)
    anonymous = offers_for_cart(result.output_dir, cart, limit=50)
    stranger = offers_for_cart(result.output_dir, cart, limit=50, customer_id="no such customer")
    assert stranger["consequent"].tolist() == anonymous["consequent"].tolist()


@pytest.mark.parametrize("size", [1, 7, 511, 512, 513, 1100])
def test_the_models_inverse_is_the_general_inverse_on_both_sides_of_every_block(size: int) -> None:
    # Cholesky's inverse fills one triangle; the mirror runs in blocks of 512 rows: sizes on both sides.
    rng = np.random.default_rng(size)
    baskets = (rng.random((size + 20, size)) < 0.2).astype(np.float64)
    gram = baskets.T @ baskets + 0.5 * np.eye(size)
    expected = np.linalg.inv(gram)
    found = symmetric_inverse(gram.copy())
    np.testing.assert_allclose(found, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    assert (found == found.T).all()


def test_a_matrix_that_is_not_positive_definite_has_no_model_inverse() -> None:
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        symmetric_inverse(np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_neighbours_with_equal_weights_come_by_product_id_whatever_the_rounding() -> None:
    # Products always bought together have the same weights in exact arithmetic; the inverse's rounding
    # makes them differ in the last bits, one way or the other: the neighbours still come by product id.
    products = np.array(["P0", "P1", "P2", "P3"], dtype=object)
    dense = np.array(
        [[0.0, 0.3, 0.3, 0.1], [0.3, 0.0, 0.2, 0.1], [0.3, 0.2, 0.0, 0.1], [0.2, 0.1, 0.1, 0.0]], dtype=np.float64
    )
    for noise in (0.0, 1e-16, -1e-16):
        noisy = dense.copy()
        noisy[0, 2] += noise
        noisy[3, 1] -= noise
        model = ItemModel.strongest(noisy, products, 2)
        listed = model.table()
        assert listed.loc[listed["product_id"] == "P0", "neighbour"].tolist() == ["P1", "P2"]
        assert listed.loc[listed["product_id"] == "P3", "neighbour"].tolist() == ["P0", "P1"]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 9).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(-3, 3), min_size=n, max_size=n), min_size=n, max_size=n),
            st.permutations(range(n)),
        )
    ),
    st.integers(1, 10),
    st.integers(1, 20),
)
def test_strongest_weights_picked_in_blocks_of_rows_are_those_of_the_whole_matrix(
    drawn: tuple[list[list[int]], list[int]], neighbours: int, block_cells: int
) -> None:
    """Each row's neighbours depend on that row alone: blocks of any size give the whole matrix's table,
    ties and zeros included, whatever order the products come in; and each kept weight is the strongest."""
    values, shuffle = drawn
    dense = np.array(values, dtype=np.float64) / 4
    products = np.array([f"P{i}" for i in shuffle], dtype=object)
    whole = ItemModel.strongest(dense, products, neighbours).table()
    original = model_module.STRONGEST_BLOCK_CELLS
    model_module.STRONGEST_BLOCK_CELLS = block_cells
    try:
        blocked = ItemModel.strongest(dense, products, neighbours).table()
    finally:
        model_module.STRONGEST_BLOCK_CELLS = original
    pd.testing.assert_frame_equal(blocked, whole)
    at = {p: i for i, p in enumerate(products)}
    for product, rows in whole.groupby("product_id"):
        row = np.abs(dense[at[product]])
        assert len(rows) <= min(neighbours, len(products) - 1)
        weakest_kept = np.abs(rows["weight"].to_numpy()).min()
        dropped = [row[at[q]] for q in products if q not in set(rows["neighbour"])]
        assert all(weakest_kept >= value for value in dropped if value != 0)
