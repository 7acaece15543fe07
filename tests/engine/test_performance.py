"""Performance metrics agree with scikit-learn, and undefined metrics never crash."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import label_binarize

from engine.errors import AnalysisError
from engine.explain import performance
from engine.explain.performance import PerformanceResult
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.base import Model, Task
from engine.models.sklearn_adapter import SklearnModel
from engine.registry import METHODS, get_method
from engine.results import result_from_dict
from engine.schema import ColumnInfo, ColumnKind, Dataset, ReadOptions, Roles, Schema


class FixedModel(Model):
    """A model whose outputs are given row by row (column ``row`` indexes them)."""

    def __init__(self, outputs: np.ndarray, *, task: Task, classes: tuple | None = None) -> None:
        self.outputs = np.asarray(outputs, dtype=float)
        self.task = task
        self.classes = classes
        self.input_columns = ("row",)
        self.format = "sklearn"

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        return self.outputs[X["row"].to_numpy(dtype=np.int64)]


def fixed_inputs(y: list | np.ndarray, outputs: np.ndarray, *, task: Task, classes: tuple | None = None) -> AuditInputs:
    frame = pd.DataFrame({"row": np.arange(len(y)), "y": y})
    return AuditInputs(
        frame=frame, roles=Roles(target="y", features=("row",)), model=FixedModel(outputs, task=task, classes=classes)
    )


def run(inputs: AuditInputs, **params) -> PerformanceResult:
    return performance.run(inputs, ctx=JobContext(seed=0), **params)


def classification_data(n: int, k: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    logits = np.column_stack([X["a"] * (i - 1) + X["b"] * (0.5 * i) for i in range(k)])
    logits += rng.gumbel(size=logits.shape)
    return X, logits.argmax(axis=1)


@pytest.fixture(scope="module")
def binary_case() -> tuple[AuditInputs, np.ndarray, np.ndarray]:
    X, y = classification_data(400, 2, seed=1)
    est = LogisticRegression().fit(X, y)
    frame = X.assign(target=y)
    inputs = AuditInputs(frame=frame, roles=Roles(target="target", features=("a", "b", "c")), model=SklearnModel(est))
    return inputs, y, est.predict_proba(X)


def test_binary_metrics_match_sklearn(binary_case) -> None:
    inputs, y, proba = binary_case
    result = run(inputs)
    p1 = proba[:, 1]
    expected = {
        "accuracy": skm.accuracy_score(y, proba.argmax(1)),
        "balanced_accuracy": skm.balanced_accuracy_score(y, proba.argmax(1)),
        "roc_auc": skm.roc_auc_score(y, p1),
        "pr_auc": skm.average_precision_score(y, p1),
        "log_loss": skm.log_loss(y, proba),
        "brier": skm.brier_score_loss(y, p1),
    }
    assert list(result.metrics) == list(expected)
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert result.task == "classification"
    assert result.class_labels == (0, 1)
    assert result.n_rows == 400 and result.n_dropped == 0
    assert result.warnings == ()
    np.testing.assert_array_equal(result.confusion, skm.confusion_matrix(y, proba.argmax(1)))


def test_binary_roc_curve_and_calibration_match_sklearn(binary_case) -> None:
    inputs, y, proba = binary_case
    result = run(inputs, n_bins=8)
    (curve,) = result.roc
    fpr, tpr, thresholds = skm.roc_curve(y, proba[:, 1])
    assert curve.label == 1
    np.testing.assert_allclose(curve.fpr, fpr)
    np.testing.assert_allclose(curve.tpr, tpr)
    np.testing.assert_allclose(curve.thresholds, thresholds)
    assert curve.auc == pytest.approx(result.metrics["roc_auc"], rel=1e-12)

    cal = result.calibration
    assert cal.predicted == "P(1)"
    np.testing.assert_allclose(cal.edges, np.linspace(0, 1, 9))
    assert cal.count.sum() == len(y)
    prob_true, prob_pred = calibration_curve(y, proba[:, 1], n_bins=8, strategy="uniform")
    filled = cal.count > 0
    np.testing.assert_allclose(cal.observed[filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose(cal.mean_predicted[filled], prob_pred, rtol=1e-12)
    assert np.isnan(cal.observed[~filled]).all() and np.isnan(cal.mean_predicted[~filled]).all()


def test_multiclass_metrics_match_sklearn_with_string_labels() -> None:
    X, codes = classification_data(500, 3, seed=2)
    names = np.array(["mid", "low", "high"])  # sklearn sorts them: high, low, mid
    y = names[codes]
    est = LogisticRegression().fit(X, y)
    inputs = AuditInputs(
        frame=X.assign(grade=y), roles=Roles(target="grade", features=("a", "b", "c")), model=SklearnModel(est)
    )
    result = run(inputs)
    proba = est.predict_proba(X)
    pred = est.classes_[proba.argmax(1)]
    onehot = label_binarize(y, classes=est.classes_)
    assert result.class_labels == ("high", "low", "mid")
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "pr_auc": skm.average_precision_score(onehot, proba, average="macro"),
        "log_loss": skm.log_loss(y, proba),
        # The documented multiclass Brier score: mean over rows of the summed squared error.
        "brier": np.mean(np.sum((proba - onehot) ** 2, axis=1)),
    }
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-12), name
    # Rows are true classes, columns predicted, both in the model's class order.
    crosstab = pd.crosstab(
        pd.Categorical(y, categories=est.classes_), pd.Categorical(pred, categories=est.classes_), dropna=False
    )
    np.testing.assert_array_equal(result.confusion, crosstab.to_numpy())
    # Top-label calibration: confidence = max probability, observed = share of correct predictions.
    cal = result.calibration
    assert cal.predicted == "top-label confidence"
    confidence = proba.max(1)
    prob_true, prob_pred = calibration_curve(pred == y, confidence, n_bins=10)
    filled = cal.count > 0
    np.testing.assert_allclose(cal.observed[filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose(cal.mean_predicted[filled], prob_pred, rtol=1e-12)
    assert [c.label for c in result.roc] == ["high", "low", "mid"]
    for i, curve in enumerate(result.roc):
        assert curve.auc == pytest.approx(skm.roc_auc_score(y == est.classes_[i], proba[:, i]), rel=1e-12)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = 3 * X["a"] - X["b"] + rng.normal(size=300)
    est = RandomForestRegressor(n_estimators=20, random_state=0).fit(X.iloc[:200], y.iloc[:200])
    inputs = AuditInputs(frame=X.assign(y=y), roles=Roles(target="y", features=("a", "b")), model=SklearnModel(est))
    result = run(inputs)
    pred = est.predict(X)
    assert dict(result.metrics) == pytest.approx(
        {
            "r2": skm.r2_score(y, pred),
            "mae": skm.mean_absolute_error(y, pred),
            "rmse": skm.root_mean_squared_error(y, pred),
        },
        rel=1e-12,
    )
    assert result.task == "regression"
    assert result.confusion is None and result.calibration is None and result.roc == ()
    assert result.class_labels == ()


def test_rows_with_missing_target_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(4)
    proba1 = rng.uniform(size=50)
    y = (rng.uniform(size=50) < proba1).astype(float)
    y_missing = y.copy()
    y_missing[[3, 17, 40]] = np.nan
    outputs = np.column_stack([1 - proba1, proba1])
    frame = pd.DataFrame({"row": np.arange(50), "y": y_missing})
    dataset = Dataset(
        frame=frame,
        path=Path("/data/loans.csv"),
        sha256="0" * 64,
        format="csv",
        options=ReadOptions(),
        schema=Schema(
            (
                ColumnInfo("row", ColumnKind.NUMERIC, "int64", 0, 50),
                ColumnInfo("y", ColumnKind.NUMERIC, "float64", 3, 2),
            )
        ),
    )
    model = FixedModel(outputs, task=Task.CLASSIFICATION, classes=(0, 1))
    result = run(AuditInputs.from_dataset(dataset, Roles(target="y", features=("row",)), model))
    keep = ~np.isnan(y_missing)
    assert result.n_rows == 47 and result.n_dropped == 3
    assert result.warnings == ("3 of 50 rows in loans.csv have no value in the target column 'y' and were left out.",)
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y[keep], proba1[keep]), rel=1e-12)
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(y[keep], outputs[keep]), rel=1e-12)
    assert result.provenance.data_sha256 == "0" * 64 and result.provenance.data_file == "loans.csv"
    # The input frame is left exactly as it was.
    assert frame["y"].isna().sum() == 3 and len(frame) == 50


def test_single_class_gives_nan_auc_with_a_warning_not_a_crash() -> None:
    outputs = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    result = run(fixed_inputs([1, 1, 1], outputs, task=Task.CLASSIFICATION, classes=(0, 1)))
    assert math.isnan(result.metrics["roc_auc"])
    assert result.metrics["pr_auc"] == pytest.approx(1.0)  # all rows positive: every threshold is exact
    assert result.metrics["accuracy"] == pytest.approx(2 / 3)
    assert result.metrics["brier"] == pytest.approx(skm.brier_score_loss([1, 1, 1], outputs[:, 1]))
    assert result.warnings == ("ROC AUC is not defined because the evaluated rows hold only class 1.",)
    assert result.roc == ()

    negatives = run(fixed_inputs([0, 0, 0], outputs, task=Task.CLASSIFICATION, classes=(0, 1)))
    assert math.isnan(negatives.metrics["roc_auc"]) and math.isnan(negatives.metrics["pr_auc"])
    assert negatives.warnings == (
        "ROC AUC is not defined because the evaluated rows hold only class 0.",
        "PR AUC (average precision) is not defined because no evaluated row is of the positive class 1.",
    )


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_multiclass_with_an_absent_class_reports_nan_auc() -> None:
    outputs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.4, 0.4, 0.2]])
    result = run(fixed_inputs(["a", "b", "a", "b"], outputs, task=Task.CLASSIFICATION, classes=("a", "b", "c")))
    assert math.isnan(result.metrics["roc_auc"]) and math.isnan(result.metrics["pr_auc"])
    assert result.warnings == (
        "The evaluated rows hold no example of class 'c', so ROC AUC and PR AUC (one-vs-rest macro averages) "
        "are not defined and balanced accuracy averages the other classes.",
    )
    # Balanced accuracy averages recall over the classes present, as sklearn does.
    pred = np.array(["a", "b", "c", "a"])
    assert result.metrics["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(["a", "b", "a", "b"], pred))
    assert result.confusion.shape == (3, 3) and result.confusion[2].sum() == 0
    assert [c.label for c in result.roc] == ["a", "b"]


def test_constant_regression_target_gives_nan_r2() -> None:
    result = run(fixed_inputs([2.0, 2.0, 2.0], np.array([1.0, 2.0, 4.0]), task=Task.REGRESSION))
    assert math.isnan(result.metrics["r2"])
    assert result.metrics["mae"] == pytest.approx(1.0)
    assert result.metrics["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert result.warnings == ("R² is not defined because the target is constant on the evaluated rows.",)


def test_unnormalised_probabilities_are_rescaled_with_a_warning() -> None:
    raw = np.array([[0.2, 0.6], [0.9, 0.3], [0.1, 0.1], [0.5, 1.0]])
    result = run(fixed_inputs([1, 0, 1, 1], raw, task=Task.CLASSIFICATION, classes=(0, 1)))
    scaled = raw / raw.sum(1, keepdims=True)
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss([1, 0, 1, 1], scaled), rel=1e-12)
    assert result.warnings == (
        "The probabilities of model FixedModel do not sum to one on every row; they were rescaled before scoring.",
    )


def test_result_round_trips_through_json_with_nan_and_infinite_threshold() -> None:
    outputs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.4, 0.4, 0.2]])
    result = run(fixed_inputs(["a", "b", "a", "b"], outputs, task=Task.CLASSIFICATION, classes=("a", "b", "c")))
    back = result_from_dict(result.to_dict())
    assert isinstance(back, PerformanceResult)
    assert back.metrics.keys() == result.metrics.keys()
    for name, value in result.metrics.items():
        assert back.metrics[name] == pytest.approx(value, nan_ok=True)
    np.testing.assert_array_equal(back.confusion, result.confusion)
    np.testing.assert_array_equal(back.calibration.count, result.calibration.count)
    np.testing.assert_array_equal(back.calibration.observed, result.calibration.observed)  # NaN where empty
    assert back.roc[0].thresholds[0] == np.inf
    np.testing.assert_array_equal(back.roc[1].thresholds, result.roc[1].thresholds)
    assert back.class_labels == ("a", "b", "c") and back.warnings == result.warnings


def test_result_arrays_are_read_only(binary_case) -> None:
    result = run(binary_case[0])
    for arr in (result.confusion, result.calibration.count, result.calibration.observed, result.roc[0].fpr):
        with pytest.raises(ValueError):
            arr[0] = 0


@pytest.mark.parametrize("n_bins", [0, -3, 2.5, True])
def test_invalid_bin_count_is_refused(binary_case, n_bins) -> None:
    with pytest.raises(AnalysisError) as info:
        run(binary_case[0], n_bins=n_bins)
    assert str(info.value) == f"The number of calibration bins must be a positive whole number, not {n_bins!r}."


def test_missing_target_role_is_refused(binary_case) -> None:
    inputs = binary_case[0]
    no_target = AuditInputs(frame=inputs.frame, roles=Roles(target=None, features=("a", "b", "c")), model=inputs.model)
    with pytest.raises(AnalysisError, match="needs a target column"):
        run(no_target)


def test_registry_lists_performance_and_refuses_unknown_names() -> None:
    assert get_method("performance") is performance.METHOD
    assert METHODS["performance"].defaults == {"n_bins": 10}
    with pytest.raises(AnalysisError) as info:
        get_method("accuracy")
    assert {"performance", "permutation"} <= set(METHODS)
    assert str(info.value) == f"Unknown analysis 'accuracy'; choose one of {', '.join(sorted(METHODS))}."
