"""Exact TreeSHAP on XGBoost and LightGBM boosters read from their own files (issue #13).

Every model is trained here on a small frame with missing values and a pandas
``category`` column, saved and loaded through ``engine.models.loading.load_model``.
Checked: each row reaches the leaves the library's ``pred_leaf`` names (also rows
sitting exactly on the thresholds); path-dependent values equal the library's own
TreeSHAP (XGBoost ``pred_contribs``, LightGBM ``pred_contrib``) in margin space and
add up to its raw margin; interventional values equal a brute-force enumeration of
coalitions scored by the library's own predictions (categorical splits and missing
values included, which shap's TreeExplainer cannot do: shap#5068, #5132); the
analysis and ``probity explain treeshap`` run on booster files.

XGBoost predicts and computes its contributions in float32, so against it the
tolerance is 1e-6 times the size of the margin (never under 1e-6); LightGBM works
in float64 and agrees to 1e-9.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from engine.cli import main
from engine.errors import AnalysisError
from engine.explain import treeshap
from engine.explain._booster_trees import booster_margin, booster_matrix, booster_tree_model
from engine.explain._trees import leaf_index, predict_tree_model
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.loading import load_model
from engine.registry import refusal
from engine.schema import Roles

CATEGORIES = [f"c{i}" for i in range(12)]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(size=n),
            "debt": rng.normal(size=n),
            "region": pd.Categorical(rng.choice(CATEGORIES, size=n), categories=CATEGORIES),
            "kids": rng.integers(0, 4, size=n).astype(float),
        }
    )
    X.loc[rng.random(n) < 0.15, "income"] = np.nan
    X.loc[rng.random(n) < 0.12, "region"] = np.nan
    X.loc[rng.random(n) < 0.3, "kids"] = 0.0  # many zeros: LightGBM's zero_as_missing has work to do
    X.loc[rng.random(n) < 0.1, "kids"] = np.nan
    return X


def _targets(X: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    code = X["region"].cat.codes.to_numpy()
    score = (
        np.nan_to_num(X["income"].to_numpy(), nan=-0.5)
        + 0.9 * (code % 3 == 1)
        - 0.7 * (code % 4 == 2)
        - 0.3 * X["debt"].to_numpy()
        + 0.4 * np.nan_to_num(X["kids"].to_numpy(), nan=2.0)
    )
    return {
        "binary": (score + 0.3 * rng.normal(size=len(X)) > 0.6).astype(int),
        "multiclass": np.digitize(score, [0.0, 1.0]),
        "regression": 2.0 * score + 0.1 * rng.normal(size=len(X)),
        "count": rng.poisson(np.exp(0.3 * score)),
    }


# key -> (library, task, parameters, rounds, file suffix)
SPECS: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    "xgb-binary-partition": ("xgb", "binary", {"objective": "binary:logistic", "max_cat_to_onehot": 1}, 12, ".json"),
    "xgb-binary-onehot": ("xgb", "binary", {"objective": "binary:logistic", "max_cat_to_onehot": 64}, 12, ".ubj"),
    "xgb-multiclass": ("xgb", "multiclass", {"objective": "multi:softprob", "num_class": 3}, 6, ".ubj"),
    "xgb-regression": ("xgb", "regression", {"objective": "reg:squarederror", "max_cat_to_onehot": 1}, 10, ".json"),
    "xgb-poisson": ("xgb", "count", {"objective": "count:poisson"}, 8, ".json"),
    "lgb-binary": ("lgb", "binary", {"objective": "binary"}, 12, ".txt"),
    "lgb-binary-zero-missing": ("lgb", "binary", {"objective": "binary", "zero_as_missing": True}, 12, ".txt"),
    "lgb-binary-no-missing": ("lgb", "binary", {"objective": "binary", "use_missing": False}, 12, ".lgb"),
    "lgb-multiclass": ("lgb", "multiclass", {"objective": "multiclass", "num_class": 3}, 6, ".txt"),
    "lgb-regression": ("lgb", "regression", {"objective": "regression"}, 10, ".txt"),
}


def _train(key: str, X: pd.DataFrame, y: dict[str, np.ndarray], path: Path, *, depth: int = 4) -> None:
    library, task, params, rounds, _ = SPECS[key]
    if library == "xgb":
        matrix = xgb.DMatrix(X, label=y[task], enable_categorical=True)
        booster = xgb.train({**params, "max_depth": depth, "seed": 0}, matrix, num_boost_round=rounds)
    else:
        lgb_params = {"num_leaves": 2**depth - 2, "min_data_per_group": 5, "cat_smooth": 1, "cat_l2": 1}
        lgb_params |= {"min_data_in_leaf": 5, "verbosity": -1, "seed": 0, **params}
        booster = lgb.train(lgb_params, lgb.Dataset(X, label=y[task]), num_boost_round=rounds)
    booster.save_model(path)


@pytest.fixture(scope="module")
def boosters(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("booster_treeshap")
    X = _frame(700, seed=3)
    y = _targets(X, seed=4)
    paths = {}
    for key, spec in SPECS.items():
        paths[key] = folder / f"{key}{spec[4]}"
        _train(key, X, y, paths[key])
    return SimpleNamespace(folder=folder, X=X, y=y, paths=paths)


def _classes(key: str) -> list[int | None]:
    task = SPECS[key][1]
    return {"binary": [0, 1], "multiclass": [0, 1, 2]}.get(task, [None])


def _library_contributions(key: str, model: Any, X: pd.DataFrame, k: int | None) -> np.ndarray:
    """The library's own path-dependent TreeSHAP of the explained margin, ``(n, F + 1)`` (bias last)."""
    if SPECS[key][0] == "xgb":
        out = model.booster.predict(xgb.DMatrix(X, enable_categorical=True), pred_contribs=True)
    else:
        out = model.booster.predict(booster_matrix(model, X), pred_contrib=True)
        if SPECS[key][1] == "multiclass":
            out = out.reshape(len(X), 3, -1)
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 3:
        return out[:, k]
    return -out if k == 0 else out


def _tolerance(key: str, margin: np.ndarray) -> float:
    if SPECS[key][0] == "lgb":
        return 1e-9
    return 1e-6 * max(1.0, float(np.max(np.abs(margin))))


def _edge_rows(model: Any, X: pd.DataFrame, k: int | None) -> pd.DataFrame:
    """Rows whose numeric values sit exactly on split thresholds and one step either side."""
    trees = booster_tree_model(model, class_index=k)
    columns = list(X.columns)
    out = []
    rng = np.random.default_rng(0)
    for tree in trees.trees[:4]:
        internal = np.flatnonzero(tree.left >= 0)
        for node in internal:
            if tree.categorical is not None and tree.categorical[node]:
                continue
            f = int(tree.feature[node])
            t = float(tree.threshold[node])
            for value in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), float(np.float32(t)) * (1 + 1e-12)):
                row = X.iloc[int(rng.integers(len(X)))].copy()
                row[columns[f]] = value
                out.append(row)
    frame = pd.DataFrame(out).reset_index(drop=True)
    frame["region"] = pd.Categorical(frame["region"], categories=CATEGORIES)
    return frame.astype({c: np.float64 for c in columns if c != "region"})


def _library_leaves(key: str, model: Any, X: pd.DataFrame) -> np.ndarray:
    """Per tree (in file order), the node each row ends at, in the library's node numbering."""
    if SPECS[key][0] == "xgb":
        return np.asarray(model.booster.predict(xgb.DMatrix(X, enable_categorical=True), pred_leaf=True), dtype=int)
    leaves = np.asarray(model.booster.predict(booster_matrix(model, X), pred_leaf=True), dtype=int)
    # LightGBM numbers leaves apart from splits; our node of leaf j is (num_leaves - 1) + j.
    n_leaves = np.array([t["num_leaves"] for t in model.booster.dump_model()["tree_info"]])
    return np.where(n_leaves[None, :] > 1, n_leaves[None, :] - 1 + leaves, 0)


# -- routing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(SPECS))
def test_every_row_reaches_the_leaves_the_library_names(boosters: SimpleNamespace, key: str) -> None:
    model = load_model(boosters.paths[key])
    per_round = 3 if SPECS[key][1] == "multiclass" else 1
    X = pd.concat([boosters.X, _edge_rows(model, boosters.X, _classes(key)[0])], ignore_index=True)
    theirs = _library_leaves(key, model, X)
    for k in range(per_round):
        tree_model = booster_tree_model(model, class_index=k if per_round > 1 else _classes(key)[-1])
        Xp = tree_model.prepare(booster_matrix(model, X))
        ours = np.column_stack([leaf_index(t, Xp) for t in tree_model.trees])
        np.testing.assert_array_equal(ours, theirs[:, k::per_round])


@pytest.mark.parametrize(
    "key",
    ["xgb-binary-partition", "xgb-binary-onehot", "lgb-binary", "lgb-binary-zero-missing", "lgb-binary-no-missing"],
)
def test_odd_values_take_the_librarys_path(boosters: SimpleNamespace, key: str) -> None:
    """Matrix rows the library takes as they are: tiny, zero and infinite numbers, and category codes
    that are negative, fractional, never seen or far past the bitsets."""
    model = load_model(boosters.paths[key])
    M = booster_matrix(model, boosters.X.iloc[:50])
    odd = []
    numbers = [1e-36, -1e-36, 0.0, -0.0, np.nan] + ([np.inf, -np.inf] if key.startswith("lgb") else [])
    for i, v in enumerate(numbers):  # XGBoost refuses infinities in its input
        row = M[i].copy()
        row[[0, 1, 3]] = v
        odd.append(row)
    for i, v in enumerate([-1.0, -0.5, 0.5, 2.7, 11.99, 12.0, 40.0, 1e6, np.nan, -1e-36]):
        row = M[i].copy()
        row[2] = v
        odd.append(row)
    M = np.vstack([M, odd])
    tree_model = booster_tree_model(model)
    ours = np.column_stack([leaf_index(t, tree_model.prepare(M)) for t in tree_model.trees])
    if key.startswith("xgb"):
        names, types = model.booster.feature_names, model.booster.feature_types
        matrix = xgb.DMatrix(M, feature_names=names, feature_types=types, enable_categorical=True)
        theirs = np.asarray(model.booster.predict(matrix, pred_leaf=True), dtype=int)
        margin = np.asarray(model.booster.predict(matrix, output_margin=True), dtype=np.float64)
    else:
        n_leaves = np.array([t["num_leaves"] for t in model.booster.dump_model()["tree_info"]])
        theirs = n_leaves - 1 + np.asarray(model.booster.predict(M, pred_leaf=True), dtype=int)
        margin = np.asarray(model.booster.predict(M, raw_score=True), dtype=np.float64)
    np.testing.assert_array_equal(ours, theirs)
    assert np.max(np.abs(predict_tree_model(tree_model, M) - margin)) <= _tolerance(key, margin)


@pytest.mark.parametrize("key", list(SPECS))
def test_the_trees_add_up_to_the_librarys_margin(boosters: SimpleNamespace, key: str) -> None:
    model = load_model(boosters.paths[key])
    for k in _classes(key):
        margin = booster_margin(model, boosters.X, k)
        ours = predict_tree_model(booster_tree_model(model, class_index=k), booster_matrix(model, boosters.X))
        assert np.max(np.abs(ours - margin)) <= _tolerance(key, margin)


# -- path-dependent parity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(SPECS))
def test_path_dependent_values_equal_the_librarys_own_treeshap(boosters: SimpleNamespace, key: str) -> None:
    model = load_model(boosters.paths[key])
    X = boosters.X
    for k in _classes(key):
        values, base = treeshap.tree_model_shap_values(
            booster_tree_model(model, class_index=k), booster_matrix(model, X)
        )
        theirs = _library_contributions(key, model, X, k)
        margin = booster_margin(model, X, k)
        tol = _tolerance(key, margin)
        assert np.max(np.abs(values - theirs[:, :-1])) <= tol
        assert np.max(np.abs(base - theirs[:, -1])) <= tol
        # Additive: the values and the base give the library's own raw margin.
        assert np.max(np.abs(values.sum(axis=1) + base - margin)) <= tol
        # The features the trees split on get nonzero credit somewhere (the check can fail).
        assert np.count_nonzero(np.abs(values).max(axis=0) > 1e-9) >= 3


@pytest.mark.parametrize("kind", ["xgb-dart", "xgb-forest", "lgb-rf"])
def test_dart_and_forest_boosters_equal_the_librarys_own_treeshap(
    boosters: SimpleNamespace, tmp_path: Path, kind: str
) -> None:
    """Dart trees carry a weight each; forests grow several trees a round (XGBoost sums them, LightGBM averages)."""
    X, y = boosters.X, boosters.y["binary"]
    path = tmp_path / ("model.json" if kind.startswith("xgb") else "model.txt")
    if kind == "xgb-dart":
        params = {"booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0, "max_depth": 3, "seed": 1}
        booster = xgb.train(
            {"objective": "binary:logistic", **params}, xgb.DMatrix(X, label=y, enable_categorical=True), 6
        )
        booster.save_model(path)
    elif kind == "xgb-forest":
        params = {"num_parallel_tree": 4, "subsample": 0.7, "colsample_bynode": 0.7, "max_depth": 3, "seed": 1}
        booster = xgb.train(
            {"objective": "binary:logistic", **params}, xgb.DMatrix(X, label=y, enable_categorical=True), 3
        )
        booster.save_model(path)
    else:
        params = {"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.7, "num_leaves": 8, "verbosity": -1}
        lgb.train({"objective": "binary", **params}, lgb.Dataset(X, label=y), 5).save_model(path)
    model = load_model(path)
    if kind == "xgb-dart":
        weights = json.loads(bytes(model.booster.save_raw("json")))["learner"]["gradient_booster"]["weight_drop"]
        assert len(set(np.round(weights, 6))) > 1  # the trees do carry different weights
    key = "xgb-binary-partition" if kind.startswith("xgb") else "lgb-binary"
    for k in (0, 1):
        values, base = treeshap.tree_model_shap_values(
            booster_tree_model(model, class_index=k), booster_matrix(model, X)
        )
        theirs = _library_contributions(key, model, X, k)
        margin = booster_margin(model, X, k)
        tol = _tolerance(key, margin)
        assert np.max(np.abs(values - theirs[:, :-1])) <= tol
        assert np.max(np.abs(values.sum(axis=1) + base - margin)) <= tol


def test_categorical_splits_of_both_kinds_are_present(boosters: SimpleNamespace) -> None:
    """The XGBoost models split on the category column both ways: one category right, or a partition."""
    sizes = {}
    for key in ("xgb-binary-partition", "xgb-binary-onehot"):
        doc = json.loads(bytes(load_model(boosters.paths[key]).booster.save_raw("json")))
        trees = doc["learner"]["gradient_booster"]["model"]["trees"]
        sizes[key] = {int(s) for t in trees for s in t["categories_sizes"]}
    assert max(sizes["xgb-binary-partition"]) > 1
    assert sizes["xgb-binary-onehot"] == {1}
    text = load_model(boosters.paths["lgb-binary"]).booster.model_to_string()
    assert "num_cat=0" not in text.split("Tree=1")[0]  # LightGBM's first tree splits on the categories


def test_the_torch_path_gives_the_numpy_values_on_a_booster(boosters: SimpleNamespace) -> None:
    for key in ("xgb-binary-partition", "lgb-binary-zero-missing"):
        model = load_model(boosters.paths[key])
        tree_model = booster_tree_model(model)
        X = booster_matrix(model, boosters.X.iloc[:60])
        ours, base = treeshap.tree_model_shap_values(tree_model, X)
        torch_values, torch_base = treeshap.tree_model_shap_values(tree_model, X, torch_device="cpu")
        np.testing.assert_allclose(torch_values, ours, rtol=0, atol=1e-12)
        assert abs(torch_base - base) < 1e-12


# -- interventional: brute force ----------------------------------------------------------------------------


def _brute_force(model: Any, x: pd.DataFrame, background: pd.DataFrame, k: int | None) -> np.ndarray:
    """Exact interventional Shapley values of one row by enumerating coalitions,
    each scored as the mean over background rows of the library's own margin of
    the hybrid row (x on S, the background row elsewhere), built in raw columns."""
    columns = list(x.columns)
    F = len(columns)
    value: dict[frozenset[int], float] = {}
    for size in range(F + 1):
        for S in itertools.combinations(range(F), size):
            hybrid = background.copy()
            for j in S:
                hybrid[columns[j]] = x[columns[j]].iloc[0]
            hybrid["region"] = pd.Categorical(hybrid["region"], categories=CATEGORIES)
            value[frozenset(S)] = float(np.mean(booster_margin(model, hybrid, k)))
    phi = np.zeros(F)
    for i in range(F):
        for S, v in value.items():
            if i in S:
                continue
            weight = math.factorial(len(S)) * math.factorial(F - len(S) - 1) / math.factorial(F)
            phi[i] += weight * (value[S | {i}] - v)
    return phi


@pytest.mark.parametrize(
    "key",
    ["xgb-binary-partition", "xgb-binary-onehot", "xgb-multiclass", "lgb-binary", "lgb-binary-zero-missing"],
)
def test_interventional_values_equal_brute_force_shapley_values(boosters: SimpleNamespace, key: str) -> None:
    folder = boosters.folder / "small"
    folder.mkdir(exist_ok=True)
    path = folder / boosters.paths[key].name
    _train(key, boosters.X, boosters.y, path, depth=3)
    model = load_model(path)
    X = boosters.X
    # Rows and background rows with missing incomes, categories and kids among them.
    rows = X.iloc[[i for i in range(len(X)) if X.isna().iloc[i].any()][:4] + [1, 2]]
    background = X.iloc[10:22]
    k = _classes(key)[-1]
    values, base = treeshap.tree_model_shap_values(
        booster_tree_model(model, class_index=k),
        booster_matrix(model, rows),
        variant="interventional",
        background=booster_matrix(model, background),
    )
    tol = _tolerance(key, booster_margin(model, X, k))
    assert abs(base - float(np.mean(booster_margin(model, background, k)))) <= tol
    for i in range(len(rows)):
        expected = _brute_force(model, rows.iloc[[i]], background.reset_index(drop=True), k)
        assert np.max(np.abs(values[i] - expected)) <= tol
    np.testing.assert_allclose(values.sum(axis=1) + base, booster_margin(model, rows, k), rtol=0, atol=tol)
    assert np.abs(values[:, 2]).max() > 1e-6  # the category column takes part


# -- the analysis and the command line ---------------------------------------------------------------------


def _inputs(frame: pd.DataFrame, model: Any) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=None, features=tuple(frame.columns)), model=model)


@pytest.mark.parametrize(
    ("key", "klass", "label", "space"),
    [
        ("xgb-binary-partition", None, "log-odds(1)", "log-odds"),
        ("lgb-binary", 0, "log-odds(0)", "log-odds"),
        ("xgb-multiclass", 2, "softmax logit(2)", "margin"),
        ("lgb-regression", None, "prediction", "value"),
        ("xgb-poisson", None, "log(prediction)", "margin"),
    ],
)
@pytest.mark.parametrize("variant", ["path_dependent", "interventional"])
def test_the_analysis_explains_a_booster_in_margin_space(
    boosters: SimpleNamespace, key: str, klass: Any, label: str, space: str, variant: str
) -> None:
    model = load_model(boosters.paths[key])
    frame = boosters.X
    assert treeshap.refusal(model, feature_names=tuple(frame.columns)) is None
    assert refusal("treeshap", model) is None
    result = treeshap.run(
        _inputs(frame, model),
        ctx=JobContext(seed=5),
        rows=list(range(40)),
        variant=variant,
        background_size=30,
        klass=klass,
        device="cpu",
    )
    k = None if klass is None and SPECS[key][1] not in ("binary", "multiclass") else result.class_index
    margin = booster_margin(model, frame.iloc[:40], k)
    assert result.output_name == label and result.output_space == space
    assert result.feature_names == tuple(frame.columns) and result.values.shape == (40, 4)
    np.testing.assert_array_equal(result.predictions, margin)
    tol = _tolerance(key, margin)
    assert result.summary["max_additivity_error"] <= tol
    np.testing.assert_allclose(result.values.sum(axis=1) + result.base_values, margin, rtol=0, atol=tol)
    assert result.provenance.parameters["estimator"].endswith("booster")
    if variant == "path_dependent":
        theirs = _library_contributions(key, model, frame.iloc[:40], result.class_index)
        assert np.max(np.abs(result.values - theirs[:, :-1])) <= tol


def test_a_class_the_booster_lacks_is_refused(boosters: SimpleNamespace) -> None:
    model = load_model(boosters.paths["lgb-multiclass"])
    with pytest.raises(AnalysisError, match="no class 7"):
        treeshap.run(_inputs(boosters.X, model), ctx=JobContext(), rows=[0], klass=7)


def test_probity_explain_treeshap_runs_on_a_booster_file(
    boosters: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "credit.csv"
    boosters.X.assign(target=boosters.y["binary"]).to_csv(data, index=False)
    out = tmp_path / "treeshap.json"
    for key in ("xgb-binary-partition", "lgb-binary-zero-missing"):
        argv = ["--progress", "none", "explain", "treeshap", "--data", str(data), "--model", str(boosters.paths[key])]
        argv += ["--target", "target", "--rows", "0-9", "--param", "variant=interventional", "--out", str(out)]
        code = main(argv)
        assert code == 0, capsys.readouterr().err
        doc = json.loads(out.read_text())
        values = np.asarray(doc["values"])
        assert values.shape == (10, 4) and doc["feature_names"] == ["income", "debt", "region", "kids"]
        model = load_model(boosters.paths[key])
        # The CSV holds the categories as text; the booster maps them back to its stored categories.
        margin = booster_margin(model, boosters.X.iloc[:10], 1)
        predictions = np.asarray(doc["output"]["predictions"])
        np.testing.assert_allclose(predictions, margin, rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            values.sum(axis=1) + np.asarray(doc["base_values"]), margin, atol=_tolerance(key, margin)
        )
        assert doc["provenance"]["parameters"]["output_space"] == "log-odds"
