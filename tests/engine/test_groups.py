"""Group metrics agree with fairlearn, name the groups behind each gap, and never drop a group."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import AnalysisError
from engine.explain import groups
from engine.explain.groups import MISSING_GROUP, GroupMetricsResult
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.base import Model, Task
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


def make_inputs(
    frame: pd.DataFrame,
    outputs: np.ndarray,
    *,
    task: Task,
    classes: tuple | None = None,
    sensitive: tuple[str, ...] = ("s",),
    target: str | None = "y",
) -> AuditInputs:
    frame = frame.assign(row=np.arange(len(frame)))
    roles = Roles(target=target, features=("row",), sensitive=sensitive)
    return AuditInputs(frame=frame, roles=roles, model=FixedModel(outputs, task=task, classes=classes))


def run(inputs: AuditInputs, **params) -> GroupMetricsResult:
    return groups.run(inputs, ctx=JobContext(seed=0), **params)


def binary_task(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups with different base rates and a model that is better on some than others."""
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array(["north", "south", "west"]), size=n, p=[0.5, 0.3, 0.2])
    shift = np.select([s == "north", s == "south"], [0.6, -0.4], 0.0)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * signal + shift)))).astype(int)
    p1 = 1 / (1 + np.exp(-(signal + 0.3 * shift + rng.normal(scale=0.8, size=n))))
    return pd.DataFrame({"s": s, "y": y}), np.column_stack([1 - p1, p1])


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_group_metrics_match_fairlearn_on_a_binary_task(threshold: float) -> None:
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score, precision_score

    frame, proba = binary_task(600, seed=11)
    result = run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1)), threshold=threshold)

    y, s = frame["y"].to_numpy(), frame["s"].to_numpy()
    y_pred = (proba[:, 1] > threshold).astype(int)
    frame_fl = fl.MetricFrame(
        metrics={
            "positive_rate": fl.selection_rate,
            "accuracy": accuracy_score,
            "tpr": fl.true_positive_rate,
            "fpr": fl.false_positive_rate,
            "ppv": precision_score,
            "base_rate": fl.mean_prediction,
        },
        y_true=y,
        y_pred=y_pred,
        sensitive_features=s,
    )
    by_group = frame_fl.by_group
    rows = {r.group: r for r in result.rows("s")}
    assert list(rows) == ["north", "south", "west"]
    for label, expected in by_group.iterrows():
        row = rows[label]
        for metric in ("positive_rate", "accuracy", "tpr", "fpr", "ppv"):
            assert getattr(row, metric) == pytest.approx(expected[metric], abs=1e-12), (label, metric)
        assert row.base_rate == pytest.approx(y[s == label].mean(), abs=1e-12)
        assert row.mean_probability == pytest.approx(proba[s == label, 1].mean(), abs=1e-12)
        assert row.n == int((s == label).sum()) and row.share == pytest.approx(row.n / len(s), abs=1e-15)

    dp = result.difference("s", "demographic_parity")
    assert dp.difference == pytest.approx(fl.demographic_parity_difference(y, y_pred, sensitive_features=s), abs=1e-12)
    assert dp.ratio == pytest.approx(fl.demographic_parity_ratio(y, y_pred, sensitive_features=s), abs=1e-12)
    selection = by_group["positive_rate"]
    assert (dp.low_group, dp.high_group) == (selection.idxmin(), selection.idxmax())

    eo = result.difference("s", "equalized_odds")
    assert eo.difference == pytest.approx(fl.equalized_odds_difference(y, y_pred, sensitive_features=s), abs=1e-12)
    gap = by_group[eo.metric]
    assert eo.difference == pytest.approx(gap.max() - gap.min(), abs=1e-12)
    assert (eo.low_group, eo.high_group) == (gap.idxmin(), gap.idxmax())

    acc = result.difference("s", "accuracy")
    assert acc.difference == pytest.approx(frame_fl.difference()["accuracy"], abs=1e-12)
    assert acc.low_group == by_group["accuracy"].idxmin()


def test_multiclass_counts_the_chosen_class_against_the_rest() -> None:
    fl = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(5)
    n = 400
    s = rng.choice(np.array(["a", "b"]), size=n)
    y = rng.choice(np.array(["low", "mid", "high"]), size=n)
    proba = rng.dirichlet(np.ones(3), size=n)
    classes = ("high", "low", "mid")
    result = run(
        make_inputs(pd.DataFrame({"s": s, "y": y}), proba, task=Task.CLASSIFICATION, classes=classes), klass="mid"
    )
    assert result.explained_class == "mid" and result.output_name == "P(mid)"
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    y_bin, pred_bin = (y == "mid").astype(int), (predicted == "mid").astype(int)
    expected = fl.MetricFrame(
        metrics={"tpr": fl.true_positive_rate, "fpr": fl.false_positive_rate, "positive_rate": fl.selection_rate},
        y_true=y_bin,
        y_pred=pred_bin,
        sensitive_features=s,
    ).by_group
    for row in result.rows("s"):
        for metric in ("tpr", "fpr", "positive_rate"):
            assert getattr(row, metric) == pytest.approx(expected.loc[row.group, metric], abs=1e-12)
        # Accuracy is over all classes, not one-vs-rest.
        assert row.accuracy == pytest.approx(np.mean(predicted[s == row.group] == y[s == row.group]), abs=1e-12)


def test_demo_model_selects_group_b_less_often_than_a() -> None:
    from engine.demo import FEATURES, make_credit_frame, train_credit_model
    from engine.models.sklearn_adapter import SklearnModel

    frame = make_credit_frame(1500)
    model = SklearnModel(train_credit_model(frame))
    inputs = AuditInputs(
        frame=frame, roles=Roles(target="approved", features=FEATURES, sensitive=("group",)), model=model
    )
    result = run(inputs)
    rows = {r.group: r for r in result.rows("group")}
    assert set(rows) == {"A", "B"}
    # The labels carry a penalty for group B, and the model learned it through the proxy.
    assert rows["B"].base_rate < rows["A"].base_rate
    assert rows["B"].positive_rate < rows["A"].positive_rate
    dp = result.difference("group", "demographic_parity")
    assert (dp.low_group, dp.high_group) == ("B", "A")
    assert dp.difference == pytest.approx(rows["A"].positive_rate - rows["B"].positive_rate, abs=1e-15)
    assert dp.ratio == pytest.approx(rows["B"].positive_rate / rows["A"].positive_rate, abs=1e-15)
    assert "group" not in model.input_columns  # a sensitive attribute need not be a model input
    assert result.warnings == ()


def test_regression_compares_mean_predictions_and_errors() -> None:
    rng = np.random.default_rng(2)
    n = 300
    s = rng.choice(np.array(["x", "y", "z"]), size=n)
    target = rng.normal(size=n) + (s == "z") * 2.0
    pred = target + rng.normal(scale=np.where(s == "x", 0.2, 1.0))
    frame = pd.DataFrame({"s": s, "t": target})
    result = run(make_inputs(frame, pred, task=Task.REGRESSION, target="t"))
    expected = pd.DataFrame({"s": s, "t": target, "p": pred, "e": np.abs(target - pred)}).groupby("s").mean()
    for row in result.rows("s"):
        assert row.mean_prediction == pytest.approx(expected.loc[row.group, "p"], abs=1e-12)
        assert row.mean_target == pytest.approx(expected.loc[row.group, "t"], abs=1e-12)
        assert row.mae == pytest.approx(expected.loc[row.group, "e"], abs=1e-12)
        assert row.selection_rate == row.mean_prediction
        assert math.isnan(row.positive_rate) and math.isnan(row.accuracy) and math.isnan(row.tpr)
    assert [d.measure for d in result.differences] == ["demographic_parity", "mae"]
    dp = result.difference("s", "demographic_parity")
    assert dp.metric == "mean_prediction"
    assert dp.difference == pytest.approx(expected["p"].max() - expected["p"].min(), abs=1e-12)
    mae = result.difference("s", "mae")
    assert (mae.low_group, mae.high_group) == (expected["e"].idxmin(), expected["e"].idxmax())
    assert mae.low_group == "x"  # its predictions carry the least noise by construction
    assert result.explained_class is None and result.output_name == "prediction"
    with pytest.raises(AnalysisError, match="regressor"):
        run(make_inputs(frame, pred, task=Task.REGRESSION, target="t"), klass=1)


def test_missing_sensitive_values_form_their_own_group_last() -> None:
    s = pd.array(["b", None, "a", "b", None, "a", "a", "b"], dtype="str")
    y = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    p1 = np.array([0.9, 0.2, 0.8, 0.4, 0.7, 0.1, 0.6, 0.3])
    frame = pd.DataFrame({"s": s, "y": y})
    result = run(
        make_inputs(frame, np.column_stack([1 - p1, p1]), task=Task.CLASSIFICATION, classes=(0, 1)), min_group_size=0
    )
    rows = result.rows("s")
    assert [r.group for r in rows] == ["a", "b", MISSING_GROUP]
    missing = rows[-1]
    assert missing.n == 2 and missing.share == pytest.approx(0.25)
    assert missing.positive_rate == pytest.approx(0.5) and missing.base_rate == pytest.approx(0.5)
    assert missing.accuracy == 1.0  # row 1: P=0.2 and label 0; row 4: P=0.7 and label 1
    assert sum(r.n for r in rows) == len(frame)


def test_small_groups_are_warned_about_and_kept() -> None:
    frame, proba = binary_task(200, seed=3)
    frame.loc[:6, "s"] = "east"  # 7 rows
    result = run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1)), min_group_size=20)
    rows = {r.group: r for r in result.rows("s")}
    assert rows["east"].n == 7
    assert result.warnings == ("In 's' 1 group has fewer than 20 rows ('east' (7 rows)); its rates are uncertain.",)
    assert run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1)), min_group_size=7).warnings == ()


def test_numeric_sensitive_column_with_many_values_is_cut_into_quartiles() -> None:
    rng = np.random.default_rng(8)
    n = 400
    age = rng.integers(18, 80, size=n)
    frame = pd.DataFrame({"age": age, "few": rng.integers(0, 3, size=n).astype(float), "y": rng.integers(0, 2, size=n)})
    p1 = rng.random(n)
    result = run(
        make_inputs(
            frame, np.column_stack([1 - p1, p1]), task=Task.CLASSIFICATION, classes=(0, 1), sensitive=("age", "few")
        )
    )
    assert result.binned == ("age",)
    quartiles = pd.qcut(age, 4)
    expected_counts = pd.Series(quartiles).value_counts(sort=False).to_numpy()
    rows = result.rows("age")
    assert [r.n for r in rows] == expected_counts.tolist()
    edges = np.quantile(age, [0, 0.25, 0.5, 0.75, 1])
    assert rows[0].group == f"[{edges[0]:g}, {edges[1]:g}]"
    assert rows[-1].group == f"({edges[3]:g}, {edges[4]:g}]"
    # Few distinct values stay one group per value, labelled without a spurious ".0".
    assert [r.group for r in result.rows("few")] == ["0", "1", "2"]


def test_unlabelled_rows_are_left_out_and_no_target_compares_predictions_only() -> None:
    frame, proba = binary_task(120, seed=4)
    frame = frame.astype({"y": float})
    frame.loc[[0, 5, 9], "y"] = np.nan
    result = run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1)), min_group_size=0)
    assert (result.n_rows, result.n_dropped) == (117, 3)
    assert result.warnings == ("3 of 120 rows in the data have no value in the target column 'y' and were left out.",)
    assert sum(r.n for r in result.rows("s")) == 117

    unlabelled = run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1), target=None), min_group_size=0)
    assert unlabelled.n_rows == 120
    assert [d.measure for d in unlabelled.differences] == ["demographic_parity"]
    assert all(math.isnan(r.accuracy) and math.isnan(r.base_rate) for r in unlabelled.groups)
    s = frame["s"].to_numpy()
    for row in unlabelled.rows("s"):
        assert row.positive_rate == pytest.approx(np.mean(proba[s == row.group, 1] > 0.5), abs=1e-12)


def test_result_survives_a_json_round_trip() -> None:
    frame, proba = binary_task(100, seed=9)
    frame.loc[:3, "s"] = None
    original = run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1)), min_group_size=30)
    data = original.to_dict()
    text = json.dumps(data, allow_nan=False)
    restored = result_from_dict(json.loads(text))
    assert isinstance(restored, GroupMetricsResult)
    assert restored.to_dict() == data
    for a, b in zip(restored.groups, original.groups, strict=True):
        for name, value in vars(b).items():
            other = getattr(a, name)
            assert other == value or (math.isnan(other) and math.isnan(value)), name
    assert restored.rows("s")[-1].group == MISSING_GROUP
    assert restored.difference("s", "demographic_parity") == original.difference("s", "demographic_parity")
    assert restored.warnings == original.warnings and original.warnings
    assert restored.explained_class == 1 and restored.provenance.parameters["min_group_size"] == 30


def test_report_reads_the_group_records() -> None:
    pytest.importorskip("reportlab")
    from engine.report import ReportInput
    from engine.report.facts import Facts

    frame, proba = binary_task(150, seed=1)
    result = run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1)))
    provenance = {"finished_at": "2026-01-01T00:00:00+00:00"}
    document = json.loads(json.dumps({"provenance": provenance, "results": {"groups": result.to_dict()}}))
    assert all(isinstance(r["n"], int) for r in document["results"]["groups"]["groups"])
    records = Facts.gather(ReportInput.from_document(document), 480.0).group_figures()
    assert [(r.attribute, r.group, r.n) for r in records] == [(r.attribute, r.group, r.n) for r in result.groups]
    assert [r.positive_rate for r in records] == [r.positive_rate for r in result.groups]
    assert [r.accuracy for r in records] == [r.accuracy for r in result.groups]


def test_no_sensitive_column_is_refused_with_the_exact_sentence() -> None:
    frame, proba = binary_task(50, seed=0)
    inputs = make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1), sensitive=())
    with pytest.raises(AnalysisError) as info:
        run(inputs)
    assert str(info.value) == "Choose at least one sensitive attribute column for group metrics."
    with pytest.raises(AnalysisError) as info:
        run(inputs, sensitive=[])
    assert str(info.value) == "Choose at least one sensitive attribute column for group metrics."


def test_unknown_sensitive_column_names_the_data_file() -> None:
    frame, proba = binary_task(50, seed=0)
    frame = frame.assign(row=np.arange(50))
    dataset = Dataset(
        frame=frame,
        path=Path("/data/loans.csv"),
        sha256="0" * 64,
        format="csv",
        options=ReadOptions(),
        schema=Schema(
            (
                ColumnInfo("s", ColumnKind.CATEGORICAL, "str", 0, 3),
                ColumnInfo("y", ColumnKind.NUMERIC, "int64", 0, 2),
                ColumnInfo("row", ColumnKind.NUMERIC, "int64", 0, 50),
            )
        ),
    )
    model = FixedModel(proba, task=Task.CLASSIFICATION, classes=(0, 1))
    inputs = AuditInputs.from_dataset(dataset, Roles(target="y", features=("row",), sensitive=("s",)), model)
    with pytest.raises(AnalysisError) as info:
        run(inputs, sensitive=("s", "gender"))
    assert str(info.value) == "The data file loans.csv has no column 'gender' to group rows by."


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threshold": 1.5}, "The decision threshold must be a probability between 0 and 1, not 1.5."),
        ({"min_group_size": -1}, "The minimum group size must be a non-negative whole number of rows, not -1."),
    ],
)
def test_bad_parameters_are_refused(params: dict, message: str) -> None:
    frame, proba = binary_task(50, seed=0)
    with pytest.raises(AnalysisError) as info:
        run(make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1)), **params)
    assert str(info.value) == message


def test_inputs_are_left_untouched_and_defaults_are_documented() -> None:
    frame, proba = binary_task(80, seed=6)
    inputs = make_inputs(frame, proba, task=Task.CLASSIFICATION, classes=(0, 1))
    before = inputs.frame.copy()
    run(inputs)
    pd.testing.assert_frame_equal(inputs.frame, before)
    assert groups.METHOD.name == "groups"
    assert groups.METHOD.defaults == {"sensitive": None, "klass": None, "threshold": 0.5, "min_group_size": 20}
