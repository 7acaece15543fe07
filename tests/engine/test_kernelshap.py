"""KernelSHAP: closed forms, parity with interventional TreeSHAP, sampling accuracy, batching, cancel."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from engine.attribution import AttributionResult
from engine.errors import AnalysisError, Cancelled
from engine.explain._background import Background, summarise_background
from engine.explain.kernelshap import METHOD, background_for, coalition_design, kernel_shap, run
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.base import Model, Task
from engine.models.sklearn_adapter import SklearnModel
from engine.schema import Roles


class FunctionModel(Model):
    """A regression model given as a function of the raw frame; counts its calls and rows."""

    format = "sklearn"

    def __init__(self, fn: Callable[[pd.DataFrame], np.ndarray], columns: list[str]) -> None:
        self.fn = fn
        self.task = Task.REGRESSION
        self.classes = None
        self.input_columns = tuple(columns)
        self.calls: list[int] = []

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(X))
        return self.fn(X)


def _inputs(frame: pd.DataFrame, model: Model, features: list[str], target: str | None = None) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=target, features=tuple(features)), model=model)


def _gaussian_frame(n: int, m: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, m)), columns=[f"x{j}" for j in range(m)])


def _assert_additive(result: AttributionResult) -> None:
    total = result.base_values + result.values.sum(axis=1)
    np.testing.assert_allclose(total, result.predictions, rtol=0, atol=1e-8)
    assert result.summary["max_additivity_error"] <= 1e-8


def _expanded(background: Background) -> pd.DataFrame:
    """The background as plain rows: each representative repeated by its (integer) weight."""
    counts = background.weights.astype(int)
    assert np.array_equal(counts, background.weights)
    return background.frame.loc[np.repeat(np.arange(background.size), counts)].reset_index(drop=True)


def _tree_shap(estimator, rows: pd.DataFrame, background_rows: pd.DataFrame, class_index: int | None) -> np.ndarray:
    """Exact interventional TreeSHAP on exactly these background rows (no subsampling)."""
    import shap

    masker = shap.maskers.Independent(background_rows, max_samples=len(background_rows))
    explainer = shap.TreeExplainer(estimator, data=masker, feature_perturbation="interventional")
    values = explainer.shap_values(rows, check_additivity=False)
    return values[:, :, class_index] if class_index is not None else values


# -- closed forms --------------------------------------------------------------------------


def test_product_splits_evenly_and_the_additive_term_is_its_own_value_with_a_zero_background() -> None:
    columns = ["x0", "x1", "x2"]
    model = FunctionModel(lambda X: X["x0"].to_numpy() * X["x2"].to_numpy() + X["x1"].to_numpy(), columns)
    zero = Background(frame=pd.DataFrame({c: [0.0] for c in columns}), weights=np.ones(1), n_source=1, summarised=False)
    x = pd.DataFrame({"x0": [2.0, -1.5], "x1": [3.0, 0.25], "x2": [5.0, 4.0]})

    est = kernel_shap(x, zero, model.predict, ctx=JobContext(seed=0))

    # x0*x2 is shared equally by x0 and x2; x1 enters alone.
    expected = np.array([[5.0, 3.0, 5.0], [-3.0, 0.25, -3.0]])
    np.testing.assert_allclose(est.values, expected, rtol=0, atol=1e-12)
    assert est.base_value == 0.0
    assert est.exact and not est.standard_errors.any()


def test_linear_model_gets_coefficient_times_distance_from_the_weighted_background_mean() -> None:
    from sklearn.linear_model import LinearRegression

    frame = _gaussian_frame(240, 12, seed=1)
    y = frame.to_numpy() @ np.linspace(-2, 2, 12) + 0.5
    est = LinearRegression().fit(frame, y)
    inputs = _inputs(frame, SklearnModel(est), list(frame.columns))
    ctx = JobContext(seed=4)

    result = run(inputs, ctx=ctx, rows=[0, 5, 9], background_size=30)

    background = background_for(inputs, ctx=ctx, background_size=30)
    assert background.summarised and background.size <= 30
    mean = np.average(background.frame.to_numpy(), axis=0, weights=background.weights)
    expected = est.coef_ * (frame.iloc[[0, 5, 9]].to_numpy() - mean)
    # 12 features and the default budget: sampled coalitions, yet a linear model is fitted exactly.
    assert result.summary["exact"] == 0.0
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=1e-9)
    assert result.extras["standard_errors"].max() < 1e-9
    _assert_additive(result)


def test_a_constant_model_gives_zero_for_every_feature_exactly_or_sampled() -> None:
    frame = _gaussian_frame(60, 12, seed=2)
    model = FunctionModel(lambda X: np.full(len(X), 0.7), list(frame.columns))
    inputs = _inputs(frame, model, list(frame.columns))

    sampled = run(inputs, ctx=JobContext(seed=1), rows=[0, 1], background_size=10)
    exact = run(inputs, ctx=JobContext(seed=1), rows=[0, 1], background_size=10, n_coalitions=4094)

    assert sampled.summary["exact"] == 0.0 and exact.summary["exact"] == 1.0
    for result in (sampled, exact):
        np.testing.assert_allclose(result.values, 0.0, atol=1e-12)
        np.testing.assert_allclose(result.base_values, 0.7)
        assert result.extras["standard_errors"].max() < 1e-12


def test_a_constant_feature_gets_exactly_zero_in_sampled_mode() -> None:
    frame = _gaussian_frame(80, 12, seed=3)
    frame["x5"] = 2.5
    coef = np.arange(1.0, 13.0)

    def fn(X: pd.DataFrame) -> np.ndarray:
        A = X.to_numpy()
        return A @ coef + A[:, 0] * A[:, 1] + np.sin(A[:, 5] * A[:, 2])

    inputs = _inputs(frame, FunctionModel(fn, list(frame.columns)), list(frame.columns))
    # 11 varying features would fit the default budget exactly; 600 coalitions force sampling.
    result = run(inputs, ctx=JobContext(seed=3), rows=[0, 1, 2], background_size=15, n_coalitions=600)

    assert result.summary["exact"] == 0.0
    assert result.summary["n_varying_features"] == 11.0
    assert np.all(result.values[:, 5] == 0.0)
    assert np.all(result.extras["standard_errors"][:, 5] == 0.0)
    assert np.all(result.extras["standard_errors"][:, [0, 1, 2]] > 0.0)
    _assert_additive(result)


# -- parity with exact interventional TreeSHAP -------------------------------------------


@pytest.mark.parametrize("background_size", [100, 12], ids=["whole-table", "weighted-k-means"])
def test_exact_kernelshap_equals_interventional_treeshap_on_the_same_background(background_size: int) -> None:
    from sklearn.ensemble import RandomForestClassifier

    frame = _gaussian_frame(70, 6, seed=5)
    label = ((frame.x0 + frame.x1 * frame.x2 - 0.5 * frame.x4) > 0).astype(int)
    rf = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(frame, label)
    inputs = _inputs(frame, SklearnModel(rf), list(frame.columns))
    ctx = JobContext(seed=7)

    result = run(inputs, ctx=ctx, rows=[0, 3, 8, 21], background_size=background_size)

    background = background_for(inputs, ctx=ctx, background_size=background_size)
    assert background.summarised == (background_size < len(frame))
    oracle = _tree_shap(rf, frame.iloc[[0, 3, 8, 21]], _expanded(background), class_index=1)
    assert result.summary["exact"] == 1.0 and result.output_space == "probability" and result.class_index == 1
    np.testing.assert_allclose(result.values, oracle, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.base_values, np.average(rf.predict_proba(_expanded(background))[:, 1]))
    assert not result.extras["standard_errors"].any()
    _assert_additive(result)


def test_sampled_values_are_within_five_percent_of_exact_and_their_standard_errors_are_honest() -> None:
    from sklearn.ensemble import RandomForestRegressor

    frame = _gaussian_frame(300, 12, seed=6)
    A = frame.to_numpy()
    y = A[:, 0] + A[:, 1] * A[:, 2] + np.abs(A[:, 3]) - A[:, 7] * A[:, 9] + 0.5 * A[:, 11]
    rf = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(frame, y)
    inputs = _inputs(frame, SklearnModel(rf), list(frame.columns))
    ctx = JobContext(seed=11)
    rows = [0, 1, 2, 3, 4, 5]

    result = run(inputs, ctx=ctx, rows=rows, background_size=25)

    assert result.summary["exact"] == 0.0 and result.summary["n_coalitions"] <= 2 * 12 + 2048
    oracle = _tree_shap(rf, frame.iloc[rows], _expanded(background_for(inputs, ctx=ctx, background_size=25)), None)
    error = result.values - oracle
    assert np.linalg.norm(error) / np.linalg.norm(oracle) <= 0.05
    se = result.extras["standard_errors"]
    assert np.all(se > 0)
    # The bootstrap should cover the actual sampling error most of the time.
    assert np.mean(np.abs(error) <= 3 * se) >= 0.9
    np.testing.assert_allclose(result.quality["max_standard_error"], se.max(axis=1))
    _assert_additive(result)


def test_multiclass_values_of_all_classes_sum_to_zero_because_probabilities_sum_to_one() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    X = iris.data
    model = SklearnModel(LogisticRegression(max_iter=500).fit(X, iris.target))
    inputs = _inputs(X.assign(species=iris.target), model, list(X.columns), target="species")

    results = [run(inputs, ctx=JobContext(seed=0), rows=[0, 70, 140], background_size=20, klass=k) for k in (0, 1, 2)]

    for k, result in enumerate(results):
        assert result.class_index == k and result.output_name == f"P({k})"
        np.testing.assert_allclose(result.predictions, model.predict(X.iloc[[0, 70, 140]])[:, k])
        _assert_additive(result)
    np.testing.assert_allclose(sum(r.values for r in results), 0.0, atol=1e-12)


# -- sampling, seeds and the coalition design -----------------------------------------------


def _interaction_inputs() -> AuditInputs:
    frame = _gaussian_frame(50, 12, seed=8)

    def fn(X: pd.DataFrame) -> np.ndarray:
        A = X.to_numpy()
        return np.tanh(A[:, 0] * A[:, 1]) + A[:, 2] * A[:, 3] * A[:, 4] + np.maximum(A[:, 5], A[:, 6]) + A[:, 7:].sum(1)

    return _inputs(frame, FunctionModel(fn, list(frame.columns)), list(frame.columns))


def test_the_same_seed_gives_identical_values_and_another_seed_different_ones() -> None:
    inputs = _interaction_inputs()
    params = dict(rows=[0, 1], background_size=8, n_coalitions=300)

    first = run(inputs, ctx=JobContext(seed=21), **params)
    again = run(inputs, ctx=JobContext(seed=21), **params)
    other = run(inputs, ctx=JobContext(seed=22), **params)

    assert first.summary["exact"] == 0.0
    assert np.array_equal(first.values, again.values)
    assert np.array_equal(first.extras["standard_errors"], again.extras["standard_errors"])
    assert not np.allclose(first.values, other.values, rtol=0, atol=1e-6)
    _assert_additive(other)


@pytest.mark.parametrize("m, budget", [(12, 2072), (9, 300), (30, 2108)])
def test_sampled_design_is_paired_within_budget_and_carries_the_shapley_kernel_mass(m: int, budget: int) -> None:
    design = coalition_design(m, budget, np.random.default_rng(0))

    assert not design.exact and design.n_coalitions <= budget
    sampled = design.masks[design.n_fixed :]
    assert np.array_equal(sampled[0::2], ~sampled[1::2])
    assert len({row.tobytes() for row in design.masks}) == design.n_coalitions
    sizes = design.masks.sum(axis=1)
    assert sizes.min() >= 1 and sizes.max() <= m - 1
    # Enumerated sizes hold all their coalitions at the exact kernel weight.
    kernel = {s: (m - 1) / (s * (m - s)) for s in range(1, m)}
    total = sum(kernel.values())
    for s in np.unique(sizes[: design.n_fixed]):
        assert np.sum(sizes[: design.n_fixed] == s) == math.comb(m, int(s))
        fixed_weights = design.weights[: design.n_fixed]
        np.testing.assert_allclose(fixed_weights[sizes[: design.n_fixed] == s].sum(), kernel[s] / total)
    np.testing.assert_allclose(design.weights.sum(), 1.0)


def test_small_feature_counts_are_enumerated_exactly() -> None:
    design = coalition_design(8, 2 * 8 + 2048, np.random.default_rng(0))
    assert design.exact and design.n_coalitions == 2**8 - 2 and len(design.draws) == 0


# -- raw columns, strings, pipelines ---------------------------------------------------------


@pytest.fixture(scope="module")
def credit() -> tuple[pd.DataFrame, object]:
    from engine.demo import make_credit_frame, train_credit_model

    frame = make_credit_frame(n_rows=300, seed=5)
    return frame, train_credit_model(frame, seed=5)


def _brute_force_shapley(predict: Callable[[pd.DataFrame], np.ndarray], x: pd.DataFrame, bg: Background) -> np.ndarray:
    """Shapley values from the permutation-weight formula, by assigning columns of copies."""
    columns = list(x.columns)
    m = len(columns)
    subsets = list(itertools.product([False, True], repeat=m))
    frames = []
    for subset in subsets:
        f = bg.frame.copy()
        for name, take in zip(columns, subset):
            if take:
                f[name] = x[name].iloc[0]
        frames.append(f)
    out = predict(pd.concat(frames, ignore_index=True)).reshape(len(subsets), bg.size)
    v = dict(zip(subsets, out @ (bg.weights / bg.weights.sum())))
    phi = np.zeros(m)
    for subset in subsets:
        s = sum(subset)
        for j in range(m):
            if not subset[j]:
                with_j = tuple(True if i == j else t for i, t in enumerate(subset))
                phi[j] += math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) * (v[with_j] - v[subset])
    return phi


def test_string_columns_are_explained_as_one_feature_each_through_a_pipeline(credit) -> None:
    from engine.demo import FEATURES

    frame, pipeline = credit
    before = frame.copy()
    model = SklearnModel(pipeline)
    inputs = _inputs(frame, model, list(FEATURES), target="approved")
    ctx = JobContext(seed=2)

    result = run(inputs, ctx=ctx, rows=[4, 17], background_size=12)

    assert result.feature_names == FEATURES and result.values.shape == (2, len(FEATURES))
    background = background_for(inputs, ctx=ctx, background_size=12)
    assert background.frame["neighbourhood"].dtype == frame["neighbourhood"].dtype
    assert set(background.frame["employment"]) <= set(frame["employment"])
    for i, row in enumerate([4, 17]):
        oracle = _brute_force_shapley(lambda X: model.predict(X)[:, 1], inputs.X.iloc[[row]], background)
        np.testing.assert_allclose(result.values[i], oracle, rtol=0, atol=1e-10)
    _assert_additive(result)
    pd.testing.assert_frame_equal(frame, before)


def test_logit_link_explains_log_odds(credit) -> None:
    from engine.demo import FEATURES

    frame, pipeline = credit
    model = SklearnModel(pipeline)
    inputs = _inputs(frame, model, list(FEATURES), target="approved")

    result = run(inputs, ctx=JobContext(seed=2), rows=[4], background_size=12, link="logit", klass=0)

    p = model.predict(frame.iloc[[4]][list(FEATURES)])[0, 0]
    assert result.output_space == "log-odds" and result.class_index == 0
    np.testing.assert_allclose(result.predictions, [math.log(p / (1 - p))])
    _assert_additive(result)


# -- summarised background ----------------------------------------------------------------------


def test_background_summary_keeps_dtypes_weights_and_cluster_modes() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([-10.0, 0.0, 10.0])
    sizes = np.array([50, 30, 20])
    blob = np.repeat(np.arange(3), sizes)
    label = np.array(["low", "mid", "high"], dtype=object)[blob]
    label[::10] = "noise"  # a minority value inside every blob
    frame = pd.DataFrame(
        {
            "value": centres[blob] + rng.normal(scale=0.5, size=blob.size),
            "count": np.repeat([1, 5, 9], sizes),
            "label": pd.array(label, dtype="str"),
        }
    )
    frame.loc[frame.index[blob == 1][:20], "value"] = np.nan  # most of blob 1 misses "value"

    bg = summarise_background(frame, size=3, rng=np.random.default_rng(1))
    again = summarise_background(frame, size=3, rng=np.random.default_rng(1))

    order = np.argsort(bg.frame["count"].to_numpy())
    assert bg.summarised and bg.size == 3 and bg.n_source == 100
    np.testing.assert_array_equal(bg.weights[order], sizes)
    assert list(bg.frame["label"].iloc[order]) == ["low", "mid", "high"]
    assert list(bg.frame.dtypes) == list(frame.dtypes)
    values = bg.frame["value"].iloc[order].to_numpy()
    assert np.isnan(values[1]) and values[0] in set(frame["value"]) and values[2] in set(frame["value"])
    np.testing.assert_allclose(values[[0, 2]], [-10.0, 10.0], atol=0.5)
    pd.testing.assert_frame_equal(bg.frame, again.frame)


def test_k_means_partition_is_nearly_as_tight_as_scikit_learns() -> None:
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_breast_cancer

    from engine.explain._background import _clustering_matrix, _kmeans_labels

    X = load_breast_cancer(as_frame=True).data
    Z = _clustering_matrix(X)  # standardised columns

    def within(labels: np.ndarray) -> float:
        return sum(float(((Z[labels == c] - Z[labels == c].mean(axis=0)) ** 2).sum()) for c in np.unique(labels))

    ours = _kmeans_labels(Z, np.ones(len(X)), 40, np.random.default_rng(0), lambda: None)
    reference = KMeans(n_clusters=40, n_init=1, random_state=0).fit(Z).labels_
    assert len(np.unique(ours)) == 40
    assert within(ours) <= 1.15 * within(reference)
    bg = summarise_background(X, size=40, rng=np.random.default_rng(0))
    assert bg.size == 40 and bg.weights.sum() == len(X)


def test_small_tables_are_their_own_background() -> None:
    frame = _gaussian_frame(20, 3, seed=9)
    bg = summarise_background(frame, size=20, rng=np.random.default_rng(0))
    assert not bg.summarised
    pd.testing.assert_frame_equal(bg.frame, frame)
    np.testing.assert_array_equal(bg.weights, np.ones(20))


# -- batching and cancel -----------------------------------------------------------------------


def test_model_calls_respect_chunk_rows_and_results_do_not_depend_on_chunking() -> None:
    inputs = _interaction_inputs()
    model = inputs.model
    assert isinstance(model, FunctionModel)

    params = dict(rows=[0, 1, 2], background_size=8, n_coalitions=150)
    small = run(inputs, ctx=JobContext(seed=5), chunk_rows=40, **params)
    calls_small = list(model.calls)
    model.calls.clear()
    large = run(inputs, ctx=JobContext(seed=5), **params)

    assert max(calls_small) <= 40
    assert len(model.calls) < len(calls_small)
    np.testing.assert_allclose(small.values, large.values, rtol=0, atol=1e-12)
    assert sum(model.calls) == large.summary["model_rows"]


def test_cancelling_stops_before_the_next_model_call() -> None:
    inputs = _interaction_inputs()
    model = inputs.model
    assert isinstance(model, FunctionModel)
    token = CancelToken()
    seen: dict[str, int] = {}

    def progress(fraction: float, message: str) -> None:
        if "instance-coalitions" in message and not token.is_cancelled:
            token.cancel()
            seen["calls"] = len(model.calls)

    with pytest.raises(Cancelled):
        run(
            inputs,
            ctx=JobContext(seed=1, progress_fn=progress, cancel=token),
            rows=[0, 1],
            background_size=8,
            chunk_rows=64,
        )
    assert len(model.calls) == seen["calls"]


def test_a_job_cancelled_before_it_starts_never_calls_the_model() -> None:
    inputs = _interaction_inputs()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run(inputs, ctx=JobContext(seed=1, cancel=token), rows=[0], background_size=8)
    assert inputs.model.calls == []


def test_progress_reaches_one_and_never_goes_back() -> None:
    inputs = _interaction_inputs()
    fractions: list[float] = []
    run(
        inputs,
        ctx=JobContext(seed=1, progress_fn=lambda f, m: fractions.append(f)),
        rows=[0],
        background_size=8,
        n_coalitions=200,
        chunk_rows=80,
    )
    assert fractions[-1] == 1.0
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))


# -- parameters, errors, result ---------------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({"rows": [0, 60]}, "Row 60 is outside the data, which has 50 rows (numbered from 0)."),
        ({"rows": []}, "No rows of the data were chosen to explain."),
        ({"n_coalitions": 1}, "KernelSHAP's n_coalitions must be 'auto' or a whole number of at least 2, not 1."),
        ({"link": "probit"}, "KernelSHAP's link must be one of identity, logit, not 'probit'."),
        (
            {"l1_reg": "num_features(3)"},
            "KernelSHAP supports l1_reg=False only (no feature selection), not 'num_features(3)'.",
        ),
        ({"link": "logit"}, "The logit link needs a classifier, but the model FunctionModel is a regressor."),
        ({"background_size": 0}, "KernelSHAP's background_size must be a whole number of at least 1, not 0."),
        ({"klass": "yes"}, "The model is a regressor, so no class can be chosen to explain."),
    ],
)
def test_bad_parameters_raise_one_sentence_analysis_errors(params: dict, message: str) -> None:
    inputs = _interaction_inputs()
    with pytest.raises(AnalysisError) as info:
        run(inputs, ctx=JobContext(seed=0), **params)
    assert str(info.value) == message


def test_result_round_trips_and_the_method_is_registered_as_kernelshap() -> None:
    inputs = _interaction_inputs()
    result = METHOD(inputs, ctx=JobContext(seed=3), rows=[1, 2], background_size=6, n_coalitions=100)

    back = AttributionResult.from_dict(result.to_dict())
    assert METHOD.name == "kernelshap" and result.method == "kernelshap"
    assert result.provenance.method == "kernelshap" and result.provenance.seed == 3
    np.testing.assert_array_equal(back.values, result.values)
    np.testing.assert_array_equal(back.extras["standard_errors"], result.extras["standard_errors"])
    assert back.summary == result.summary and back.output_space == "value"
    assert set(result.quality) == {"additivity_error", "max_standard_error"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not result.values.flags.writeable


def test_results_do_not_depend_on_the_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _interaction_inputs()
    params = dict(rows=[0, 1, 2, 3], background_size=8, n_coalitions=150, chunk_rows=40)
    monkeypatch.setenv("PROBITY_THREADS", "1")
    one = run(inputs, ctx=JobContext(seed=5), **params)
    monkeypatch.setenv("PROBITY_THREADS", "3")
    three = run(inputs, ctx=JobContext(seed=5), **params)
    np.testing.assert_array_equal(one.values, three.values)
    np.testing.assert_array_equal(one.extras["standard_errors"], three.extras["standard_errors"])
