"""Permutation importance: parity with scikit-learn, a closed form, determinism, cancel and progress."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from engine.errors import AnalysisError, Cancelled
from engine.explain import permutation
from engine.explain.permutation import PermutationImportanceResult
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.sklearn_adapter import SklearnModel
from engine.registry import get_method
from engine.results import result_from_dict
from engine.schema import Roles


class CountingModel(SklearnModel):
    """A SklearnModel that records the number of rows of every model call."""

    def __init__(self, estimator) -> None:
        super().__init__(estimator)
        self.calls: list[int] = []

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(X))
        return super()._predict_raw(X)


def run(inputs: AuditInputs, *, seed: int = 0, **params) -> PermutationImportanceResult:
    return permutation.run(inputs, ctx=JobContext(seed=seed), **params)


def assert_statistically_equal(ours: PermutationImportanceResult, theirs, *, tol: float = 1e-3) -> None:
    r_ours, r_theirs = ours.importances.shape[1], theirs.importances.shape[1]
    se_ours = ours.importances.std(axis=1, ddof=1) / math.sqrt(r_ours)
    se_theirs = theirs.importances.std(axis=1, ddof=1) / math.sqrt(r_theirs)
    bound = 3 * np.sqrt(se_ours**2 + se_theirs**2) + tol
    gap = np.abs(ours.mean - theirs.importances_mean)
    assert (gap <= bound).all(), (ours.feature_names, gap, bound)


@pytest.fixture(scope="module")
def pipeline_case() -> tuple[pd.DataFrame, np.ndarray, Pipeline]:
    """A ColumnTransformer Pipeline over raw columns, one of them strings to one-hot encode."""
    rng = np.random.default_rng(7)
    n = 600
    colour = rng.choice(np.array(["red", "green", "blue"]), size=n)
    X = pd.DataFrame(
        {
            "strong": rng.normal(size=n),
            "colour": pd.Series(colour, dtype="str"),
            "weak": rng.normal(size=n),
            "noise": rng.normal(size=n),
        }
    )
    logit = 3.0 * X["strong"] + np.select([colour == "red", colour == "blue"], [1.8, -1.8], 0.0) + 0.5 * X["weak"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(sparse_output=False), ["colour"]),
                        ("num", "passthrough", ["strong", "weak", "noise"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    return X, y, pipe


def pipeline_inputs(case, frame: pd.DataFrame | None = None) -> AuditInputs:
    X, y, pipe = case
    frame = X.assign(label=y) if frame is None else frame
    return AuditInputs(frame=frame, roles=Roles(target="label", features=tuple(X.columns)), model=SklearnModel(pipe))


def test_pipeline_importance_matches_sklearn_on_raw_columns(pipeline_case) -> None:
    X, y, pipe = pipeline_case
    ours = run(pipeline_inputs(pipeline_case), n_repeats=30)
    theirs = permutation_importance(pipe, X, y, n_repeats=30, random_state=0)
    # The one-hot-encoded string column is permuted as one raw feature.
    assert ours.feature_names == ("strong", "colour", "weak", "noise")
    assert ours.importances.shape == (4, 30)
    assert ours.scoring == "accuracy"
    assert ours.baseline_score == pytest.approx(pipe.score(X, y), abs=1e-12)
    assert_statistically_equal(ours, theirs)
    assert ours.ranking()[:3] == ("strong", "colour", "weak")
    assert tuple(X.columns[np.argsort(-theirs.importances_mean)][:3]) == ours.ranking()[:3]


def test_plain_random_forest_importance_matches_sklearn() -> None:
    rng = np.random.default_rng(11)
    n = 500
    A = rng.normal(size=(n, 4))
    y = (2.0 * A[:, 0] + 0.8 * A[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    est = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(A, y)  # no column names
    frame = pd.DataFrame(A, columns=["f0", "f1", "f2", "f3"]).assign(y=y)
    inputs = AuditInputs(
        frame=frame, roles=Roles(target="y", features=("f0", "f1", "f2", "f3")), model=SklearnModel(est)
    )
    ours = run(inputs, n_repeats=30, seed=5)
    theirs = permutation_importance(est, A, y, n_repeats=30, random_state=1)
    assert_statistically_equal(ours, theirs)
    assert ours.ranking()[:2] == ("f0", "f1")
    assert tuple(np.array(ours.feature_names)[np.argsort(-theirs.importances_mean)][:2]) == ("f0", "f1")


@pytest.fixture(scope="module")
def linear_case() -> tuple[AuditInputs, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 2000
    beta = np.array([1.0, 0.6, 0.3, 0.0])
    A = rng.normal(size=(n, 4))
    A = (A - A.mean(0)) / A.std(0)
    y = A @ beta + 0.5 * rng.normal(size=n)
    frame = pd.DataFrame(A, columns=["x0", "x1", "x2", "x3"]).assign(y=y)
    est = LinearRegression().fit(frame[["x0", "x1", "x2", "x3"]], y)
    inputs = AuditInputs(
        frame=frame, roles=Roles(target="y", features=("x0", "x1", "x2", "x3")), model=SklearnModel(est)
    )
    return inputs, A, y, est.coef_


def test_linear_model_importance_is_twice_beta_squared_times_variance(linear_case) -> None:
    # For least squares fitted on the scored rows, E[MSE_permuted - MSE] = 2 β_j² Var(x_j) exactly
    # (population variance), because residuals are orthogonal to x_j and have zero mean.
    inputs, A, _, coef = linear_case
    result = run(inputs, n_repeats=40, scoring="neg_mean_squared_error")
    expected = 2 * coef**2 * A.var(axis=0)
    se = result.importances.std(axis=1, ddof=1) / math.sqrt(40)
    assert np.all(np.abs(result.mean - expected) <= 4 * se + 1e-12), (result.mean, expected, se)
    assert result.mean[0] > result.mean[1] > result.mean[2] > 0.0


def test_r2_importance_is_mse_importance_over_target_variance(linear_case) -> None:
    inputs, _, y, _ = linear_case
    mse = run(inputs, n_repeats=5, scoring="neg_mean_squared_error")
    r2 = run(inputs, n_repeats=5, scoring="r2")
    np.testing.assert_allclose(r2.importances * y.var(), mse.importances, rtol=1e-9, atol=1e-12)
    assert r2.scoring == "r2" and r2.baseline_score == pytest.approx(skm.r2_score(y, inputs.model.predict(inputs.X)))


def test_same_seed_same_numbers_other_seed_other_numbers(pipeline_case) -> None:
    inputs = pipeline_inputs(pipeline_case)
    a = run(inputs, n_repeats=4, seed=42)
    b = run(inputs, n_repeats=4, seed=42)
    c = run(inputs, n_repeats=4, seed=43)
    np.testing.assert_array_equal(a.importances, b.importances)
    assert not np.array_equal(a.importances, c.importances)


def test_each_feature_draws_from_its_own_stream(linear_case) -> None:
    # Feature j's shuffles are ctx.rng("permutation", j).permuted(rows, axis=1), whatever ran before it.
    inputs, A, y, _ = linear_case
    result = run(inputs, n_repeats=3, seed=9, scoring="neg_mean_absolute_error")
    model = inputs.model
    n = len(A)
    perms = JobContext(seed=9).rng("permutation", 3).permuted(np.tile(np.arange(n), (3, 1)), axis=1)
    base = -np.abs(model.predict(inputs.X) - y).mean()
    for r in range(3):
        shuffled = inputs.X.assign(x3=A[perms[r], 3])
        expected = base + np.abs(model.predict(shuffled) - y).mean()
        assert result.importances[3, r] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_constant_feature_has_zero_importance() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=200), "const": 5.0})
    frame["y"] = 2 * frame["x"] + rng.normal(size=200)
    est = RandomForestRegressor(n_estimators=10, random_state=0).fit(frame[["x", "const"]], frame["y"])
    inputs = AuditInputs(frame=frame, roles=Roles(target="y", features=("x", "const")), model=SklearnModel(est))
    result = run(inputs, n_repeats=5)
    np.testing.assert_array_equal(result.importances[1], np.zeros(5))
    assert result.mean[0] > 0.5


def test_std_and_interval_are_sample_t_statistics(pipeline_case) -> None:
    result = run(pipeline_inputs(pipeline_case), n_repeats=6, confidence=0.9)
    imp = result.importances
    np.testing.assert_allclose(result.std, imp.std(axis=1, ddof=1))
    low, high = stats.t.interval(0.9, 5, loc=imp.mean(axis=1), scale=stats.sem(imp, axis=1))
    np.testing.assert_allclose(result.ci_low, low)
    np.testing.assert_allclose(result.ci_high, high)
    single = run(pipeline_inputs(pipeline_case), n_repeats=1)
    assert np.isnan(single.std).all() and np.isnan(single.ci_low).all() and np.isnan(single.ci_high).all()
    assert "With a single repeat there is no spread, so standard deviations and intervals are empty." in single.warnings


def test_one_model_call_per_feature_and_chunking_does_not_change_numbers(
    pipeline_case, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y, pipe = pipeline_case
    frame = X.assign(label=y)
    roles = Roles(target="label", features=tuple(X.columns))
    whole = CountingModel(pipe)
    a = run(AuditInputs(frame=frame, roles=roles, model=whole), n_repeats=5)
    assert whole.calls == [600] + [3000] * 4  # baseline, then all 5 shuffled copies of a feature at once

    monkeypatch.setattr(permutation, "MAX_CELLS", 4 * 250)  # 250 rows of 4 columns per call
    chunked = CountingModel(pipe)
    b = run(AuditInputs(frame=frame, roles=roles, model=chunked), n_repeats=5)
    assert max(chunked.calls) <= 250 and sum(chunked.calls) == sum(whole.calls)
    np.testing.assert_allclose(a.importances, b.importances, rtol=1e-12, atol=1e-15)


def test_max_rows_scores_a_seeded_subsample(linear_case) -> None:
    inputs, _, _, _ = linear_case
    result = run(inputs, n_repeats=3, max_rows=300, seed=4, scoring="r2")
    assert result.n_rows == 300
    assert "Importances were computed on a random sample of 300 of the 2000 labelled rows." in result.warnings
    keep = np.sort(JobContext(seed=4).rng("rows").choice(2000, size=300, replace=False))
    subset = AuditInputs(frame=inputs.frame.iloc[keep], roles=inputs.roles, model=inputs.model)
    direct = run(subset, n_repeats=3, seed=4, scoring="r2")
    np.testing.assert_array_equal(result.importances, direct.importances)


def test_cancel_stops_before_finishing(pipeline_case) -> None:
    token = CancelToken()
    seen: list[tuple[float, str]] = []

    def progress(fraction: float, message: str) -> None:
        seen.append((fraction, message))
        if message.startswith("Permuting colour"):
            token.cancel()

    model = CountingModel(pipeline_case[2])
    inputs = AuditInputs(
        frame=pipeline_inputs(pipeline_case).frame, roles=pipeline_inputs(pipeline_case).roles, model=model
    )
    with pytest.raises(Cancelled):
        permutation.run(inputs, ctx=JobContext(seed=0, progress_fn=progress, cancel=token), n_repeats=3)
    assert max(f for f, _ in seen) < 1.0
    assert len(model.calls) == 2  # the baseline and the first feature; nothing after the cancel


def test_progress_is_monotone_and_reaches_one(pipeline_case) -> None:
    seen: list[float] = []
    permutation.run(
        pipeline_inputs(pipeline_case), ctx=JobContext(progress_fn=lambda f, m: seen.append(f)), n_repeats=2
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(b >= a for a, b in zip(seen, seen[1:]))
    assert len(seen) >= 4  # at least once per feature


@pytest.mark.parametrize(
    ("scoring", "reference"),
    [
        ("accuracy", lambda y, p: skm.accuracy_score(y, p.argmax(1))),
        ("balanced_accuracy", lambda y, p: skm.balanced_accuracy_score(y, p.argmax(1))),
        ("roc_auc", lambda y, p: skm.roc_auc_score(y, p[:, 1])),
        ("neg_log_loss", lambda y, p: -skm.log_loss(y, p)),
        ("neg_brier", lambda y, p: -skm.brier_score_loss(y, p[:, 1])),
    ],
)
def test_classification_scorings_match_sklearn_metrics(pipeline_case, scoring, reference) -> None:
    X, y, pipe = pipeline_case
    result = run(pipeline_inputs(pipeline_case), n_repeats=2, scoring=scoring)
    assert result.scoring == scoring
    assert result.baseline_score == pytest.approx(reference(y, pipe.predict_proba(X)), rel=1e-12)
    assert result.mean[0] > 0  # shuffling the strongest feature hurts under every score


@pytest.mark.parametrize(
    ("scoring", "reference"),
    [
        ("r2", skm.r2_score),
        ("neg_mean_absolute_error", lambda y, p: -skm.mean_absolute_error(y, p)),
        ("neg_mean_squared_error", lambda y, p: -skm.mean_squared_error(y, p)),
        ("neg_root_mean_squared_error", lambda y, p: -skm.root_mean_squared_error(y, p)),
    ],
)
def test_regression_scorings_match_sklearn_metrics(linear_case, scoring, reference) -> None:
    inputs, _, y, _ = linear_case
    result = run(inputs, n_repeats=2, scoring=scoring)
    assert result.baseline_score == pytest.approx(reference(y, inputs.model.predict(inputs.X)), rel=1e-12)


def test_unknown_or_mismatched_scoring_is_refused(pipeline_case, linear_case) -> None:
    with pytest.raises(AnalysisError) as info:
        run(pipeline_inputs(pipeline_case), scoring="f1")
    assert str(info.value) == (
        "Unknown scoring 'f1' for permutation importance; choose one of accuracy, balanced_accuracy, roc_auc, "
        "neg_log_loss, neg_brier."
    )
    with pytest.raises(AnalysisError) as info:
        run(linear_case[0], scoring="roc_auc")
    assert str(info.value) == (
        "The scoring 'roc_auc' needs a classification model but the model is a regression model; choose one of "
        "r2, neg_mean_absolute_error, neg_mean_squared_error, neg_root_mean_squared_error."
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_repeats": 0}, "The number of repeats must be a positive whole number, not 0."),
        ({"max_rows": 0}, "The row limit must be a positive whole number or none, not 0."),
        ({"confidence": 1.0}, "The confidence level must lie strictly between 0 and 1, not 1.0."),
    ],
)
def test_invalid_parameters_are_refused(pipeline_case, params, message) -> None:
    with pytest.raises(AnalysisError) as info:
        run(pipeline_inputs(pipeline_case), **params)
    assert str(info.value) == message


def test_roc_auc_scoring_with_one_class_is_refused(pipeline_case) -> None:
    X, y, _ = pipeline_case
    frame = X.assign(label=y).loc[y == 1]
    with pytest.raises(AnalysisError) as info:
        run(pipeline_inputs(pipeline_case, frame), scoring="roc_auc")
    assert str(info.value) == (
        "ROC AUC cannot score permutation importance because the rows of the data do not hold every class; "
        "choose another scoring."
    )


def test_missing_targets_are_dropped_and_input_frame_untouched(pipeline_case) -> None:
    X, y, _ = pipeline_case
    frame = X.assign(label=pd.Series(y, dtype="Float64"))
    frame.loc[[0, 5, 9], "label"] = pd.NA
    snapshot = frame.copy()
    result = run(pipeline_inputs(pipeline_case, frame), n_repeats=2)
    assert result.n_rows == 597
    assert result.warnings == (
        "3 of 600 rows in the data have no value in the target column 'label' and were left out.",
    )
    pd.testing.assert_frame_equal(frame, snapshot)


def test_result_round_trips_and_is_registered(pipeline_case) -> None:
    result = get_method("permutation")(pipeline_inputs(pipeline_case), ctx=JobContext(seed=1), n_repeats=1)
    back = result_from_dict(result.to_dict())
    assert isinstance(back, PermutationImportanceResult)
    np.testing.assert_array_equal(back.importances, result.importances)
    np.testing.assert_array_equal(back.std, result.std)  # NaN (single repeat) survives as NaN
    assert back.feature_names == result.feature_names and back.baseline_score == result.baseline_score
    assert back.provenance.parameters == {"n_repeats": 1, "scoring": "accuracy", "max_rows": None, "confidence": 0.95}
    with pytest.raises(ValueError):
        result.importances[0, 0] = 1.0


def test_demo_pipeline_ranks_the_true_drivers_first() -> None:
    from engine.demo import FEATURES, TARGET, make_credit_frame, train_credit_model

    frame = make_credit_frame(1200, seed=5)
    model = SklearnModel(train_credit_model(frame))
    inputs = AuditInputs(frame=frame, roles=Roles(target=TARGET, features=FEATURES), model=model)
    result = run(inputs, n_repeats=5, seed=3)
    assert result.feature_names == FEATURES
    # income, debt and late payments carry the largest true coefficients; age a small one, the
    # other columns none (loan_amount and neighbourhood only through correlation).
    assert set(result.ranking()[:3]) == {"income", "debt", "late_payments"}
    low = dict(zip(result.feature_names, result.ci_low))
    high = dict(zip(result.feature_names, result.ci_high))
    weak = ("age", "employment", "loan_amount", "neighbourhood")
    assert min(low[f] for f in ("income", "debt", "late_payments")) > 2 * max(high[f] for f in weak)
