"""Exact linear SHAP: the closed form beta_j (x_j - mean_j), additivity in the model's own
output space, raw-column sums through pipelines, parity with shap, null models, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import linear_model
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from engine.attribution import AttributionResult
from engine.errors import AnalysisError
from engine.explain.linearshap import METHOD, linear_terms, run
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.sklearn_adapter import SklearnModel
from engine.schema import Roles


def _numeric(n: int = 150, m: int = 4, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)) * np.arange(1, m + 1) + np.arange(m)
    features = [f"x{j}" for j in range(m)]
    frame = pd.DataFrame(X, columns=features)
    frame["y"] = X @ np.array([1.0, -2.0, 0.5, 0.0][:m]) + rng.normal(scale=0.1, size=n)
    frame["label"] = (frame["y"] > frame["y"].median()).astype(int)
    frame["group"] = np.digitize(frame["y"], np.quantile(frame["y"], [0.33, 0.66]))
    return frame, features


def _inputs(frame: pd.DataFrame, estimator: object, features: list[str], target: str) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=target, features=tuple(features)), model=SklearnModel(estimator))


@pytest.mark.parametrize(
    "factory",
    [
        linear_model.LinearRegression,
        lambda: linear_model.Ridge(alpha=3.0),
        lambda: linear_model.Lasso(alpha=0.05),
        lambda: linear_model.ElasticNet(alpha=0.05, l1_ratio=0.3),
        lambda: linear_model.SGDRegressor(random_state=0, max_iter=200, tol=None),
    ],
    ids=["linear", "ridge", "lasso", "elastic_net", "sgd"],
)
def test_regressors_follow_the_closed_form_and_are_additive(factory) -> None:
    frame, features = _numeric()
    model = factory().fit(frame[features], frame["y"])
    result = run(_inputs(frame, model, features, "y"), ctx=JobContext(), rows=range(30))
    X = frame[features].to_numpy()
    mean = X.mean(axis=0)
    np.testing.assert_allclose(result.values, model.coef_ * (X[:30] - mean), rtol=0, atol=1e-12)
    centre = pd.DataFrame(mean[None, :].repeat(30, 0), columns=features)
    np.testing.assert_allclose(result.base_values, model.predict(centre), rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.predictions, model.predict(frame[features].iloc[:30]), rtol=0, atol=1e-12)
    assert result.summary["max_additivity_error"] <= 1e-10
    assert result.output_space == "value"
    assert result.method == "linearshap"


def test_logistic_regression_is_explained_in_log_odds_for_every_class() -> None:
    frame, features = _numeric(seed=1)
    binary = linear_model.LogisticRegression(max_iter=500).fit(frame[features], frame["label"])
    inputs = _inputs(frame, binary, features, "label")
    one = run(inputs, ctx=JobContext(), rows=range(25))
    zero = run(inputs, ctx=JobContext(), rows=range(25), klass=0)
    assert one.output_space == "log-odds"
    np.testing.assert_allclose(one.predictions, binary.decision_function(frame[features].iloc[:25]), atol=1e-12)
    np.testing.assert_allclose(zero.values, -one.values, rtol=0, atol=1e-15)
    assert one.summary["max_additivity_error"] <= 1e-10
    multi = linear_model.LogisticRegression(max_iter=500).fit(frame[features], frame["group"])
    for k in range(3):
        result = run(_inputs(frame, multi, features, "group"), ctx=JobContext(), rows=range(25), klass=k)
        X = frame[features].to_numpy()
        np.testing.assert_allclose(result.values, multi.coef_[k] * (X[:25] - X.mean(axis=0)), rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            result.predictions, multi.decision_function(frame[features].iloc[:25])[:, k], atol=1e-10
        )
        assert result.summary["max_additivity_error"] <= 1e-10


def _categorical_frame(seed: int = 2) -> tuple[pd.DataFrame, list[str], Pipeline]:
    rng = np.random.default_rng(seed)
    n = 200
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "region": rng.choice(["north", "south", "east"], n),
            "age": rng.normal(40, 12, n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame["label"] = ((frame["income"] - 50) / 10 + (frame["region"] == "south") + rng.normal(size=n) > 0.3).astype(int)
    features = ["income", "region", "age"]
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["income", "age"]),
            ("cat", OneHotEncoder(sparse_output=False), ["region"]),
        ]
    )
    pipe = Pipeline([("prepare", pre), ("model", linear_model.LogisticRegression(max_iter=500))])
    pipe.fit(frame[features], frame["label"])
    return frame, features, pipe


def test_pipeline_attribution_sums_encoded_columns_into_raw_ones_and_matches_shap() -> None:
    shap = pytest.importorskip("shap")
    frame, features, pipe = _categorical_frame()
    result = run(_inputs(frame, pipe, features, "label"), ctx=JobContext(), rows=range(40))
    encoded = pipe[:-1].transform(frame[features])
    beta = pipe[-1].coef_[0]
    per_column = beta * (encoded[:40] - encoded.mean(axis=0))
    # Encoded columns: income, age, region=east/north/south.
    expected = np.column_stack([per_column[:, 0], per_column[:, 2:5].sum(axis=1), per_column[:, 1]])
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=1e-12)
    explainer = shap.LinearExplainer(pipe[-1], shap.maskers.Independent(encoded, max_samples=len(encoded)))
    reference = explainer.shap_values(encoded[:40])
    np.testing.assert_allclose(per_column, reference, rtol=0, atol=1e-8)
    np.testing.assert_allclose(result.predictions, pipe.decision_function(frame[features].iloc[:40]), atol=1e-12)
    assert result.summary["max_additivity_error"] <= 1e-10
    assert result.provenance.parameters["encoded_columns"] == 5


def test_a_log_link_regressor_is_explained_on_its_linear_predictor() -> None:
    frame, features = _numeric(seed=6)
    counts = np.random.default_rng(6).poisson(np.exp(0.2 * frame["x0"] - 0.1 * frame["x1"]))
    frame["count"] = counts
    model = linear_model.PoissonRegressor(alpha=0.01).fit(frame[features], counts)
    result = run(_inputs(frame, model, features, "count"), ctx=JobContext(), rows=range(20))
    assert result.output_space == "margin"
    X = frame[features].to_numpy()
    np.testing.assert_allclose(result.values, model.coef_ * (X[:20] - X.mean(axis=0)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.predictions, np.log(model.predict(frame[features].iloc[:20])), atol=1e-12)
    assert result.summary["max_additivity_error"] <= 1e-10


def test_a_model_with_all_zero_coefficients_gets_all_zero_attributions() -> None:
    frame, features = _numeric(seed=3)
    model = linear_model.Lasso(alpha=1e6).fit(frame[features], frame["y"])
    assert np.all(model.coef_ == 0)
    result = run(_inputs(frame, model, features, "y"), ctx=JobContext())
    assert np.all(result.values == 0.0)
    np.testing.assert_allclose(result.base_values, model.intercept_)


def test_sampled_background_is_seeded_and_results_repeat_exactly() -> None:
    frame, features = _numeric(seed=4)
    model = linear_model.Ridge().fit(frame[features], frame["y"])
    inputs = _inputs(frame, model, features, "y")
    first = run(inputs, ctx=JobContext(seed=9), rows=range(10), background_size=40)
    second = run(inputs, ctx=JobContext(seed=9), rows=range(10), background_size=40)
    other = run(inputs, ctx=JobContext(seed=10), rows=range(10), background_size=40)
    assert np.array_equal(first.values, second.values)
    assert not np.array_equal(first.values, other.values)
    pick = np.sort(JobContext(seed=9).rng("linearshap", "background").choice(len(frame), 40, replace=False))
    mean = frame[features].to_numpy()[pick].mean(axis=0)
    np.testing.assert_allclose(first.values, model.coef_ * (frame[features].to_numpy()[:10] - mean), atol=1e-12)
    assert first.provenance.parameters["background_size"] == 40
    restored = AttributionResult.from_dict(first.to_dict())
    np.testing.assert_array_equal(restored.values, first.values)


def test_models_that_are_not_linear_or_rows_that_are_not_imputed_are_refused() -> None:
    frame, features = _numeric(seed=5)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(frame[features], frame["label"])
    with pytest.raises(AnalysisError, match="ends in a RandomForestClassifier"):
        run(_inputs(frame, forest, features, "label"), ctx=JobContext())
    with pytest.raises(AnalysisError, match="explains scikit-learn linear models"):
        linear_terms(forest, class_index=1)
    model = linear_model.LinearRegression().fit(frame[features], frame["y"])
    holes = frame.copy()
    holes.loc[3, "x1"] = np.nan
    with pytest.raises(AnalysisError, match="missing values that the model's pipeline does not impute"):
        run(_inputs(holes, model, features, "y"), ctx=JobContext(), rows=[3])


def test_method_is_registered_by_name_with_its_parameters() -> None:
    assert METHOD.name == "linearshap"
    assert METHOD.defaults == {"rows": None, "background_size": None, "klass": None}
