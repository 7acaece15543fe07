"""A model's own importance: coefficient x std closed form, impurity sums, raw-column mapping, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from engine.attribution import AttributionResult
from engine.errors import AnalysisError, Cancelled
from engine.explain import native
from engine.explain._pipeline import encoded_view
from engine.explain.native import IMPURITY_CAVEAT, NativeImportanceResult, mean_abs_attribution
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.base import Model, Task
from engine.models.sklearn_adapter import SklearnModel
from engine.results import result_from_dict
from engine.schema import Roles


def make_inputs(X: pd.DataFrame, estimator) -> AuditInputs:
    return AuditInputs(frame=X, roles=Roles(target=None, features=tuple(X.columns)), model=SklearnModel(estimator))


@pytest.fixture(scope="module")
def mixed_case() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    n = 300
    colour = rng.choice(np.array(["red", "green", "blue", "grey"]), size=n, p=[0.4, 0.3, 0.2, 0.1])
    X = pd.DataFrame(
        {
            "income": rng.normal(50_000, 15_000, n),
            "colour": pd.Series(colour, dtype="str"),
            "age": rng.integers(18, 80, n),
            "noise": rng.normal(size=n),
        }
    )
    logit = (X["income"] - 50_000) / 15_000 + np.select([colour == "red", colour == "blue"], [1.5, -1.5], 0.0)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def one_hot_prep() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["income", "age", "noise"]),
            ("cat", OneHotEncoder(sparse_output=False), ["colour"]),
        ]
    )


def test_coefficient_times_std_closed_form_on_a_standardised_pipeline() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(10, 3, 200), "b": rng.normal(0, 0.1, 200), "c": rng.uniform(0, 1000, 200)})
    y = 2.0 * X["a"] - 30.0 * X["b"] + 0.001 * X["c"] + rng.normal(size=200)
    pipe = Pipeline([("scale", StandardScaler()), ("lin", LinearRegression())]).fit(X, y)
    result = native.run(make_inputs(X, pipe), ctx=JobContext())
    raw_beta = pipe[-1].coef_ / pipe[0].scale_
    # |beta_raw| * sd(raw) equals |beta_scaled| * sd(scaled) = |beta_scaled| (unit variance after scaling).
    np.testing.assert_allclose(result.importance, np.abs(raw_beta) * X.std(ddof=0).to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.importance, np.abs(pipe[-1].coef_), rtol=1e-10)
    np.testing.assert_allclose(result.signed, pipe[-1].coef_, rtol=1e-10)
    assert result.basis == "coefficient×std" and result.caveat is None and result.signed is not None
    assert result.estimator == "LinearRegression" and result.output_name == "prediction"
    assert result.encoded_to_raw == (("a",), ("b",), ("c",))
    assert result.n_rows == 200 and result.warnings == ()


def test_one_hot_columns_are_summed_into_their_raw_column(mixed_case) -> None:
    X, y = mixed_case
    pipe = Pipeline([("prep", one_hot_prep()), ("clf", LogisticRegression(max_iter=1000))]).fit(X, y)
    result = native.run(make_inputs(X, pipe), ctx=JobContext())
    Z = pipe[:-1].transform(X)
    beta = pipe[-1].coef_[0]
    per_encoded = np.abs(beta) * Z.std(axis=0)
    names = list(pipe[:-1].get_feature_names_out())
    colour_cols = [i for i, n in enumerate(names) if n.startswith("cat__colour_")]
    assert len(colour_cols) == 4
    assert result.feature_names == ("income", "colour", "age", "noise")
    assert result.importance[1] == pytest.approx(per_encoded[colour_cols].sum(), rel=1e-12)
    assert result.importance[0] == pytest.approx(per_encoded[names.index("num__income")], rel=1e-12)
    assert result.signed[1] == pytest.approx((beta * Z.std(axis=0))[colour_cols].sum(), rel=1e-10, abs=1e-12)
    assert all(result.encoded_to_raw[i] == ("colour",) for i in colour_cols)
    assert result.encoded_names == tuple(names)
    assert result.output_name == "decision function of P(1)"
    assert set(result.ranking()[:2]) == {"income", "colour"}


def test_random_forest_impurity_sums_to_one_over_raw_columns_with_the_caveat(mixed_case) -> None:
    X, y = mixed_case
    pipe = Pipeline(
        [("prep", one_hot_prep()), ("rf", RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0))]
    ).fit(X, y)
    result = native.run(make_inputs(X, pipe), ctx=JobContext())
    fi = pipe[-1].feature_importances_
    names = list(pipe[:-1].get_feature_names_out())
    assert result.importance.sum() == pytest.approx(1.0, abs=1e-12)
    colour = sum(fi[i] for i, n in enumerate(names) if n.startswith("cat__colour_"))
    assert result.importance[1] == pytest.approx(colour, abs=1e-15)
    assert result.basis == "impurity" and result.signed is None and result.encoded_coefficients is None
    assert result.caveat == "Impurity importance is biased toward high-cardinality and continuous features."
    assert IMPURITY_CAVEAT in result.warnings


def test_bare_tree_on_a_numpy_array_reports_its_own_importances() -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(150, 3))
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(A, A[:, 0] + 0.3 * A[:, 2])
    X = pd.DataFrame(A, columns=["p", "q", "r"])
    result = native.run(make_inputs(X, tree), ctx=JobContext())
    np.testing.assert_array_equal(result.importance, tree.feature_importances_)
    assert result.ranking()[0] == "p"


def test_multiclass_linear_model_uses_the_chosen_class_and_binary_mirrors() -> None:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(240, 2)), columns=["u", "v"])
    y3 = np.digitize(X["u"] - X["v"], [-0.7, 0.7])
    clf = LogisticRegression(max_iter=500).fit(X, y3)
    sd = X.std(ddof=0).to_numpy()
    for k in range(3):
        result = native.run(make_inputs(X, clf), ctx=JobContext(), klass=k)
        np.testing.assert_allclose(result.signed, clf.coef_[k] * sd, rtol=1e-12)
    y2 = (X["u"] > 0).astype(int)
    binary = LogisticRegression().fit(X, y2)
    first = native.run(make_inputs(X, binary), ctx=JobContext(), klass=0)
    second = native.run(make_inputs(X, binary), ctx=JobContext())
    np.testing.assert_allclose(first.signed, -second.signed)
    np.testing.assert_allclose(first.importance, second.importance)
    assert first.output_name == "decision function of P(0)"


def test_interaction_columns_are_shared_equally_with_a_warning() -> None:
    rng = np.random.default_rng(8)
    X = pd.DataFrame(rng.normal(size=(120, 2)), columns=["s", "t"])
    y = X["s"] + 2 * X["s"] * X["t"]
    pipe = Pipeline(
        [("poly", PolynomialFeatures(degree=2, interaction_only=True, include_bias=False)), ("lin", LinearRegression())]
    ).fit(X, y)
    result = native.run(make_inputs(X, pipe), ctx=JobContext())
    assert result.encoded_to_raw == (("s",), ("t",), ("s", "t"))
    imp = result.encoded_importance
    np.testing.assert_allclose(result.importance, [imp[0] + imp[2] / 2, imp[1] + imp[2] / 2], rtol=1e-12)
    assert any("'s t' are made from several raw columns" in w for w in result.warnings)


def test_a_model_with_neither_coefficients_nor_impurity_is_refused_by_name(mixed_case) -> None:
    X, y = mixed_case
    knn = Pipeline([("prep", one_hot_prep()), ("knn", KNeighborsClassifier())]).fit(X, y)
    with pytest.raises(AnalysisError) as info:
        native.run(make_inputs(X, knn), ctx=JobContext())
    assert str(info.value) == (
        "The model SklearnModel is a KNeighborsClassifier, which has neither coefficients nor impurity "
        "importances; use permutation importance or mean |SHAP| instead."
    )


def test_traced_mapping_agrees_with_the_pipelines_bookkeeping(mixed_case) -> None:
    X, y = mixed_case
    pipe = Pipeline([("prep", one_hot_prep()), ("clf", LogisticRegression(max_iter=1000))]).fit(X, y)
    view = encoded_view(pipe, tuple(X.columns))
    traced = native._traced_sources(pipe[:-1].transform, X, True, JobContext())
    expected = np.zeros_like(traced)
    expected[view.sources, np.arange(view.n_encoded)] = True
    np.testing.assert_array_equal(traced, expected)


class OpaqueModel(Model):
    """A model with no scikit-learn estimator behind it (as an ONNX graph)."""

    task = Task.REGRESSION
    classes = None
    input_columns = ("p", "q")
    format = "onnx"

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        return X["p"].to_numpy()


def test_a_model_without_an_estimator_is_refused_by_format() -> None:
    X = pd.DataFrame({"p": [1.0, 2.0], "q": [0.0, 1.0]})
    inputs = AuditInputs(frame=X, roles=Roles(target=None, features=("p", "q")), model=OpaqueModel())
    with pytest.raises(
        AnalysisError,
        match=r"^The model OpaqueModel \(onnx format\) exposes neither "
        r"coefficients nor impurity importances; use permutation importance "
        r"or mean \|SHAP\| instead\.$",
    ):
        native.run(inputs, ctx=JobContext())


@pytest.mark.parametrize("stage", ["Tracing encoded columns of t", "Measuring the spread"])
def test_cancel_is_honoured(stage: str) -> None:
    rng = np.random.default_rng(8)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["s", "t"])
    pipe = Pipeline(
        [("poly", PolynomialFeatures(degree=2, interaction_only=True, include_bias=False)), ("lin", LinearRegression())]
    ).fit(X, X["s"] * X["t"])
    token = CancelToken()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith(stage):
            token.cancel()

    with pytest.raises(Cancelled):
        native.run(make_inputs(X, pipe), ctx=JobContext(progress_fn=progress, cancel=token))
    assert seen[-1].startswith(stage)


def test_mean_abs_attribution_is_the_mean_of_absolute_values(mixed_case) -> None:
    X, _ = mixed_case
    inputs = make_inputs(X, DecisionTreeRegressor().fit(np.zeros((2, 4)), [0, 1]))
    values = np.array([[1.0, -2.0, 0.0, np.nan], [-3.0, 2.0, 0.5, 1.0]])
    provenance = inputs.provenance(method="treeshap", parameters={}, ctx=JobContext(), started_at="now")
    shap_like = AttributionResult(
        provenance=provenance,
        method="treeshap",
        feature_names=tuple(X.columns),
        rows=np.array([0, 1]),
        values=values,
        predictions=np.zeros(2),
    )
    names, means = mean_abs_attribution(shap_like)
    assert names == tuple(X.columns)
    np.testing.assert_allclose(means, [2.0, 2.0, 0.25, 1.0])


def test_json_round_trip(mixed_case) -> None:
    X, y = mixed_case
    pipe = Pipeline([("prep", one_hot_prep()), ("clf", LogisticRegression(max_iter=1000))]).fit(X, y)
    result = native.run(make_inputs(X, pipe), ctx=JobContext())
    back = result_from_dict(json.loads(json.dumps(result.to_dict())))
    assert isinstance(back, NativeImportanceResult)
    assert back.to_dict() == result.to_dict()
    assert back.encoded_to_raw == result.encoded_to_raw
    np.testing.assert_array_equal(back.signed, result.signed)
    assert not back.importance.flags.writeable
