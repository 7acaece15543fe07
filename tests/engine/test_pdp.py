"""Partial dependence and ICE: PDP is the mean of ICE, closed forms, parity with scikit-learn, seeds, cancel."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import partial_dependence
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from engine.errors import AnalysisError, Cancelled
from engine.explain import pdp
from engine.explain.pdp import PartialDependenceResult
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.base import Model, Task
from engine.models.sklearn_adapter import SklearnModel
from engine.results import result_from_dict
from engine.schema import Roles


class AdditiveModel(Model):
    """f(x) = sin(2 x0) + x1**2 + 0 * x2: a regressor whose parts are known exactly."""

    task = Task.REGRESSION
    classes = None
    input_columns = ("x0", "x1", "x2")
    format = "sklearn"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(X))
        return np.sin(2.0 * X["x0"].to_numpy()) + X["x1"].to_numpy() ** 2


def g(v: np.ndarray) -> np.ndarray:
    return np.sin(2.0 * v)


def h(v: np.ndarray) -> np.ndarray:
    return v**2


@pytest.fixture(scope="module")
def additive_inputs() -> AuditInputs:
    rng = np.random.default_rng(1)
    n = 120
    frame = pd.DataFrame({"x0": rng.uniform(-2, 2, n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    return AuditInputs(frame=frame, roles=Roles(target=None, features=("x0", "x1", "x2")), model=AdditiveModel())


@pytest.fixture(scope="module")
def pipeline_case() -> tuple[pd.DataFrame, Pipeline]:
    rng = np.random.default_rng(5)
    n = 160
    X = pd.DataFrame(
        {
            "income": rng.normal(50_000, 12_000, n).round(-2),
            "colour": pd.Series(rng.choice(np.array(["red", "green", "blue"]), size=n, p=[0.5, 0.3, 0.2]), dtype="str"),
            "late": rng.poisson(1.0, n),
        }
    )
    logit = (X["income"] - 50_000) / 10_000 + np.where(X["colour"] == "red", 1.0, -0.5) - 0.6 * X["late"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("cat", OneHotEncoder(sparse_output=False), ["colour"])], remainder="passthrough"),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, y)
    return X, pipe


def pipeline_inputs(case) -> AuditInputs:
    X, pipe = case
    return AuditInputs(frame=X, roles=Roles(target=None, features=tuple(X.columns)), model=SklearnModel(pipe))


def test_pdp_is_the_mean_of_the_ice_curves_over_the_sampled_rows(pipeline_case) -> None:
    result = pdp.run(pipeline_inputs(pipeline_case), ctx=JobContext(seed=3), ice_rows=40)
    assert result.n_rows == 40 and result.rows.shape == (40,)
    assert np.all(np.diff(result.rows) > 0) and result.rows.max() < 160
    for dep in result.features:
        assert dep.ice.shape == (40, len(dep.grid))
        np.testing.assert_array_equal(dep.pdp, dep.ice.mean(axis=0))
    assert any("random sample of 40 of the 160 rows" in w for w in result.warnings)


def test_additive_model_pdp_is_each_component_up_to_a_constant(additive_inputs) -> None:
    result = pdp.run(additive_inputs, ctx=JobContext(), features=["x0", "x1", "x2"], ice_rows=None)
    x0, x1, x2 = (result.feature(n) for n in ("x0", "x1", "x2"))
    for dep, component in ((x0, g), (x1, h)):
        gap = dep.pdp - component(np.asarray(dep.grid))
        np.testing.assert_allclose(gap, gap[0], atol=1e-12)
    # The constant is the mean of the other component over the rows averaged.
    frame = additive_inputs.frame
    np.testing.assert_allclose(x0.pdp - g(np.asarray(x0.grid)), h(frame["x1"].to_numpy()).mean(), atol=1e-12)
    # x2 is unused, so its PDP is flat and every ICE curve is flat.
    np.testing.assert_allclose(x2.pdp, x2.pdp[0], atol=1e-12)
    np.testing.assert_allclose(np.ptp(x2.ice, axis=1), 0.0, atol=1e-12)
    assert result.output_space == "value" and result.output_name == "prediction"


def test_two_way_pdp_of_additive_model_is_the_sum_of_one_way_pdps(additive_inputs) -> None:
    result = pdp.run(
        additive_inputs, ctx=JobContext(), features=["x0", "x1"], pair=("x0", "x1"), ice_rows=60, grid_resolution=7
    )
    pair = result.pair
    assert pair is not None and pair.features == ("x0", "x1")
    a, b = result.feature("x0"), result.feature("x1")
    assert pair.grid_a == a.grid and pair.grid_b == b.grid
    assert pair.values.shape == (len(a.grid), len(b.grid))
    gap = pair.values - (a.pdp[:, None] + b.pdp[None, :])
    np.testing.assert_allclose(gap, gap[0, 0], atol=1e-12)


def test_pdp_matches_sklearn_partial_dependence_on_the_same_rows_and_grid(pipeline_case) -> None:
    X, pipe = pipeline_case
    result = pdp.run(
        pipeline_inputs(pipeline_case),
        ctx=JobContext(seed=9),
        ice_rows=50,
        grid_resolution=8,
        pair=("income", "colour"),
    )
    rows = X.iloc[result.rows]
    income, colour = result.feature("income"), result.feature("colour")
    theirs = partial_dependence(
        pipe, rows, ["income"], custom_values={"income": np.array(income.grid)}, kind="average", method="brute"
    )
    np.testing.assert_allclose(income.pdp, theirs["average"][0], rtol=0, atol=1e-12)
    theirs = partial_dependence(
        pipe,
        rows,
        ["colour"],
        categorical_features=["colour"],
        custom_values={"colour": np.array(colour.grid, dtype=object)},
        kind="average",
        method="brute",
    )
    np.testing.assert_allclose(colour.pdp, theirs["average"][0], rtol=0, atol=1e-12)
    theirs = partial_dependence(
        pipe,
        rows,
        ["income", "colour"],
        categorical_features=["colour"],
        custom_values={"income": np.array(income.grid), "colour": np.array(colour.grid, dtype=object)},
        kind="average",
        method="brute",
    )
    np.testing.assert_allclose(result.pair.values, theirs["average"][0], rtol=0, atol=1e-12)


def test_multiclass_pdp_matches_sklearn_for_the_chosen_class() -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(90, 3)), columns=["a", "b", "c"])
    y = np.digitize(X["a"] + 0.5 * X["b"], [-0.5, 0.5])
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    inputs = AuditInputs(frame=X, roles=Roles(target=None, features=("a", "b", "c")), model=SklearnModel(forest))
    result = pdp.run(inputs, ctx=JobContext(), features="a", klass=2, ice_rows=None, grid_resolution=6)
    dep = result.feature("a")
    theirs = partial_dependence(
        forest, X, ["a"], custom_values={"a": np.array(dep.grid)}, kind="average", method="brute"
    )
    np.testing.assert_allclose(dep.pdp, theirs["average"][2], atol=1e-12)
    assert result.class_index == 2 and result.output_name == "P(2)"


def test_grids_follow_quantiles_distinct_values_and_category_frequency(pipeline_case) -> None:
    X, _ = pipeline_case
    result = pdp.run(
        pipeline_inputs(pipeline_case), ctx=JobContext(), grid_resolution=10, percentiles=(0.1, 0.9), ice_rows=5
    )
    income = X["income"].to_numpy(dtype=float)
    expected = np.unique(np.quantile(income, np.linspace(0.1, 0.9, 10)))
    np.testing.assert_array_equal(result.feature("income").grid, expected)
    # A column with few distinct values uses all of them, whatever the percentiles.
    assert result.feature("late").grid == tuple(float(v) for v in np.unique(X["late"]))
    counts = X["colour"].value_counts()
    assert result.feature("colour").grid == tuple(counts.sort_values(ascending=False, kind="stable").index)
    assert result.feature("colour").kind == "categorical" and result.feature("income").kind == "numeric"

    capped = pdp.run(
        pipeline_inputs(pipeline_case), ctx=JobContext(), features=["colour"], max_categories=2, ice_rows=5
    )
    assert capped.feature("colour").grid == result.feature("colour").grid[:2]
    assert any("'colour' has more than 2 categories" in w for w in capped.warnings)


def test_model_is_called_once_per_feature_with_rows_and_grid_stacked(additive_inputs) -> None:
    model = AdditiveModel()
    inputs = AuditInputs(frame=additive_inputs.frame, roles=additive_inputs.roles, model=model)
    result = pdp.run(inputs, ctx=JobContext(), features=["x0", "x1"], ice_rows=30, grid_resolution=5, pair=("x0", "x1"))
    sizes = [30 * len(result.feature("x0").grid), 30 * len(result.feature("x1").grid), 30 * 25]
    assert model.calls == sizes


def test_same_seed_same_curves_different_seed_different_rows(pipeline_case) -> None:
    inputs = pipeline_inputs(pipeline_case)
    a = pdp.run(inputs, ctx=JobContext(seed=1), ice_rows=20, features=["income"])
    b = pdp.run(inputs, ctx=JobContext(seed=1), ice_rows=20, features=["income"])
    c = pdp.run(inputs, ctx=JobContext(seed=2), ice_rows=20, features=["income"])
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.feature("income").ice, b.feature("income").ice)
    assert not np.array_equal(a.rows, c.rows)
    assert not np.array_equal(a.feature("income").pdp, c.feature("income").pdp)


def test_cancel_stops_between_chunks_and_is_not_an_error(additive_inputs) -> None:
    token = CancelToken()
    model = AdditiveModel()
    inputs = AuditInputs(frame=additive_inputs.frame, roles=additive_inputs.roles, model=model)

    def progress(fraction: float, message: str) -> None:
        if "x1" in message:
            token.cancel()

    with pytest.raises(Cancelled):
        pdp.run(inputs, ctx=JobContext(progress_fn=progress, cancel=token), features=["x0", "x1", "x2"])
    assert len(model.calls) == 1  # x0 ran; nothing after the request


def test_json_round_trip_keeps_grids_curves_and_pair(pipeline_case) -> None:
    result = pdp.run(
        pipeline_inputs(pipeline_case), ctx=JobContext(seed=4), ice_rows=10, grid_resolution=4, pair=("colour", "late")
    )
    data = json.loads(json.dumps(result.to_dict()))
    back = result_from_dict(data)
    assert isinstance(back, PartialDependenceResult)
    assert back.to_dict() == result.to_dict()
    assert back.feature("colour").grid == result.feature("colour").grid
    np.testing.assert_array_equal(back.feature("income").ice, result.feature("income").ice)
    assert back.pair is not None and back.pair.kinds == ("categorical", "numeric")
    assert not back.feature("income").ice.flags.writeable
    assert back.provenance.parameters["pair"] == ["colour", "late"]


def test_bad_parameters_are_refused_with_a_sentence(additive_inputs) -> None:
    ctx = JobContext()
    with pytest.raises(
        AnalysisError,
        match=r"^'income' is not an input column of the model in the data; "
        r"choose one of 'x0', 'x1', 'x2'\.$",
    ):
        pdp.run(additive_inputs, ctx=ctx, features=["income"])
    with pytest.raises(AnalysisError, match="two different features, not 'x0' twice"):
        pdp.run(additive_inputs, ctx=ctx, pair=("x0", "x0"))
    with pytest.raises(AnalysisError, match="0 <= low < high <= 1"):
        pdp.run(additive_inputs, ctx=ctx, percentiles=(0.9, 0.1))
    with pytest.raises(AnalysisError, match="grid resolution must be a whole number of at least 2"):
        pdp.run(additive_inputs, ctx=ctx, grid_resolution=1)
    with pytest.raises(AnalysisError, match="regressor"):
        pdp.run(additive_inputs, ctx=ctx, klass=1)


def test_inputs_are_not_modified(pipeline_case) -> None:
    inputs = pipeline_inputs(pipeline_case)
    before = inputs.frame.copy()
    pdp.run(inputs, ctx=JobContext(), ice_rows=15, pair=("income", "colour"))
    pd.testing.assert_frame_equal(inputs.frame, before)


def test_a_column_with_no_values_is_left_out_with_a_warning() -> None:
    frame = pd.DataFrame({"x0": [0.1, 0.5, 0.9], "x1": [1.0, 2.0, 3.0], "x2": [np.nan] * 3})
    inputs = AuditInputs(frame=frame, roles=Roles(target=None, features=("x0", "x1", "x2")), model=AdditiveModel())
    result = pdp.run(inputs, ctx=JobContext())
    assert result.feature_names == ("x0", "x1")
    assert (
        "The column 'x2' in the data has no numeric values, so no partial dependence grid can be built; "
        "it was left out." in result.warnings
    )
    with pytest.raises(AnalysisError, match="^The column 'x2' in the data has no numeric values"):
        pdp.run(inputs, ctx=JobContext(), features=["x2"])
