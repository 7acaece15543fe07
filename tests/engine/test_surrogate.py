"""Global surrogates: exact recovery of a tree and a linear model, readable rules, fidelity, seeds, cancel."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from engine.errors import AnalysisError, Cancelled
from engine.explain import surrogate
from engine.explain.surrogate import SurrogateResult, encode_raw, format_number
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.sklearn_adapter import SklearnModel
from engine.results import result_from_dict
from engine.schema import Roles


def make_inputs(X: pd.DataFrame, estimator) -> AuditInputs:
    return AuditInputs(frame=X, roles=Roles(target=None, features=tuple(X.columns)), model=SklearnModel(estimator))


@pytest.fixture(scope="module")
def tree_case() -> tuple[pd.DataFrame, DecisionTreeRegressor]:
    rng = np.random.default_rng(10)
    n = 400
    # Values on coarse grids leave no row between the model's and the surrogate's thresholds,
    # so a recovered tree agrees with the model on held-out rows too.
    X = pd.DataFrame(
        {
            "income": rng.integers(2, 19, n) * 5_000,
            "age": rng.integers(18, 80, n),
            "debt": rng.integers(0, 31, n) * 1_000,
            "noise": rng.normal(size=n),
        }
    )
    target = np.where(X["income"] <= 41_000, np.where(X["debt"] > 9_800, 0.1, 0.4), np.where(X["age"] > 60, 0.6, 0.9))
    return X, DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, target)


def test_surrogate_of_a_depth_two_tree_is_exact_and_names_the_true_splits(tree_case) -> None:
    X, model = tree_case
    result = surrogate.run(make_inputs(X, model), ctx=JobContext(seed=1), max_depth=2)
    tree = result.tree
    assert tree.r2_train == pytest.approx(1.0, abs=1e-12)
    assert tree.r2_holdout == pytest.approx(1.0, abs=1e-12)
    assert tree.agreement_holdout is None  # a regressor has no decision at 0.5
    used = {result.design_names[f] for f in tree.feature if f >= 0}
    assert used == {"income", "debt", "age"}
    assert len(tree.rules) == 4
    texts = [r.text for r in tree.rules]
    assert all(re.fullmatch(r"if .+ then prediction ≈ [0-9.]+ \(n=[0-9,]+\)", t) for t in texts), texts
    assert any("income <= 42,500" in t and "debt > 9,500" in t for t in texts), texts
    assert any("income > 42,500" in t and "age > 60.5" in t for t in texts), texts
    # Thresholds are in raw units: midway between the grid values either side of the model's split.
    assert tree.threshold[0] == 42_500
    assert sum(r.n_train for r in tree.rules) == result.n_train == 300 and result.n_holdout == 100
    assert {round(r.prediction, 12) for r in tree.rules} == {0.1, 0.4, 0.6, 0.9}


def test_classifier_tree_surrogate_agrees_with_the_model_decision() -> None:
    rng = np.random.default_rng(12)
    X = pd.DataFrame(rng.integers(-5, 6, size=(300, 3)), columns=["a", "b", "c"])
    y = (((X["a"] > 0) & (X["c"] > -2)) ^ (rng.uniform(size=300) < 0.15)).astype(int)
    clf = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    result = surrogate.run(make_inputs(X, clf), ctx=JobContext(), max_depth=2)
    assert result.output_name == "P(1)" and result.output_space == "probability"
    assert result.tree.r2_holdout > 0.99
    assert result.tree.agreement_holdout == 1.0
    assert {result.design_names[f] for f in result.tree.feature if f >= 0} == {"a", "c"}


def test_sparse_linear_surrogate_recovers_a_linear_models_coefficients() -> None:
    rng = np.random.default_rng(2)
    n = 240
    X = pd.DataFrame(
        {
            "income": rng.normal(50_000, 15_000, n),
            "debt": rng.normal(10_000, 4_000, n),
            "rate": rng.uniform(0, 0.2, n),
            "noise1": rng.normal(size=n),
            "noise2": rng.normal(size=n),
        }
    )
    y = 0.3 + 2e-5 * X["income"] - 5e-5 * X["debt"] + 1.5 * X["rate"]
    model = LinearRegression().fit(X, y)
    truth = {"income": 2e-5, "debt": -5e-5, "rate": 1.5}
    result = surrogate.run(make_inputs(X, model), ctx=JobContext(), max_terms=3)
    linear = result.linear
    assert set(linear.terms) == {"income", "debt", "rate"}
    for term, coef in zip(linear.terms, linear.coefficients):
        assert coef == pytest.approx(truth[term], rel=1e-9)
    assert linear.intercept == pytest.approx(0.3, rel=1e-9)
    assert linear.r2_holdout == pytest.approx(1.0, abs=1e-12)
    # Terms come by decreasing standardised effect: debt (0.2), income (0.3), rate (0.087) -> income first.
    assert linear.terms[0] == "income"
    assert linear.equation.startswith("prediction ≈ ")

    # With room for more terms the path still leaves the unused columns out.
    roomy = surrogate.run(make_inputs(X, model), ctx=JobContext(), max_terms=8)
    assert set(roomy.linear.terms) == {"income", "debt", "rate"}
    two = surrogate.run(make_inputs(X, model), ctx=JobContext(), max_terms=2)
    assert len(two.linear.terms) <= 2 and two.linear.terms[0] == "income"


def test_categorical_columns_are_one_hot_with_readable_rules() -> None:
    rng = np.random.default_rng(6)
    n = 300
    employment = rng.choice(np.array(["salaried", "retired", "contract"]), size=n)
    X = pd.DataFrame(
        {"income": rng.uniform(10_000, 90_000, n).round(-2), "employment": pd.Series(employment, dtype="str")}
    )
    y = np.where(employment == "retired", -60.0, 0.0) + X["income"] / 1000
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(sparse_output=False), ["employment"])], remainder="passthrough"
                ),
            ),
            ("lin", LinearRegression()),
        ]
    ).fit(X, y)
    result = surrogate.run(make_inputs(X, pipe), ctx=JobContext(), max_depth=2, max_terms=2)
    assert "employment = retired" in result.design_names
    conditions = [c for r in result.tree.rules for c in r.conditions]
    assert any(c in ("employment = retired", "employment ≠ retired") for c in conditions), conditions
    assert any(re.fullmatch(r"income (<=|>) [0-9]{2},[0-9]{3}", c) for c in conditions), conditions
    assert set(result.linear.terms) == {"income", "employment = retired"}
    coef = dict(zip(result.linear.terms, result.linear.coefficients))
    assert coef["employment = retired"] == pytest.approx(-60.0, rel=1e-9)
    assert coef["income"] == pytest.approx(1e-3, rel=1e-9)
    assert "− 60 × [employment = retired]" in result.linear.equation


def test_encode_raw_imputes_medians_flags_missing_and_caps_categories() -> None:
    X = pd.DataFrame({"x": [1.0, np.nan, 3.0, 5.0], "c": pd.Series(["a", "b", None, "a"], dtype="str")})
    warn: list[str] = []
    design = encode_raw(X, fit_rows=np.array([0, 2, 3]), max_categories=1, warn=warn)
    assert design.names == ("x", "x is missing", "c = a", "c is missing")
    np.testing.assert_array_equal(design.matrix[:, 0], [1.0, 3.0, 3.0, 5.0])  # median of the fit rows
    np.testing.assert_array_equal(design.matrix[:, 1], [0, 1, 0, 0])
    np.testing.assert_array_equal(design.matrix[:, 2], [1, 0, 0, 1])
    np.testing.assert_array_equal(design.matrix[:, 3], [0, 0, 1, 0])
    assert warn == []  # only "a" occurs in the fit rows, so nothing was dropped
    encode_raw(X, max_categories=1, warn=warn)
    assert warn == [
        "The column 'c' has 2 categories; the surrogates see only the 1 most frequent, and the others as none of them."
    ]


def test_format_number_gives_readable_raw_units() -> None:
    assert format_number(41150.0) == "41,150"
    assert format_number(0.31234) == "0.3123"
    assert format_number(-2.5) == "-2.5"
    assert format_number(0.0) == "0"
    assert format_number(1234567.8) == "1,234,568"
    assert format_number(0.3104, 2) == "0.31"


def test_same_seed_same_surrogates_different_seed_different_split(tree_case) -> None:
    X, _ = tree_case
    rng = np.random.default_rng(0)
    noisy = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X, X["income"] / 1e4 + rng.normal(size=len(X)))
    inputs = make_inputs(X, noisy)
    a = surrogate.run(inputs, ctx=JobContext(seed=1))
    b = surrogate.run(inputs, ctx=JobContext(seed=1))
    c = surrogate.run(inputs, ctx=JobContext(seed=2))
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "provenance"}  # noqa: E731
    assert strip(a) == strip(b)
    assert a.tree.r2_holdout != c.tree.r2_holdout
    assert a.linear.r2_holdout != c.linear.r2_holdout


def test_cancel_is_honoured(tree_case) -> None:
    X, model = tree_case
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Fitting the tree"):
            token.cancel()

    with pytest.raises(Cancelled):
        surrogate.run(make_inputs(X, model), ctx=JobContext(progress_fn=progress, cancel=token))


def test_json_round_trip(tree_case) -> None:
    X, model = tree_case
    result = surrogate.run(make_inputs(X, model), ctx=JobContext(seed=3), max_depth=2)
    back = result_from_dict(json.loads(json.dumps(result.to_dict())))
    assert isinstance(back, SurrogateResult)
    assert back.to_dict() == result.to_dict()
    assert back.tree.rules == result.tree.rules
    assert math.isnan(back.tree.threshold[-1]) and not back.tree.threshold.flags.writeable
    assert back.linear.terms == result.linear.terms


def test_bad_parameters_are_refused_with_a_sentence(tree_case) -> None:
    X, model = tree_case
    inputs = make_inputs(X, model)
    with pytest.raises(
        AnalysisError,
        match=r"^The share of rows held out must lie strictly between 0 and 1, "
        r"not 1\.0\.$",
    ):
        surrogate.run(inputs, ctx=JobContext(), holdout_fraction=1.0)
    with pytest.raises(AnalysisError, match="depth must be a whole number of at least 1"):
        surrogate.run(inputs, ctx=JobContext(), max_depth=0)
    tiny = make_inputs(X.iloc[:5], model)
    with pytest.raises(AnalysisError, match="^The data has 5 rows, too few to fit surrogates"):
        surrogate.run(tiny, ctx=JobContext())
