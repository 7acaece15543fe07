"""Exact TreeSHAP: parity with shap.TreeExplainer, brute-force Shapley values, additivity,
dummy features, raw-column mapping through pipelines, refusals, determinism and cancel."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn import ensemble, tree
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import engine.explain.treeshap as treeshap
from engine.attribution import AttributionResult
from engine.errors import AnalysisError, Cancelled
from engine.explain._pipeline import encoded_view
from engine.explain._trees import extract_tree_model, predict_tree_model
from engine.explain.treeshap import METHOD, run, tree_shap_values
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.sklearn_adapter import SklearnModel
from engine.schema import Roles

shap = pytest.importorskip("shap")


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread():
    """Histogram gradient boosting fits with OpenMP; on a busy two-core machine its spinning
    threads turn a 0.05 s fit into seconds, so the module runs single-threaded."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


N_ROWS = 200
N_FEATURES = 6


def _data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Small training sets.  Inputs are rounded to float32 values: scikit-learn's trees
    compare float32-cast inputs and shap's interventional code mixes float32 and float64,
    so values that are exact in both keep the comparison about the algorithm."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_ROWS, N_FEATURES)).astype(np.float32).astype(np.float64)
    logit = 1.5 * X[:, 0] - X[:, 1] + X[:, 2] * X[:, 3] + 0.5 * X[:, 4]
    if kind == "binary":
        y = (logit + rng.normal(scale=0.5, size=N_ROWS) > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(logit + rng.normal(scale=0.5, size=N_ROWS), [-1.0, 1.0])
    else:
        y = logit + rng.normal(scale=0.2, size=N_ROWS)
    return X, y


ESTIMATORS: dict[str, tuple[Callable[[], object], str]] = {
    "decision_tree_classifier": (lambda: tree.DecisionTreeClassifier(max_depth=5, random_state=0), "binary"),
    "decision_tree_regressor": (lambda: tree.DecisionTreeRegressor(max_depth=5, random_state=0), "regression"),
    "random_forest_classifier": (
        lambda: ensemble.RandomForestClassifier(n_estimators=12, max_depth=5, random_state=0),
        "binary",
    ),
    "random_forest_multiclass": (
        lambda: ensemble.RandomForestClassifier(n_estimators=12, max_depth=5, random_state=0),
        "multiclass",
    ),
    "random_forest_regressor": (
        lambda: ensemble.RandomForestRegressor(n_estimators=12, max_depth=5, random_state=0),
        "regression",
    ),
    "extra_trees_classifier": (
        lambda: ensemble.ExtraTreesClassifier(n_estimators=12, max_depth=5, random_state=0),
        "multiclass",
    ),
    "extra_trees_regressor": (
        lambda: ensemble.ExtraTreesRegressor(n_estimators=12, max_depth=5, random_state=0),
        "regression",
    ),
    "gradient_boosting_classifier": (
        lambda: ensemble.GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0),
        "binary",
    ),
    "gradient_boosting_regressor": (
        lambda: ensemble.GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0),
        "regression",
    ),
    "hist_gradient_boosting_classifier": (
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=15, max_depth=4, random_state=0),
        "binary",
    ),
    "hist_gradient_boosting_regressor": (
        lambda: ensemble.HistGradientBoostingRegressor(max_iter=15, max_depth=4, random_state=0),
        "regression",
    ),
}


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def fitted(request: pytest.FixtureRequest) -> tuple[str, object, np.ndarray]:
    factory, kind = ESTIMATORS[request.param]
    X, y = _data(kind)
    return request.param, factory().fit(X, y), X


def _classes(estimator: object) -> list[int | None]:
    classes = getattr(estimator, "classes_", None)
    return [None] if classes is None else list(range(len(classes)))


def _shap_for_class(values: np.ndarray, expected: object, k: int | None) -> tuple[np.ndarray, float]:
    """shap's output for class ``k``: one column per class, or a single margin (positive class)."""
    expected = np.atleast_1d(np.asarray(expected, dtype=float))
    if values.ndim == 3:
        return values[..., k], float(expected[k])
    if k == 0 and expected.shape[0] == 1:
        return -values, -float(expected[0])
    return values, float(expected[-1] if k is not None else expected[0])


def test_path_dependent_matches_shap_tree_explainer(fitted) -> None:
    name, estimator, X = fitted
    rows = X[:40]
    explainer = shap.TreeExplainer(estimator)
    reference = explainer.shap_values(rows, check_additivity=False)
    for k in _classes(estimator):
        values, base = tree_shap_values(estimator, rows, class_index=k)
        expected_values, expected_base = _shap_for_class(reference, explainer.expected_value, k)
        np.testing.assert_allclose(values, expected_values, rtol=0, atol=1e-6, err_msg=f"{name} class {k}")
        assert base.shape == (40,)
        assert base[0] == pytest.approx(expected_base, abs=1e-6)


def test_interventional_matches_shap_on_the_same_background(fitted) -> None:
    name, estimator, X = fitted
    rows, background = X[:30], X[100:130]
    explainer = shap.TreeExplainer(estimator, data=background, feature_perturbation="interventional")
    reference = explainer.shap_values(rows, check_additivity=False)
    for k in _classes(estimator):
        values, base = tree_shap_values(estimator, rows, variant="interventional", background=background, class_index=k)
        expected_values, expected_base = _shap_for_class(reference, explainer.expected_value, k)
        # shap accumulates this variant partly in float32, hence a few 1e-8 of noise.
        np.testing.assert_allclose(values, expected_values, rtol=0, atol=1e-6, err_msg=f"{name} class {k}")
        assert base[0] == pytest.approx(expected_base, abs=1e-6)


def test_both_variants_are_additive_to_the_model_output(fitted) -> None:
    name, estimator, X = fitted
    rows = X[:50]
    for k in _classes(estimator):
        model = extract_tree_model(estimator, class_index=k)
        if model.output_space == "probability":
            target = estimator.predict_proba(rows)[:, k]
        elif model.output_space == "log-odds":
            raw = estimator.decision_function(rows)
            target = raw[:, k] if raw.ndim == 2 else (raw if k == 1 else -raw)
        else:
            target = estimator.predict(rows)
        np.testing.assert_allclose(predict_tree_model(model, rows), target, rtol=0, atol=1e-9)
        for variant in treeshap.VARIANTS:
            values, base = tree_shap_values(estimator, rows, variant=variant, background=X[150:170], class_index=k)
            np.testing.assert_allclose(
                values.sum(axis=1) + base, target, rtol=0, atol=1e-9, err_msg=f"{name} {variant}"
            )


def _shap_dict_model(trees: list[dict[str, np.ndarray]], base_offset: float) -> dict[str, object]:
    return {"trees": trees, "base_offset": base_offset, "tree_output": "raw_value", "input_dtype": np.float64}


def _sklearn_tree_dict(t: object, scale: float) -> dict[str, np.ndarray]:
    return {
        "children_left": t.children_left,
        "children_right": t.children_right,
        "children_default": np.where(t.missing_go_to_left, t.children_left, t.children_right),
        "features": t.feature,
        "thresholds": t.threshold,
        "values": t.value[:, 0, :1] * scale,
        "node_sample_weight": t.weighted_n_node_samples,
    }


def _predictor_dict(p: object) -> dict[str, np.ndarray]:
    nodes = p.nodes
    leaf = nodes["is_leaf"].astype(bool)
    return {
        "children_left": np.where(leaf, -1, nodes["left"].astype(np.int64)),
        "children_right": np.where(leaf, -1, nodes["right"].astype(np.int64)),
        "children_default": np.where(
            leaf, -1, np.where(nodes["missing_go_to_left"], nodes["left"], nodes["right"]).astype(np.int64)
        ),
        "features": np.where(leaf, -2, nodes["feature_idx"]),
        "thresholds": nodes["num_threshold"].astype(np.float64),
        "values": nodes["value"].astype(np.float64)[:, None],
        "node_sample_weight": nodes["count"].astype(np.float64),
    }


def test_multiclass_boosting_matches_shap_on_each_class_trees() -> None:
    """shap's TreeExplainer refuses (GradientBoosting) or sums all classes (HistGradientBoosting)
    for multiclass boosting, so each class is compared with shap run on that class's trees,
    taken straight from scikit-learn's fitted attributes."""
    X, y = _data("multiclass", seed=1)
    rows = X[:30]
    gb = ensemble.GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, y)
    hgb = ensemble.HistGradientBoostingClassifier(max_iter=8, max_depth=3, random_state=0).fit(X, y)
    for k in range(3):
        trees = [_sklearn_tree_dict(est.tree_, gb.learning_rate) for est in gb.estimators_[:, k]]
        offset = gb.decision_function(rows[:1])[0, k] - sum(
            gb.learning_rate * est.predict(rows[:1].astype(np.float32))[0] for est in gb.estimators_[:, k]
        )
        for model, dict_trees, base in (
            (gb, trees, offset),
            (hgb, [_predictor_dict(it[k]) for it in hgb._predictors], float(hgb._baseline_prediction[0, k])),
        ):
            explainer = shap.TreeExplainer(_shap_dict_model(dict_trees, base))
            expected = explainer.shap_values(rows, check_additivity=False)
            values, base_values = tree_shap_values(model, rows, class_index=k)
            np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6)
            assert base_values[0] == pytest.approx(float(np.atleast_1d(explainer.expected_value)[0]), abs=1e-6)
            np.testing.assert_allclose(
                values.sum(axis=1) + base_values, model.decision_function(rows)[:, k], rtol=0, atol=1e-9
            )


def _brute_force_interventional(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """Shapley values of v(S) = mean over background of f(x_S, background_rest), by enumeration."""
    F = x.shape[0]
    subsets = [s for r in range(F + 1) for s in itertools.combinations(range(F), r)]
    hybrids = []
    for s in subsets:
        hybrid = background.copy()
        hybrid[:, list(s)] = x[list(s)]
        hybrids.append(hybrid)
    # One model call for every coalition keeps this cheap for models with per-call overhead.
    means = np.asarray(f(np.concatenate(hybrids)), dtype=float).reshape(len(subsets), -1).mean(axis=1)
    value = dict(zip(subsets, means))
    phi = np.zeros(F)
    for i in range(F):
        for s in subsets:
            if i in s:
                continue
            w = math.factorial(len(s)) * math.factorial(F - len(s) - 1) / math.factorial(F)
            phi[i] += w * (value[tuple(sorted(s + (i,)))] - value[s])
    return phi


def test_interventional_equals_brute_force_shapley_on_deep_trees() -> None:
    """Deep trees repeat features along paths; the values must still be the exact Shapley values
    of the interventional game (shap's own code drifts there, shap issue #3267)."""
    rng = np.random.default_rng(3)
    X = np.round(rng.normal(size=(300, 5)), 1)
    y = X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + X[:, 3] ** 2 + rng.normal(scale=0.1, size=300)
    model = tree.DecisionTreeRegressor(max_depth=12, random_state=0).fit(X, y)
    rows, background = X[:4], X[100:112]
    values, base = tree_shap_values(model, rows, variant="interventional", background=background)
    for i, x in enumerate(rows):
        np.testing.assert_allclose(
            values[i], _brute_force_interventional(model.predict, x, background), rtol=0, atol=1e-10
        )
    assert base[0] == pytest.approx(model.predict(background).mean(), abs=1e-12)


def _brute_force_path_dependent(t: object, x: np.ndarray) -> np.ndarray:
    """Shapley values of v(S) = E[f | x_S] with unknown features averaged by node cover."""
    F = x.shape[0]

    def expect(node: int, known: frozenset[int]) -> float:
        left, right = t.children_left[node], t.children_right[node]
        if left < 0:
            return float(t.value[node, 0, 0])
        f = t.feature[node]
        if f in known:
            xv = np.float32(x[f])
            goes_left = bool(t.missing_go_to_left[node]) if np.isnan(xv) else xv <= t.threshold[node]
            return expect(left if goes_left else right, known)
        w = t.weighted_n_node_samples
        return (w[left] * expect(left, known) + w[right] * expect(right, known)) / w[node]

    phi = np.zeros(F)
    for i in range(F):
        others = [j for j in range(F) if j != i]
        for r in range(F):
            for s in itertools.combinations(others, r):
                weight = math.factorial(r) * math.factorial(F - r - 1) / math.factorial(F)
                phi[i] += weight * (expect(0, frozenset(s) | {i}) - expect(0, frozenset(s)))
    return phi


def test_path_dependent_equals_brute_force_with_missing_values() -> None:
    """A tree trained with NaNs (scikit-learn >= 1.3 sends them left or right per node)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 4)).astype(np.float32).astype(np.float64)
    y = X[:, 0] + 2 * (X[:, 1] > 0) - X[:, 2] * X[:, 3] + rng.normal(scale=0.1, size=300)
    X[rng.random(X.shape) < 0.15] = np.nan
    model = tree.DecisionTreeRegressor(max_depth=7, random_state=0).fit(X, y)
    rows = X[:12]
    assert np.isnan(rows).any()
    values, base = tree_shap_values(model, rows)
    for i, x in enumerate(rows):
        np.testing.assert_allclose(values[i], _brute_force_path_dependent(model.tree_, x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(values.sum(axis=1) + base, model.predict(rows), rtol=0, atol=1e-10)
    reference = shap.TreeExplainer(model).shap_values(rows, check_additivity=False)
    np.testing.assert_allclose(values, reference, rtol=0, atol=1e-6)


def test_random_forest_with_missing_values_is_additive_and_matches_shap() -> None:
    X, y = _data("binary", seed=5)
    X[np.random.default_rng(5).random(X.shape) < 0.1] = np.nan
    model = ensemble.RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X, y)
    rows = X[:40]
    values, base = tree_shap_values(model, rows)
    np.testing.assert_allclose(values.sum(axis=1) + base, model.predict_proba(rows)[:, 1], rtol=0, atol=1e-9)
    reference = shap.TreeExplainer(model).shap_values(rows, check_additivity=False)[..., 1]
    np.testing.assert_allclose(values, reference, rtol=0, atol=1e-6)


def test_hist_gradient_boosting_categorical_splits_are_exact() -> None:
    """Category-set splits (bitsets), unknown categories and NaN follow scikit-learn's own routing:
    additivity against decision_function checks the routing on every row, and the brute-force
    interventional game evaluates hybrid rows with scikit-learn itself."""
    rng = np.random.default_rng(6)
    n = 400
    cat = rng.integers(0, 6, n).astype(float)
    num = rng.normal(size=n)
    other = rng.normal(size=n)
    y = ((np.isin(cat, [1, 4]) * 2.0 + num - 0.5 * other + rng.normal(scale=0.3, size=n)) > 1).astype(int)
    X = np.column_stack([cat, num, other])
    model = ensemble.HistGradientBoostingClassifier(
        max_iter=10, max_depth=4, categorical_features=[0], random_state=0
    ).fit(X, y)
    assert any(p[0].nodes["is_categorical"].any() for p in model._predictors)
    rows = X[:25].copy()
    rows[0, 0] = np.nan  # missing category
    rows[1, 0] = 9.0  # category never seen in training
    for variant in treeshap.VARIANTS:
        values, base = tree_shap_values(model, rows, variant=variant, background=X[200:208])
        np.testing.assert_allclose(values.sum(axis=1) + base, model.decision_function(rows), rtol=0, atol=1e-9)
    values, _ = tree_shap_values(model, rows[:3], variant="interventional", background=X[200:208])
    for i in range(3):
        np.testing.assert_allclose(
            values[i], _brute_force_interventional(model.decision_function, rows[i], X[200:208]), rtol=0, atol=1e-10
        )


def test_constant_and_never_split_features_get_exactly_zero() -> None:
    X, y = _data("binary", seed=7)
    X[:, 2] = 1.5  # constant: no tree can split on it
    model = ensemble.RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(X, y)
    used = {int(f) for est in model.estimators_ for f in est.tree_.feature if f >= 0}
    never = [j for j in range(N_FEATURES) if j not in used]
    assert 2 in never
    for variant in treeshap.VARIANTS:
        values, _ = tree_shap_values(model, X[:30], variant=variant, background=X[100:120])
        assert np.all(values[:, never] == 0.0)
        assert np.abs(values[:, sorted(used)]).sum() > 0


def _frame_pipeline(seed: int = 8) -> tuple[pd.DataFrame, Pipeline, list[str]]:
    rng = np.random.default_rng(seed)
    n = 240
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n).astype(np.float32).astype(np.float64),
            "colour": rng.choice(["red", "green", "blue"], n),
            "weight": rng.normal(size=n).astype(np.float32).astype(np.float64),
            "shape": rng.choice(["round", "square"], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "weight"] = np.nan
    logit = frame["size"] + (frame["colour"] == "red") * 1.5 - frame["weight"].fillna(0) + (frame["shape"] == "round")
    frame["label"] = (logit + rng.normal(scale=0.5, size=n) > 0.8).astype(int)
    features = ["size", "colour", "weight", "shape"]
    pre = ColumnTransformer(
        [
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                ["weight", "size"],
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["colour", "shape"]),
        ]
    )
    pipe = Pipeline(
        [("prepare", pre), ("forest", ensemble.RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0))]
    )
    pipe.fit(frame[features], frame["label"])
    return frame, pipe, features


def _inputs(frame: pd.DataFrame, estimator: object, features: list[str], target: str | None = "label") -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=target, features=tuple(features)), model=SklearnModel(estimator))


def test_pipeline_raw_attribution_is_the_sum_of_shaps_encoded_attributions() -> None:
    frame, pipe, features = _frame_pipeline()
    result = run(_inputs(frame, pipe, features), ctx=JobContext(seed=0), rows=range(60))
    encoded = pipe[:-1].transform(frame[features].iloc[:60])
    reference = shap.TreeExplainer(pipe[-1]).shap_values(encoded, check_additivity=False)[..., 1]
    # Encoded columns: weight, size, colour=blue/green/red, shape=round/square.
    expected = np.column_stack(
        [reference[:, 1], reference[:, 2:5].sum(axis=1), reference[:, 0], reference[:, 5:7].sum(axis=1)]
    )
    assert result.feature_names == tuple(features)
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.predictions, pipe.predict_proba(frame[features].iloc[:60])[:, 1], atol=1e-12)
    assert result.summary["max_additivity_error"] <= 1e-9
    assert result.output_space == "probability"


def test_demo_credit_pipeline_is_explained_in_log_odds_of_approval() -> None:
    from engine.demo import FEATURES, TARGET, make_credit_frame, train_credit_model

    frame = make_credit_frame(600, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = train_credit_model(frame, seed=11)
    inputs = AuditInputs(frame=frame, roles=Roles(target=TARGET, features=FEATURES), model=SklearnModel(pipe))
    result = run(inputs, ctx=JobContext(seed=0), rows=range(80))
    assert isinstance(result, AttributionResult)
    assert result.method == "treeshap"
    assert result.output_space == "log-odds"
    assert result.values.shape == (80, len(FEATURES))
    assert result.quality["additivity_error"].shape == (80,)
    assert result.summary["max_additivity_error"] <= 1e-6
    np.testing.assert_allclose(result.predictions, pipe.decision_function(frame[list(FEATURES)].iloc[:80]), atol=1e-12)
    # Income and debt drive approval in the generator; their attributions dominate the categorical ones.
    strength = np.abs(result.values).mean(axis=0)
    names = list(FEATURES)
    assert strength[names.index("income")] > strength[names.index("employment")]
    assert strength[names.index("debt")] > strength[names.index("neighbourhood")]


def test_pipeline_with_a_mixing_transformer_is_refused_so_the_caller_can_fall_back() -> None:
    X, y = _data("binary", seed=9)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(N_FEATURES)]).assign(label=y)
    pipe = Pipeline([("pca", PCA(n_components=3)), ("tree", tree.DecisionTreeClassifier(max_depth=3))])
    pipe.fit(frame.drop(columns="label"), y)
    with pytest.raises(AnalysisError) as err:
        run(_inputs(frame, pipe, [f"x{j}" for j in range(N_FEATURES)]), ctx=JobContext())
    assert str(err.value) == (
        "TreeSHAP cannot map the encoded columns of the pipeline step 'pca' (PCA) back to raw input columns."
    )


def test_a_model_that_is_not_a_tree_is_refused() -> None:
    X, y = _data("binary", seed=10)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(N_FEATURES)]).assign(label=y)
    model = LogisticRegression().fit(frame.drop(columns="label"), y)
    with pytest.raises(AnalysisError, match="ends in a LogisticRegression"):
        run(_inputs(frame, model, [f"x{j}" for j in range(N_FEATURES)]), ctx=JobContext())


def test_same_inputs_give_identical_results_and_the_seed_picks_the_background() -> None:
    frame, pipe, features = _frame_pipeline(seed=12)
    inputs = _inputs(frame, pipe, features)
    first = run(inputs, ctx=JobContext(seed=5), rows=range(20), variant="interventional", background_size=30)
    second = run(inputs, ctx=JobContext(seed=5), rows=range(20), variant="interventional", background_size=30)
    other = run(inputs, ctx=JobContext(seed=6), rows=range(20), variant="interventional", background_size=30)
    assert np.array_equal(first.values, second.values)
    assert np.array_equal(first.base_values, second.base_values)
    assert not np.array_equal(first.values, other.values)
    assert first.provenance.parameters["background_size"] == 30
    assert first.provenance.seed == 5
    assert frame.equals(inputs.frame)


def test_rows_are_the_requested_positions_and_provenance_records_the_choice() -> None:
    frame, pipe, features = _frame_pipeline(seed=13)
    result = run(_inputs(frame, pipe, features), ctx=JobContext(seed=1), rows=[5, 3, 17], klass=0)
    assert result.rows.tolist() == [5, 3, 17]
    assert result.class_index == 0
    np.testing.assert_allclose(result.predictions, pipe.predict_proba(frame[features].iloc[[5, 3, 17]])[:, 0])
    params = result.provenance.parameters
    assert params["variant"] == "path_dependent"
    assert params["class"] == 0
    assert params["output_space"] == "probability"
    assert params["reason"] == "tree ensemble → exact TreeSHAP"
    assert result.provenance.method == "treeshap"
    restored = AttributionResult.from_dict(result.to_dict())
    np.testing.assert_array_equal(restored.values, result.values)
    with pytest.raises(AnalysisError, match="Row position 999 is outside the data"):
        run(_inputs(frame, pipe, features), ctx=JobContext(), rows=[999])


def test_binary_boosting_explains_class_zero_as_the_negated_margin() -> None:
    X, y = _data("binary", seed=14)
    model = ensemble.GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X, y)
    v1, b1 = tree_shap_values(model, X[:20], class_index=1)
    v0, b0 = tree_shap_values(model, X[:20], class_index=0)
    np.testing.assert_allclose(v0, -v1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(b0, -b1, rtol=0, atol=1e-15)


def test_block_and_chunk_sizes_and_threads_do_not_change_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data("regression", seed=15)
    model = ensemble.RandomForestRegressor(n_estimators=9, max_depth=6, random_state=0).fit(X, y)
    tm = extract_tree_model(model)
    reference, base = treeshap.tree_model_shap_values(tm, X[:64], n_threads=1)
    monkeypatch.setattr(treeshap, "_WORK_ELEMENTS", 3000)
    monkeypatch.setattr(treeshap, "_PAIRS_PER_UNIT", 40)
    small, small_base = treeshap.tree_model_shap_values(tm, X[:64], n_threads=2)
    np.testing.assert_allclose(small, reference, rtol=0, atol=1e-13)
    assert small_base == pytest.approx(base, abs=1e-13)
    a, _ = treeshap.tree_model_shap_values(tm, X[:64], variant="interventional", background=X[80:100], n_threads=2)
    monkeypatch.setattr(treeshap, "_PAIRS_PER_UNIT", 65536)
    b, _ = treeshap.tree_model_shap_values(tm, X[:64], variant="interventional", background=X[80:100], n_threads=1)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


def test_cancelling_stops_the_job_and_progress_reaches_the_end() -> None:
    frame, pipe, features = _frame_pipeline(seed=16)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run(_inputs(frame, pipe, features), ctx=JobContext(cancel=token))
    seen: list[float] = []
    run(_inputs(frame, pipe, features), ctx=JobContext(progress_fn=lambda f, _m: seen.append(f)))
    assert seen and seen[-1] == 1.0
    assert all(b >= a for a, b in zip(seen, seen[1:]))


def test_method_is_registered_by_name_with_its_parameters() -> None:
    assert METHOD.name == "treeshap"
    assert METHOD.defaults == {
        "rows": None,
        "variant": "path_dependent",
        "background_size": 100,
        "klass": None,
        "device": "auto",
    }
    frame, pipe, features = _frame_pipeline(seed=17)
    # The descriptor refuses it before the run does, naming the method, the parameter and the choices.
    with pytest.raises(
        AnalysisError,
        match=r"^TreeSHAP's parameter variant must be one of 'path_dependent', "
        r"'interventional', not 'exact'\.$",
    ):
        METHOD(_inputs(frame, pipe, features), ctx=JobContext(), variant="exact")


def test_hist_gradient_boosting_with_pandas_categories_maps_back_to_raw_columns() -> None:
    rng = np.random.default_rng(18)
    n = 300
    frame = pd.DataFrame(
        {
            "city": pd.Categorical(rng.choice(["a", "b", "c", "d"], n)),
            "score": rng.normal(size=n),
            "age": rng.normal(size=n),
        }
    )
    logit = frame["city"].isin(["a", "c"]).astype(float) + frame["score"] + rng.normal(scale=0.3, size=n)
    y = (logit > 0.7).astype(int)
    frame["label"] = y
    features = ["city", "score", "age"]
    model = ensemble.HistGradientBoostingClassifier(max_iter=10, max_depth=3, random_state=0)
    model.fit(frame[features], y)
    assert model._preprocessor is not None
    inputs = _inputs(frame, model, features)
    result = run(inputs, ctx=JobContext(seed=2), rows=range(40), variant="interventional", background_size=10)
    assert result.summary["max_additivity_error"] <= 1e-9
    np.testing.assert_allclose(result.predictions, model.decision_function(frame[features].iloc[:40]))
    # The model reorders columns internally (categories first); the attribution of "city" must be
    # that of the category column, checked by brute force on the raw frame.
    pick = np.sort(JobContext(seed=2).rng("treeshap", "background").choice(n, 10, replace=False))
    background = frame[features].iloc[pick]
    x = frame[features].iloc[0]

    def f(rows: np.ndarray) -> np.ndarray:
        hybrid = pd.DataFrame(rows, columns=features)
        return model.decision_function(hybrid.astype({"city": frame["city"].dtype, "score": float, "age": float}))

    phi = _brute_force_interventional(f, x.to_numpy(dtype=object), background.to_numpy(dtype=object))
    np.testing.assert_allclose(result.values[0], phi.astype(float), rtol=0, atol=1e-10)


def test_encoded_view_traces_imputer_indicators_and_one_hot_columns() -> None:
    frame, pipe, features = _frame_pipeline(seed=19)
    view = encoded_view(pipe, features)
    assert view.sources.tolist() == [2, 0, 1, 1, 1, 3, 3]
    encoded = view.encode(frame[features])
    np.testing.assert_allclose(encoded, pipe[:-1].transform(frame[features]))
    pre = ColumnTransformer(
        [("num", SimpleImputer(add_indicator=True), ["weight"]), ("cat", OneHotEncoder(drop="first"), ["colour"])],
        remainder="passthrough",
    )
    pipe2 = Pipeline([("prepare", pre), ("tree", tree.DecisionTreeClassifier(max_depth=3))])
    pipe2.fit(frame[features].drop(columns="shape"), frame["label"])
    view2 = encoded_view(pipe2, ["size", "colour", "weight"])
    # weight, weight's missing indicator, colour (3 categories minus the dropped one), size (remainder)
    assert view2.sources.tolist() == [2, 2, 1, 1, 0]


# -- the torch (GPU) path: the same sweeps as tensors, run here on the processor ----------------


def test_torch_sweeps_equal_the_numpy_blocks_for_every_estimator(fitted) -> None:
    pytest.importorskip("torch")
    from engine.explain._trees import extract_tree_model

    name, model, X = fitted
    for k in _classes(model)[:2]:
        tree_model = extract_tree_model(model, class_index=k)
        rows = X[:37]
        ours, base = treeshap.tree_model_shap_values(tree_model, rows)
        theirs, base_t = treeshap.tree_model_shap_values(tree_model, rows, torch_device="cpu")
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-12)
        assert base_t == base
        # The interventional expansion keeps numpy's order of every sum: the same bits.
        kw = dict(variant="interventional", background=X[100:113])
        ours, base = treeshap.tree_model_shap_values(tree_model, rows[:9], **kw)
        theirs, base_t = treeshap.tree_model_shap_values(tree_model, rows[:9], torch_device="cpu", **kw)
        np.testing.assert_array_equal(theirs, ours)
        assert base_t == base


def test_torch_sweeps_follow_missing_values_and_category_sets() -> None:
    pytest.importorskip("torch")
    from engine.explain._trees import extract_tree_model

    rng = np.random.default_rng(6)
    n = 400
    cat = rng.integers(0, 6, n).astype(float)
    num = rng.normal(size=n)
    y = ((np.isin(cat, [1, 4]) * 2.0 + num + rng.normal(scale=0.3, size=n)) > 1).astype(int)
    X = np.column_stack([cat, num, rng.normal(size=n)])
    X[rng.random(X.shape) < 0.05] = np.nan
    model = ensemble.HistGradientBoostingClassifier(
        max_iter=10, max_depth=4, categorical_features=[0], random_state=0
    ).fit(X, y)
    rows = X[:50].copy()
    rows[1, 0] = 9.0  # a category never seen in training
    tree_model = extract_tree_model(model, class_index=1)
    values, base = treeshap.tree_model_shap_values(tree_model, rows, torch_device="cpu")
    np.testing.assert_allclose(values.sum(axis=1) + base, model.decision_function(rows), rtol=0, atol=1e-9)
    np.testing.assert_allclose(values, treeshap.tree_model_shap_values(tree_model, rows)[0], rtol=0, atol=1e-12)
    kw = dict(variant="interventional", background=X[200:270])  # 70 background rows: two bitset words
    values, base = treeshap.tree_model_shap_values(tree_model, rows, torch_device="cpu", **kw)
    np.testing.assert_allclose(values.sum(axis=1) + base, model.decision_function(rows), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(values, treeshap.tree_model_shap_values(tree_model, rows, **kw)[0])


def test_a_gpu_device_sends_the_sweeps_to_torch_and_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``device="auto"`` does on a CUDA machine, with the processor standing in for the GPU."""
    pytest.importorskip("torch")
    frame, pipe, features = _frame_pipeline(seed=17)
    inputs = _inputs(frame, pipe, features)
    plain = treeshap.run(inputs, ctx=JobContext(seed=1), rows=[0, 1, 2, 3], device="cpu")
    assert plain.provenance.parameters["device"] == "cpu"
    seen: list[object] = []
    original = treeshap.tree_model_shap_values

    def spy(*args, **kwargs):
        seen.append(kwargs.get("torch_device"))
        return original(*args, **kwargs)

    monkeypatch.setattr(treeshap, "choose_device", lambda preference: "cpu:0")  # "a device that is not numpy"
    monkeypatch.setattr(treeshap, "tree_model_shap_values", spy)
    routed = treeshap.run(inputs, ctx=JobContext(seed=1), rows=[0, 1, 2, 3])
    assert seen == ["cpu:0"] and routed.provenance.parameters["device"] == "cpu:0"
    np.testing.assert_allclose(routed.values, plain.values, rtol=0, atol=1e-12)


def test_asking_for_cuda_without_a_gpu_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    frame, pipe, features = _frame_pipeline(seed=17)
    with pytest.raises(AnalysisError) as err:
        treeshap.run(_inputs(frame, pipe, features), ctx=JobContext(), rows=[0], device="cuda")
    assert "CUDA" in str(err.value) and str(err.value).count(". ") == 0


def _oblivious_tree(rng: np.random.Generator, splits: list[tuple[int, float, bool]]) -> treeshap.Tree:
    """A complete tree whose nodes at depth d all split on ``splits[d]`` (feature, threshold, missing left),
    with random leaf values and covers (inner covers the sum of their leaves')."""
    depth = len(splits)
    n_inner, n_nodes = 2**depth - 1, 2 ** (depth + 1) - 1
    idx = np.arange(n_nodes)
    inner = idx < n_inner
    level = np.floor(np.log2(idx + 1)).astype(int)
    at = [splits[min(d, depth - 1)] for d in level]
    cover = np.where(inner, 0.0, rng.integers(1, 20, size=n_nodes)).astype(np.float64)
    left = np.where(inner, 2 * idx + 1, -1)
    for node in range(n_inner - 1, -1, -1):
        cover[node] = cover[2 * node + 1] + cover[2 * node + 2]
    return treeshap.Tree(
        left=left,
        right=np.where(inner, 2 * idx + 2, -1),
        feature=np.where(inner, [f for f, _, _ in at], -1).astype(np.int64),
        threshold=np.where(inner, [t for _, t, _ in at], 0.0).astype(np.float64),
        missing_left=np.array([m for _, _, m in at]) & inner,
        value=np.where(inner, 0.0, rng.normal(size=n_nodes)),
        cover=cover,
    )


@pytest.mark.parametrize("variant", ["path_dependent", "interventional"])
def test_oblivious_trees_computed_once_per_leaf_equal_the_row_by_row_sweeps(variant, monkeypatch) -> None:
    """CatBoost's symmetric trees: every row reaching a leaf has that tree's same SHAP values, so they are
    computed once per leaf; the numbers equal the general sweeps (NaN rows and a feature split twice too)."""
    rng = np.random.default_rng(4)

    def splits(d: int) -> list[tuple[int, float, bool]]:
        return [(int(rng.integers(4)), float(rng.normal()), bool(rng.integers(2))) for _ in range(d)]

    trees = tuple(_oblivious_tree(rng, splits(d)) for d in (3, 4, 2, 4))
    model = treeshap.TreeModel(trees, 0.3, "margin", 4, False, "oblivious")
    assert all(treeshap._leaf_determined(t) for t in trees)
    X = rng.normal(size=(300, 4))
    X[::7, 2] = np.nan
    background = rng.normal(size=(12, 4))
    kwargs = {"variant": variant, "background": background if variant == "interventional" else None, "n_threads": 1}
    assert treeshap._by_leaf_pays(model, len(X)) and not treeshap._by_leaf_pays(model, 20)
    by_leaf, base = treeshap.tree_model_shap_values(model, X, **kwargs)
    monkeypatch.setattr(treeshap, "_by_leaf_pays", lambda *a: False)
    swept, swept_base = treeshap.tree_model_shap_values(model, X, **kwargs)
    assert np.allclose(by_leaf, swept, rtol=0, atol=1e-12) and base == pytest.approx(swept_base, abs=1e-12)
    if variant == "path_dependent":  # additive to the trees' output
        assert np.allclose(by_leaf.sum(axis=1) + base, predict_tree_model(model, X), rtol=0, atol=1e-9)


def test_only_complete_trees_splitting_alike_at_each_depth_are_taken_per_leaf() -> None:
    import dataclasses

    rng = np.random.default_rng(5)
    even = _oblivious_tree(rng, [(0, 0.1, True), (1, -0.2, False)])
    assert treeshap._leaf_determined(even)
    feature = even.feature.copy()
    feature[2] = 3  # one node at depth 1 splits on another feature
    assert not treeshap._leaf_determined(dataclasses.replace(even, feature=feature))
    X, y = _data("binary")
    grown = extract_tree_model(tree.DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y))
    assert not treeshap._leaf_determined(grown.trees[0])
