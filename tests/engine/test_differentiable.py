"""Torch views of differentiable scikit-learn models: the same function, gradients in closed form, clear refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)

from engine.errors import AnalysisError  # noqa: E402
from engine.explain.gradients import run_ig, run_saliency  # noqa: E402
from engine.inputs import AuditInputs  # noqa: E402
from engine.jobs import JobContext  # noqa: E402
from engine.models.differentiable import ViewRefused, check_view, torch_view  # noqa: E402
from engine.models.sklearn_adapter import SklearnModel  # noqa: E402
from engine.schema import Roles  # noqa: E402

CTX = JobContext(seed=3)


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of small fits
        return estimator.fit(X, y)


def _inputs(estimator, frame: pd.DataFrame, target: str) -> AuditInputs:
    features = tuple(c for c in frame.columns if c != target)
    return AuditInputs(frame=frame, roles=Roles(target=target, features=features), model=SklearnModel(estimator))


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return load_iris(as_frame=True).frame


@pytest.fixture(scope="module")
def binary(iris) -> pd.DataFrame:
    frame = iris.copy()
    frame["target"] = (frame["target"] == 2).astype(int)
    return frame


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


CASES = [
    ("binary", lambda: make_pipeline(StandardScaler(), MLPClassifier((6, 5), max_iter=300, random_state=0))),
    (
        "iris",
        lambda: make_pipeline(
            MinMaxScaler(), StandardScaler(), MLPClassifier((7,), activation="tanh", max_iter=300, random_state=0)
        ),
    ),
    (
        "diabetes",
        lambda: make_pipeline(
            RobustScaler(), MLPRegressor(hidden_layer_sizes=(5,), activation="logistic", max_iter=300, random_state=0)
        ),
    ),
    ("iris", lambda: make_pipeline(MaxAbsScaler(), LogisticRegression(max_iter=500))),
    ("binary", lambda: LogisticRegression(max_iter=500)),
    ("diabetes", lambda: make_pipeline(StandardScaler(), Ridge(alpha=0.5))),
    (
        "binary",
        lambda: make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), MLPClassifier((5,), max_iter=300, random_state=0)
        ),
    ),
]


@pytest.mark.parametrize(("data", "build"), CASES)
def test_the_view_predicts_what_the_model_predicts(request, data, build) -> None:
    frame = request.getfixturevalue(data)
    X, y = frame.drop(columns="target"), frame["target"]
    model = SklearnModel(_fit(build(), X, y))
    view, description = torch_view(model, feature_names=tuple(X.columns))
    assert view.input_columns == tuple(X.columns) and view.classes == model.classes
    np.testing.assert_allclose(view.predict(X), model.predict(X), rtol=1e-9, atol=1e-10)
    check_view(model, view, X)  # does not raise
    assert type(model.final_estimator).__name__ in description


def test_ig_of_a_scaled_logistic_regression_is_its_closed_form(binary) -> None:
    X, y = binary.drop(columns="target"), binary["target"]
    pipe = _fit(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), X, y)
    rows = [0, 60, 120]
    result = run_ig(_inputs(pipe, binary, "target"), ctx=CTX, rows=rows, baseline="mean", dtype="float64", klass=1)
    beta = pipe[-1].coef_[0] / pipe[0].scale_  # d logit / d raw x
    expected = beta * (X.iloc[rows].to_numpy() - X.mean().to_numpy())
    np.testing.assert_allclose(result.values, expected, rtol=1e-10, atol=1e-12)
    assert result.provenance.parameters["differentiable_view"] == "LogisticRegression (linear logits)"
    logit = pipe.decision_function(X.iloc[rows])
    np.testing.assert_allclose(result.predictions, logit, rtol=1e-10)


def test_saliency_of_a_linear_regression_is_the_absolute_coefficients(diabetes) -> None:
    X, y = diabetes.drop(columns="target"), diabetes["target"]
    lr = _fit(LinearRegression(), X, y)
    result = run_saliency(_inputs(lr, diabetes, "target"), ctx=CTX, rows=[1, 2], dtype="float64")
    np.testing.assert_allclose(result.values, np.abs(np.tile(lr.coef_, (2, 1))), rtol=1e-12)


def test_ig_of_a_tanh_mlp_is_complete(iris) -> None:
    X, y = iris.drop(columns="target"), iris["target"]
    pipe = _fit(
        make_pipeline(StandardScaler(), MLPClassifier((7,), activation="tanh", max_iter=300, random_state=0)), X, y
    )
    result = run_ig(
        _inputs(pipe, iris, "target"),
        ctx=CTX,
        rows=list(range(0, 150, 10)),
        baseline="median",
        klass=2,
        dtype="float64",
        n_steps=32,
    )
    assert result.summary["max_completeness_error"] < 1e-9
    assert np.abs(result.values).max() > 0.01


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (
            lambda: GradientBoostingClassifier(n_estimators=5),
            "GradientBoostingClassifier is not a model whose gradient",
        ),
        (
            lambda: make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()),
            "its step OneHotEncoder is not a per-column affine scaler",
        ),
        (
            lambda: MLPRegressor(hidden_layer_sizes=(3,), loss="poisson", max_iter=50, random_state=0),
            "it predicts more than one value",
        ),
        (lambda: make_pipeline(MinMaxScaler(clip=True), LogisticRegression()), "clips"),
        (
            lambda: make_pipeline(SimpleImputer(add_indicator=True), LogisticRegression()),
            "its step SimpleImputer is not a per-column affine scaler",
        ),
    ],
)
def test_models_without_an_exact_view_are_refused_with_the_reason(iris, diabetes, build, reason) -> None:
    regression = "poisson" in repr(build())
    frame = diabetes.copy() if regression else iris
    if regression:
        frame["target"] = frame["target"].abs()
    X, y = frame.drop(columns="target"), frame["target"]
    estimator = _fit(build(), X, y)
    with pytest.raises(AnalysisError) as err:
        run_ig(_inputs(estimator, frame, "target"), ctx=CTX, rows=[0])
    message = str(err.value)
    assert message.startswith("Gradient methods need a differentiable model") and reason in message
    assert message.count(". ") == 0 and message.endswith("; SHAP and LIME explain any model.")


def test_a_view_that_disagrees_with_the_model_is_not_used(binary) -> None:
    X, y = binary.drop(columns="target"), binary["target"]
    model = SklearnModel(_fit(LogisticRegression(max_iter=500), X, y))
    view, _ = torch_view(model, feature_names=tuple(X.columns))
    with torch.no_grad():
        view.module[0].bias.add_(0.01)  # what a wrong conversion would look like
    with pytest.raises(AnalysisError, match="differs from the model's own predictions"):
        check_view(model, view, X)


def test_only_scikit_learn_models_get_a_view(binary) -> None:
    class Other:
        format = "onnx"

    with pytest.raises(ViewRefused, match="it is a onnx model"):
        torch_view(Other(), feature_names=("a",))  # type: ignore[arg-type]


def test_a_row_with_a_missing_value_is_refused_before_the_imputer_could_matter(binary) -> None:
    frame = binary.copy()
    X, y = frame.drop(columns="target"), frame["target"]
    pipe = _fit(make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)), X, y)
    frame.iloc[4, 1] = np.nan
    with pytest.raises(AnalysisError, match="Row 4 of the data has a missing or infinite value in column"):
        run_ig(_inputs(pipe, frame, "target"), ctx=CTX, rows=[4])
    result = run_ig(_inputs(pipe, frame, "target"), ctx=CTX, rows=[3, 4])
    assert result.rows.tolist() == [3]
    assert result.warnings[0] == (
        "1 of the 2 rows asked for was left out because it has a missing or infinite value, which gradients cannot "
        "pass through (row 4)."
    )
