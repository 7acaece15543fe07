"""Exact TreeSHAP on CatBoost models read from their own files (issue #13).

Every model is trained here (one thread, a fixed seed, no training files written) on a
small frame with missing numbers and two text category columns, one split one-hot and
one through single-feature counters (CTRs, ``max_ctr_complexity=1``), saved as .cbm or
.json and loaded through ``engine.models.loading.load_model``.  Checked: Probity's hash of
a category is CatBoost's; each row (also rows with categories CatBoost never saw) reaches
the leaves CatBoost's ``calc_leaf_indexes`` names and the trees add up to its raw output;
path-dependent values equal CatBoost's own ``ShapValues`` in margin space for binary,
multiclass and regression models; interventional values equal a brute-force enumeration
of coalitions scored by CatBoost's own predictions; a model with counters over feature
combinations is refused with one sentence pointing to KernelSHAP.

Non-symmetric trees (``grow_policy="Depthwise"``) are checked against a brute-force
enumeration of the path-dependent game instead: CatBoost 1.2's ShapValues on them do not
add up to its own raw output (they skip the split above a leaf that hangs off a node), so
they are no reference there.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import string
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import catboost as cb
import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.errors import AnalysisError
from engine.explain import treeshap
from engine.explain._booster_trees import booster_margin
from engine.explain._catboost_trees import catboost_matrix, catboost_tree_model, category_hash
from engine.explain._trees import Tree, leaf_index, predict_tree_model
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.loading import load_model
from engine.registry import refusal
from engine.schema import Roles

REGIONS = [f"r{i}" for i in range(8)]
COLORS = ["red", "green", "blue"]
COLUMNS = ["income", "region", "color", "debt"]
CATS = ["region", "color"]


def _frame(n: int, seed: int, *, regions: list[str] = REGIONS, colors: list[str] = COLORS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(size=n),
            "region": rng.choice(regions, size=n),
            "color": rng.choice(colors, size=n),
            "debt": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.15, "income"] = np.nan
    X.loc[rng.random(n) < 0.1, "debt"] = np.nan
    return X


def _targets(X: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = (
        np.nan_to_num(X["income"].to_numpy(), nan=-0.8)
        + 1.0 * X["region"].isin(["r1", "r3", "r6"]).to_numpy()
        + 0.7 * (X["color"] == "green").to_numpy()
        - 0.4 * np.nan_to_num(X["debt"].to_numpy(), nan=1.0)
    )
    return {
        "binary": (score + 0.3 * rng.normal(size=len(X)) > 0.5).astype(int),
        "multiclass": np.digitize(score, [0.0, 1.0]),
        "regression": 2.0 * score + 0.1 * rng.normal(size=len(X)),
    }


# key -> (task, CatBoost parameters, file suffix)
SPECS: dict[str, tuple[str, dict[str, Any], str]] = {
    "binary": ("binary", {"loss_function": "Logloss", "simple_ctr": ["Borders", "Counter", "Buckets"]}, ".cbm"),
    "binary-nan-max": ("binary", {"loss_function": "Logloss", "nan_mode": "Max"}, ".json"),
    "multiclass": ("multiclass", {"loss_function": "MultiClass"}, ".json"),
    "regression": ("regression", {"loss_function": "RMSE"}, ".cbm"),
}


def _train(
    X: pd.DataFrame, y: np.ndarray, params: dict[str, Any], path: Path, *, depth: int = 4, rounds: int = 12
) -> None:
    options = {"iterations": rounds, "depth": depth, "thread_count": 1, "random_seed": 0, "verbose": False}
    options |= {"allow_writing_files": False, "one_hot_max_size": 3, "max_ctr_complexity": 1, **params}
    model = cb.CatBoost(options)
    model.fit(cb.Pool(X, y, cat_features=CATS))
    model.save_model(str(path), format="json" if path.suffix == ".json" else "cbm")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("catboost_treeshap")
    X = _frame(500, seed=3)
    y = _targets(X, seed=4)
    here = Path.cwd()
    os.chdir(folder)  # where CatBoost would write its catboost_info folder if it wrote one
    try:
        paths = {}
        for key, (task, params, suffix) in SPECS.items():
            paths[key] = folder / f"{key}{suffix}"
            _train(X, y[task], params, paths[key])
        # Interactions between the two categories and counters over several features: combinations.
        paths["combinations"] = folder / "combinations.cbm"
        xor = (X["region"].isin(["r1", "r3", "r6"]) ^ (X["color"] == "green")).to_numpy().astype(int)
        _train(
            X,
            xor,
            {"loss_function": "Logloss", "max_ctr_complexity": 2, "one_hot_max_size": 2},
            paths["combinations"],
            rounds=30,
        )
        paths["depthwise"] = folder / "depthwise.json"
        _train(
            X,
            y["binary"],
            {"loss_function": "Logloss", "grow_policy": "Depthwise"},
            paths["depthwise"],
            depth=3,
            rounds=6,
        )
    finally:
        os.chdir(here)
    assert not (folder / "catboost_info").exists()
    # Rows CatBoost never saw: categories outside the training ones, more missing values, wider numbers.
    fresh = _frame(300, seed=9, regions=REGIONS + ["r8", "nan", "ünïcode"], colors=COLORS + ["purple"])
    fresh["income"] *= 3.0
    return SimpleNamespace(folder=folder, X=X, y=y, paths=paths, fresh=fresh)


def _classes(key: str) -> list[int | None]:
    return {"binary": [0, 1], "multiclass": [0, 1, 2]}.get(SPECS[key][0], [None])


def _own(path: Path) -> Any:
    own = cb.CatBoost()
    own.load_model(str(path), format="json" if path.suffix == ".json" else "cbm")
    return own


def _shap_values(path: Path, X: pd.DataFrame, k: int | None) -> np.ndarray:
    """CatBoost's own ShapValues of the explained margin, ``(n, F + 1)`` (expected value last)."""
    out = _own(path).get_feature_importance(cb.Pool(X, cat_features=CATS), type="ShapValues", thread_count=1)
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 3:
        return out[:, k]
    return -out if k == 0 else out


# -- the category hash and the routing ----------------------------------------------------------------------


def test_the_category_hash_is_catboosts(tmp_path: Path) -> None:
    """Texts of every length CityHash treats apart (0-16, 17-32, 33-64, longer), Unicode included."""
    rng = np.random.default_rng(0)
    letters = list(string.ascii_letters + string.digits)
    texts = ["", "a", "nan", "None", "héllo", "ünïcödé ✓", "0", "-1.5"]
    texts += ["".join(rng.choice(letters, size=n)) for n in range(1, 300, 7)]
    texts = list(dict.fromkeys(texts))
    X = pd.DataFrame({"c": texts, "x": rng.normal(size=len(texts))})
    model = cb.CatBoostClassifier(iterations=2, depth=2, thread_count=1, allow_writing_files=False, verbose=False)
    model.fit(X, rng.integers(0, 2, size=len(texts)), cat_features=[0])
    path = tmp_path / "hashes.json"
    model.save_model(str(path), format="json", pool=cb.Pool(X, cat_features=[0]))
    theirs = {e["value"]: int(e["hash"]) for e in json.loads(path.read_text())["features_info"]["cat_features_hash"]}
    assert len(theirs) == len(texts)
    assert {t: category_hash(t) for t in texts} == theirs


def _catboost_leaves(path: Path, X: pd.DataFrame) -> np.ndarray:
    return np.asarray(_own(path).calc_leaf_indexes(cb.Pool(X, cat_features=CATS), thread_count=1), dtype=np.int64)


def _our_leaves(trees: tuple[Tree, ...], M: np.ndarray) -> np.ndarray:
    """Leaf numbers in CatBoost's order: the leaves of a complete tree are its last nodes."""
    return np.column_stack([leaf_index(t, M) - (t.n_nodes - 1) // 2 for t in trees])


@pytest.mark.parametrize("key", list(SPECS))
def test_every_row_reaches_the_leaves_catboost_names(models: SimpleNamespace, key: str) -> None:
    model = load_model(models.paths[key])
    X = pd.concat([models.X, models.fresh], ignore_index=True)
    tree_model = catboost_tree_model(model, class_index=_classes(key)[-1])
    ours = _our_leaves(tree_model.trees, tree_model.prepare(catboost_matrix(model, X)))
    np.testing.assert_array_equal(ours, _catboost_leaves(models.paths[key], X))


def test_rows_on_the_borders_take_catboosts_path(models: SimpleNamespace) -> None:
    """Numbers exactly on a border, one float32 step either side, and infinities."""
    model = load_model(models.paths["binary"])
    tree_model = catboost_tree_model(model)
    rows = []
    for tree in tree_model.trees[:6]:
        for node in np.flatnonzero(tree.left >= 0):
            if tree.categorical is not None and tree.categorical[node]:
                continue
            column = COLUMNS[int(tree.feature[node])]
            t = np.float32(tree.threshold[node])
            for value in (
                t,
                np.nextafter(t, np.float32(np.inf)),
                np.nextafter(t, np.float32(-np.inf)),
                np.inf,
                -np.inf,
            ):
                row = models.X.iloc[len(rows) % 50].copy()
                row[column] = float(value)
                rows.append(row)
    X = pd.DataFrame(rows).reset_index(drop=True).astype({"income": float, "debt": float})
    ours = _our_leaves(tree_model.trees, tree_model.prepare(catboost_matrix(model, X)))
    np.testing.assert_array_equal(ours, _catboost_leaves(models.paths["binary"], X))


@pytest.mark.parametrize("key", list(SPECS))
def test_the_trees_add_up_to_catboosts_raw_output(models: SimpleNamespace, key: str) -> None:
    model = load_model(models.paths[key])
    X = pd.concat([models.X, models.fresh], ignore_index=True)
    M = catboost_matrix(model, X)
    for k in _classes(key):
        margin = booster_margin(model, X, k)
        assert np.max(np.abs(predict_tree_model(catboost_tree_model(model, class_index=k), M) - margin)) <= 1e-9


def test_the_models_split_on_categories_both_ways(models: SimpleNamespace) -> None:
    """region (8 categories) goes through counters, color (3) through one-hot splits, in every model;
    and the nan_mode=Max model sends missing incomes right."""
    for key in SPECS:
        doc = json.loads(json.dumps(_json(models.paths[key])))
        kinds = {s["split_type"] for t in doc["oblivious_trees"] for s in t["splits"]}
        assert {"FloatFeature", "OneHotFeature", "OnlineCtr"} <= kinds, key
    floats = _json(models.paths["binary-nan-max"])["features_info"]["float_features"]
    assert {f["nan_value_treatment"] for f in floats if f["has_nans"]} == {"AsTrue"}


def _json(path: Path) -> dict[str, Any]:
    if path.suffix == ".json":
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc
    copy = path.with_suffix(".copy.json")
    _own(path).save_model(str(copy), format="json")
    doc = json.loads(copy.read_text())
    copy.unlink()
    return doc


def test_categories_every_split_sends_alike_share_a_code(models: SimpleNamespace) -> None:
    model = load_model(models.paths["binary"])
    X = pd.concat([models.X, models.fresh], ignore_index=True)
    M = catboost_matrix(model, X)
    for j in (1, 2):
        codes = pd.Series(M[:, j]).groupby(X[COLUMNS[j]]).nunique()
        assert (codes == 1).all()  # one code a category
        assert np.all(M[:, j] == np.floor(M[:, j])) and M[:, j].min() >= 0
    # An unknown category takes the code its counters' priors give, like some known categories or apart.
    unknown = M[(X["region"] == "r8").to_numpy(), 1]
    assert unknown.size and len(set(unknown)) == 1


# -- path-dependent parity --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(SPECS))
def test_path_dependent_values_equal_catboosts_shap_values(models: SimpleNamespace, key: str) -> None:
    model = load_model(models.paths[key])
    X = pd.concat([models.X.iloc[:200], models.fresh.iloc[:100]], ignore_index=True)
    M = catboost_matrix(model, X)
    for k in _classes(key):
        values, base = treeshap.tree_model_shap_values(catboost_tree_model(model, class_index=k), M)
        theirs = _shap_values(models.paths[key], X, k)
        assert np.max(np.abs(values - theirs[:, :-1])) <= 1e-9
        assert np.max(np.abs(base - theirs[:, -1])) <= 1e-9
        margin = booster_margin(model, X, k)
        assert np.max(np.abs(values.sum(axis=1) + base - margin)) <= 1e-9
        # Every feature gets credit somewhere, the categories included (the check can fail).
        assert np.all(np.abs(values).max(axis=0) > 1e-6)


def test_the_level_order_matters_and_is_catboosts(models: SimpleNamespace) -> None:
    """Path-dependent values depend on which split a complete tree puts at its root: with the
    first split at the root (and the leaves renumbered) the margin is unchanged but the values
    are not CatBoost's, so the parity above pins the order down."""
    model = load_model(models.paths["binary"])
    X = models.X.iloc[:100]
    M = catboost_matrix(model, X)
    tree_model = catboost_tree_model(model)
    flipped = []
    for tree in tree_model.trees:
        depth = int(np.log2(tree.n_nodes + 1)) - 1
        if depth < 2:
            flipped.append(tree)
            continue
        # Swap the split of level l with that of level depth-1-l; leaf bits reverse with it.
        order = np.zeros(tree.n_nodes, dtype=np.int64)
        for level in range(depth + 1):
            for p in range(1 << level):
                q = int(format(p, f"0{level}b")[::-1], 2) if level else 0
                order[(1 << level) - 1 + p] = (1 << level) - 1 + q
        feature = tree.feature.copy()
        threshold = tree.threshold.copy()
        missing = tree.missing_left.copy()
        categorical = None if tree.categorical is None else tree.categorical.copy()
        left_cats = None if tree.left_categories is None else tree.left_categories.copy()
        known = None if tree.known_categories is None else tree.known_categories.copy()
        for level in range(depth):
            lo, src = (1 << level) - 1, (1 << (depth - 1 - level)) - 1  # first nodes of a level and its mirror
            feature[lo : 2 * lo + 1] = tree.feature[src]
            threshold[lo : 2 * lo + 1] = tree.threshold[src]
            missing[lo : 2 * lo + 1] = tree.missing_left[src]
            if categorical is not None and tree.categorical is not None:
                categorical[lo : 2 * lo + 1] = tree.categorical[src]
            if left_cats is not None and tree.left_categories is not None:
                left_cats[lo : 2 * lo + 1] = tree.left_categories[src]
            if known is not None and tree.known_categories is not None:
                known[lo : 2 * lo + 1] = tree.known_categories[src]
        value = tree.value[order]
        cover = np.zeros_like(tree.cover)
        leaves = tree.left < 0
        cover[leaves] = tree.cover[order][leaves]
        for i in range(tree.n_nodes - 1, -1, -1):
            if tree.left[i] >= 0:
                cover[i] = cover[tree.left[i]] + cover[tree.right[i]]
        flipped.append(
            Tree(
                left=tree.left,
                right=tree.right,
                feature=feature,
                threshold=threshold,
                missing_left=missing,
                value=value,
                cover=cover,
                categorical=categorical,
                left_categories=left_cats,
                known_categories=known,
                unknown_left=tree.unknown_left,
            )
        )
    other = type(tree_model)(
        trees=tuple(flipped),
        offset=tree_model.offset,
        output_space=tree_model.output_space,
        n_features=tree_model.n_features,
        float32_inputs=True,
        estimator_type=tree_model.estimator_type,
    )
    np.testing.assert_allclose(predict_tree_model(other, M), predict_tree_model(tree_model, M), rtol=0, atol=1e-12)
    values, _ = treeshap.tree_model_shap_values(other, M)
    assert np.max(np.abs(values - _shap_values(models.paths["binary"], X, 1)[:, :-1])) > 1e-3


def test_the_torch_path_gives_the_numpy_values_on_a_catboost_model(models: SimpleNamespace) -> None:
    model = load_model(models.paths["multiclass"])
    tree_model = catboost_tree_model(model, class_index=2)
    M = catboost_matrix(model, models.fresh.iloc[:60])
    ours, base = treeshap.tree_model_shap_values(tree_model, M)
    torch_values, torch_base = treeshap.tree_model_shap_values(tree_model, M, torch_device="cpu")
    np.testing.assert_allclose(torch_values, ours, rtol=0, atol=1e-12)
    assert abs(torch_base - base) < 1e-12


# -- interventional: brute force --------------------------------------------------------------------------


def _brute_force(model: Any, x: pd.DataFrame, background: pd.DataFrame, k: int | None) -> np.ndarray:
    """Exact interventional Shapley values of one row by enumerating coalitions, each scored as
    the mean over background rows of CatBoost's own margin of the hybrid rows (raw columns)."""
    F = len(COLUMNS)
    value: dict[frozenset[int], float] = {}
    for size in range(F + 1):
        for S in itertools.combinations(range(F), size):
            hybrid = background.copy()
            for j in S:
                hybrid[COLUMNS[j]] = x[COLUMNS[j]].iloc[0]
            value[frozenset(S)] = float(np.mean(booster_margin(model, hybrid, k)))
    phi = np.zeros(F)
    for i in range(F):
        for S, v in value.items():
            if i not in S:
                weight = math.factorial(len(S)) * math.factorial(F - len(S) - 1) / math.factorial(F)
                phi[i] += weight * (value[S | {i}] - v)
    return phi


@pytest.mark.parametrize(("key", "k"), [("binary", 1), ("binary-nan-max", 0), ("multiclass", 2), ("regression", None)])
def test_interventional_values_equal_brute_force_shapley_values(
    models: SimpleNamespace, key: str, k: int | None
) -> None:
    path = models.folder / f"small-{models.paths[key].name}"
    task, params, _ = SPECS[key]
    _train(models.X, models.y[task], params, path, depth=3, rounds=5)
    model = load_model(path)
    # Rows with missing numbers and unknown categories, and a background with missing numbers.
    fresh = models.fresh
    unusual = fresh["income"].isna() | ~fresh["region"].isin(REGIONS) | ~fresh["color"].isin(COLORS)
    rows = pd.concat([fresh[unusual].iloc[:5], models.X.iloc[:2]], ignore_index=True)
    background = models.X.iloc[10:22].reset_index(drop=True)
    assert background["income"].isna().any() or background["debt"].isna().any()
    values, base = treeshap.tree_model_shap_values(
        catboost_tree_model(model, class_index=k),
        catboost_matrix(model, rows),
        variant="interventional",
        background=catboost_matrix(model, background),
    )
    assert abs(base - float(np.mean(booster_margin(model, background, k)))) <= 1e-9
    for i in range(len(rows)):
        expected = _brute_force(model, rows.iloc[[i]], background, k)
        assert np.max(np.abs(values[i] - expected)) <= 1e-9
    np.testing.assert_allclose(values.sum(axis=1) + base, booster_margin(model, rows, k), rtol=0, atol=1e-9)
    assert np.abs(values[:, 1]).max() > 1e-6 and np.abs(values[:, 2]).max() > 1e-6  # both categories take part


# -- non-symmetric trees -----------------------------------------------------------------------------------


def _path_dependent_brute_force(trees: tuple[Tree, ...], x: np.ndarray) -> np.ndarray:
    """Shapley values of the path-dependent game v(S) = sum over trees of the cover-weighted
    expectation following x on the splits of S, by enumerating coalitions."""

    def expect(t: Tree, S: frozenset[int], i: int = 0) -> float:
        if t.left[i] < 0:
            return float(t.value[i])
        f = int(t.feature[i])
        if f in S:
            if t.categorical is not None and t.categorical[i]:
                assert t.left_categories is not None
                code = int(x[f])
                goes_left = bool((int(t.left_categories[i, code // 32]) >> (code % 32)) & 1)
            else:
                goes_left = bool(x[f] <= t.threshold[i]) if not np.isnan(x[f]) else bool(t.missing_left[i])
            return expect(t, S, int(t.left[i] if goes_left else t.right[i]))
        if t.cover[i] == 0:  # no training weight below: the expectation gives it no weight either
            return 0.0
        lc, rc = t.cover[t.left[i]], t.cover[t.right[i]]
        return float((lc * expect(t, S, int(t.left[i])) + rc * expect(t, S, int(t.right[i]))) / t.cover[i])

    F = len(x)
    value = {
        frozenset(S): sum(expect(t, frozenset(S)) for t in trees)
        for size in range(F + 1)
        for S in itertools.combinations(range(F), size)
    }
    phi = np.zeros(F)
    for i in range(F):
        for S, v in value.items():
            if i not in S:
                phi[i] += (
                    math.factorial(len(S)) * math.factorial(F - len(S) - 1) / math.factorial(F) * (value[S | {i}] - v)
                )
    return phi


def test_non_symmetric_trees_give_the_path_dependent_shapley_values(models: SimpleNamespace) -> None:
    model = load_model(models.paths["depthwise"])
    assert "trees" in _json(models.paths["depthwise"])  # grown depthwise, not oblivious
    X = pd.concat([models.X.iloc[:4], models.fresh.iloc[:4]], ignore_index=True)
    tree_model = catboost_tree_model(model)
    M = tree_model.prepare(catboost_matrix(model, X))
    values, base = treeshap.tree_model_shap_values(tree_model, catboost_matrix(model, X))
    margin = booster_margin(model, X, 1)
    np.testing.assert_allclose(predict_tree_model(tree_model, M), margin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(values.sum(axis=1) + base, margin, rtol=0, atol=1e-9)
    for i in range(len(X)):
        np.testing.assert_allclose(values[i], _path_dependent_brute_force(tree_model.trees, M[i]), rtol=0, atol=1e-9)


# -- feature combinations are refused ----------------------------------------------------------------------


def _inputs(frame: pd.DataFrame, model: Any) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=None, features=tuple(frame.columns)), model=model)


def test_counters_over_feature_combinations_are_refused_up_front(models: SimpleNamespace) -> None:
    doc = _json(models.paths["combinations"])
    assert any(len(c["elements"]) > 1 for c in doc["features_info"]["ctrs"])  # the model does combine
    model = load_model(models.paths["combinations"])
    sentence = (
        "TreeSHAP cannot explain the CatBoost model combinations.cbm: its trees split on counters over "
        "combinations of features, which no split on a single feature can express; KernelSHAP explains it instead."
    )
    assert treeshap.refusal(model, feature_names=tuple(COLUMNS)) == sentence
    assert refusal("treeshap", model) == sentence
    with pytest.raises(AnalysisError) as caught:
        treeshap.run(_inputs(models.X, model), ctx=JobContext(), rows=[0])
    assert caught.value.message == sentence


# -- the analysis and the command line --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "klass", "label", "space"),
    [
        ("binary", None, "log-odds(1)", "log-odds"),
        ("binary-nan-max", 0, "log-odds(0)", "log-odds"),
        ("multiclass", 2, "softmax logit(2)", "margin"),
        ("regression", None, "prediction", "value"),
    ],
)
@pytest.mark.parametrize("variant", ["path_dependent", "interventional"])
def test_the_analysis_explains_a_catboost_model_in_margin_space(
    models: SimpleNamespace, key: str, klass: Any, label: str, space: str, variant: str
) -> None:
    model = load_model(models.paths[key])
    frame = models.X
    assert treeshap.refusal(model, feature_names=tuple(frame.columns)) is None
    result = treeshap.run(
        _inputs(frame, model),
        ctx=JobContext(seed=5),
        rows=list(range(40)),
        variant=variant,
        background_size=30,
        klass=klass,
        device="cpu",
    )
    k = result.class_index
    margin = booster_margin(model, frame.iloc[:40], k)
    assert result.output_name == label and result.output_space == space
    assert result.feature_names == tuple(COLUMNS) and result.values.shape == (40, 4)
    np.testing.assert_array_equal(result.predictions, margin)
    assert result.summary["max_additivity_error"] <= 1e-9
    assert result.provenance.parameters["estimator"] == "CatBoost model"
    if variant == "path_dependent":
        theirs = _shap_values(models.paths[key], frame.iloc[:40], k)
        assert np.max(np.abs(result.values - theirs[:, :-1])) <= 1e-9


def test_probity_explain_treeshap_runs_on_a_catboost_file(
    models: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "credit.csv"
    models.X.assign(target=models.y["binary"]).to_csv(data, index=False)
    out = tmp_path / "treeshap.json"
    argv = ["--progress", "none", "explain", "treeshap", "--data", str(data), "--model", str(models.paths["binary"])]
    argv += ["--target", "target", "--rows", "0-9", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    values = np.asarray(doc["values"])
    assert values.shape == (10, 4) and doc["feature_names"] == COLUMNS
    theirs = _shap_values(models.paths["binary"], models.X.iloc[:10], 1)
    np.testing.assert_allclose(values, theirs[:, :-1], rtol=0, atol=1e-9)
    assert doc["provenance"]["parameters"]["output_space"] == "log-odds"
