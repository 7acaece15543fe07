"""LIME (tabular): lime's semantics, batched; parity with the ``lime`` package itself."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from engine.attribution import AttributionResult
from engine.errors import AnalysisError, Cancelled
from engine.explain import _lime_fit as LF
from engine.explain import lime as L
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.base import Model, Task
from engine.models.sklearn_adapter import SklearnModel
from engine.results import result_from_dict
from engine.schema import Roles


class FunctionModel(Model):
    """A model given by a function of the raw frame; records every frame it is called on."""

    format = "sklearn"

    def __init__(
        self,
        fn: Callable[[pd.DataFrame], np.ndarray],
        columns: tuple[str, ...],
        *,
        classes: tuple[object, ...] | None = None,
        on_call: Callable[[int], None] | None = None,
    ) -> None:
        self.fn = fn
        self.task = Task.REGRESSION if classes is None else Task.CLASSIFICATION
        self.classes = classes
        self.input_columns = columns
        self.frames: list[pd.DataFrame] = []
        self.on_call = on_call

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        self.frames.append(X)
        if self.on_call is not None:
            self.on_call(len(self.frames))
        return self.fn(X)


def _inputs(frame: pd.DataFrame, model: Model) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=None, features=tuple(frame.columns)), model=model)


def _gaussian_frame(n: int = 400, f: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, f)) * np.arange(1, f + 1), columns=[f"x{j}" for j in range(f)])


# -- the batched ridge is scikit-learn's Ridge, and selection is lime's -------------------------


def _random_problem(seed: int, c: int = 3, f: int = 7, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Zt = np.where(rng.random((c, f, n)) < 0.4, 1.0, rng.normal(size=(c, f, n)))
    w = rng.random((c, n)) + 0.05
    y = rng.normal(size=(c, n)) + Zt[:, 0, :] * 2.0 - Zt[:, 3, :]
    return Zt, w, y


def test_batched_ridge_equals_sklearn_weighted_ridge_for_every_instance() -> None:
    from sklearn.linear_model import Ridge

    Zt, w, y = _random_problem(1)
    mask = np.ones((3, 7), dtype=bool)
    mask[1, [2, 5]] = False
    full = LF._weighted_ridge(Zt, w, y, alpha=1.0)
    masked = LF._weighted_ridge(Zt, w, y, alpha=1.0, mask=mask)
    for i in range(3):
        Z = Zt[i].T
        ref = Ridge(alpha=1.0, fit_intercept=True).fit(Z, y[i], sample_weight=w[i])
        np.testing.assert_allclose(full.coef[i], ref.coef_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(full.intercept[i], ref.intercept_, rtol=1e-9)
        np.testing.assert_allclose(full.r2[i], ref.score(Z, y[i], sample_weight=w[i]), rtol=1e-9)
        np.testing.assert_allclose(full.local[i], ref.predict(Z[:1])[0], rtol=1e-9)
        cols = np.flatnonzero(mask[i])
        sub = Ridge(alpha=1.0).fit(Z[:, cols], y[i], sample_weight=w[i])
        np.testing.assert_allclose(masked.coef[i, cols], sub.coef_, rtol=1e-9, atol=1e-12)
        assert np.all(masked.coef[i, ~mask[i]] == 0.0)
        np.testing.assert_allclose(masked.r2[i], sub.score(Z[:, cols], y[i], sample_weight=w[i]), rtol=1e-9)


@pytest.mark.parametrize("method", ["forward_selection", "highest_weights"])
def test_feature_selection_picks_the_features_lime_base_picks(method: str) -> None:
    lime_base = pytest.importorskip("lime.lime_base")
    Zt, w, y = _random_problem(2, c=4, f=8, n=80)
    m = LF._moments(Zt, w, y)
    k = 3
    ours = LF._forward_selection(m, k) if method == "forward_selection" else LF._highest_weights(m, k)
    base = lime_base.LimeBase(kernel_fn=lambda d: d, random_state=0)
    for i in range(4):
        theirs = base.feature_selection(Zt[i].T, y[i], w[i], k, method)
        assert set(np.flatnonzero(ours[i])) == {int(t) for t in theirs}


def test_kernel_is_limes_on_euclidean_distance_to_the_instance() -> None:
    from sklearn.metrics import pairwise_distances

    rng = np.random.default_rng(3)
    Zt = rng.normal(size=(2, 5, 40))
    indicator = np.array([True, False, True, True, False])
    Zt[:, indicator, :] = rng.random((2, 3, 40)) < 0.5
    Zt[:, indicator, 0] = 1.0
    width = 1.7
    ours = L._kernel(Zt, width, indicator=indicator)
    for i in range(2):
        d = pairwise_distances(Zt[i].T, Zt[i].T[:1]).ravel()
        np.testing.assert_allclose(ours[i], np.sqrt(np.exp(-(d**2) / width**2)), rtol=1e-12)


# -- statistics and sampling follow lime's discretiser --------------------------------------


@pytest.mark.parametrize("discretizer", ["quartile", "decile"])
def test_bin_statistics_match_limes_discretizer(discretizer: str) -> None:
    pytest.importorskip("lime")
    from lime.lime_tabular import LimeTabularExplainer

    frame = _gaussian_frame(n=301, f=4, seed=3)
    frame["x1"] = np.round(frame["x1"])  # ties at the cut points
    stats, _ = L._fit_stats(frame, np.arange(3), kinds={}, percentiles=L.DISCRETIZERS[discretizer])
    ex = LimeTabularExplainer(frame.to_numpy(), discretizer=discretizer, random_state=0)
    disc = ex.discretizer
    for k in range(4):
        q = stats.edges[k].size
        np.testing.assert_allclose(stats.edges[k], np.asarray(disc.mins[k][1:]))
        np.testing.assert_allclose(stats.loc[k, : q + 1], disc.means[k], rtol=1e-12)
        np.testing.assert_allclose(stats.spread[k, : q + 1], disc.stds[k], rtol=1e-12)
        probs = np.diff(np.concatenate(([0.0], stats.cum[k, : q + 1])))
        lime_probs = np.zeros(q + 1)
        lime_probs[np.asarray(ex.feature_values[k], dtype=int)] = ex.feature_frequencies[k]
        np.testing.assert_allclose(probs, lime_probs, atol=1e-12)


def test_sampled_values_follow_each_bins_truncated_normal() -> None:
    from scipy.stats import truncnorm

    frame = _gaussian_frame(n=500, f=3, seed=4)
    stats, _ = L._fit_stats(frame, np.arange(1), kinds={}, percentiles=L.DISCRETIZERS["quartile"])
    samples = L._draw_samples(stats, 40_000, np.random.default_rng(0), discretize=True)
    for k in range(3):
        bins = samples.rep_num[k]
        q = stats.edges[k].size
        probs = np.diff(np.concatenate(([0.0], stats.cum[k, : q + 1])))
        observed = np.bincount(bins, minlength=q + 1) / bins.size
        np.testing.assert_allclose(observed, probs, atol=0.01)
        for b in range(q + 1):
            vals = samples.raw_num[k, bins == b]
            a, z = stats.za[k, b], stats.zb[k, b]
            dist = truncnorm(a, z, loc=stats.loc[k, b], scale=stats.spread[k, b])
            lo, hi = dist.support()
            assert vals.min() >= lo and vals.max() <= hi
            assert abs(vals.mean() - dist.mean()) < 5 * dist.std() / np.sqrt(vals.size)


# -- behaviour on models of known structure -----------------------------------------------------


def test_lime_ranks_the_two_features_the_model_uses_on_top() -> None:
    frame = _gaussian_frame(n=400, f=6, seed=5)
    model = FunctionModel(lambda X: np.tanh(X["x1"] / 2.0) - 0.5 * (X["x4"] > 0), tuple(frame.columns))
    result = L.run(
        _inputs(frame, model), ctx=JobContext(seed=1), rows=list(range(20)), num_samples=1500, stability_runs=0
    )
    top2 = np.argsort(-np.abs(result.values), axis=1)[:, :2]
    assert all(set(t) == {1, 4} for t in top2.tolist())
    # Unused features only pick up sampling noise.
    unused = np.abs(result.values[:, [0, 2, 3, 5]])
    assert unused.max() < 0.35 * np.abs(result.values[:, [1, 4]]).min()
    assert np.median(unused) < 0.03


@pytest.mark.parametrize(("k", "selection"), [(2, "auto"), (2, "highest_weights"), (3, "forward_selection")])
def test_feature_selection_keeps_the_used_features_and_zeroes_the_rest(k: int, selection: str) -> None:
    frame = _gaussian_frame(n=400, f=6, seed=5)
    model = FunctionModel(lambda X: np.tanh(X["x1"] / 2.0) - 0.5 * (X["x4"] > 0), tuple(frame.columns))
    result = L.run(
        _inputs(frame, model),
        ctx=JobContext(seed=1),
        rows=list(range(6)),
        num_samples=1500,
        num_features=k,
        feature_selection=selection,
        stability_runs=0,
    )
    assert np.all((result.values != 0).sum(axis=1) == k)
    assert np.all(result.values[:, [1, 4]] != 0)


def test_continuous_mode_recovers_a_linear_model_in_standard_deviations() -> None:
    frame = _gaussian_frame(n=400, f=3, seed=6)
    model = FunctionModel(lambda X: 2.0 * X["x0"] - X["x2"], tuple(frame.columns))
    result = L.run(
        _inputs(frame, model),
        ctx=JobContext(seed=2),
        rows=[0, 7, 9],
        num_samples=2000,
        discretize_continuous=False,
        stability_runs=0,
    )
    sd = frame.std(ddof=0).to_numpy()
    # f = 2 sd0 z0 - sd2 z2 + const exactly; ridge(alpha=1) shrinks by ~1/sum(weights) only.
    np.testing.assert_allclose(result.values, np.tile([2 * sd[0], 0.0, -sd[2]], (3, 1)), rtol=2e-2, atol=2e-2)
    assert np.all(result.quality["r2"] > 0.999)
    np.testing.assert_allclose(result.quality["local_prediction"], result.predictions, rtol=0.01)


def test_string_categorical_columns_are_sampled_from_their_values_with_missing_kept() -> None:
    rng = np.random.default_rng(7)
    n = 600
    colour = rng.choice(np.array(["red", "green", "blue"]), size=n, p=[0.5, 0.3, 0.2]).astype(object)
    colour[rng.random(n) < 0.1] = None
    size = rng.normal(size=n)
    size[rng.random(n) < 0.2] = np.nan
    frame = pd.DataFrame({"colour": pd.array(colour, dtype="str"), "size": size})
    model = FunctionModel(lambda X: (X["colour"] == "red").to_numpy(dtype=float), ("colour", "size"))
    red_rows = np.flatnonzero(frame["colour"].to_numpy() == "red")[:5]
    result = L.run(
        _inputs(frame, model), ctx=JobContext(seed=3), rows=red_rows.tolist(), num_samples=3000, stability_runs=0
    )
    # f is exactly the indicator "same colour as the instance", so the surrogate is that indicator.
    np.testing.assert_allclose(result.values[:, 0], 1.0, atol=0.01)
    np.testing.assert_allclose(result.values[:, 1], 0.0, atol=0.01)
    assert np.all(result.quality["r2"] > 0.99)
    perturbed = pd.concat(model.frames[1:])
    assert perturbed["colour"].dtype == frame["colour"].dtype
    assert set(perturbed["colour"].dropna()) <= {"red", "green", "blue"}
    assert perturbed["colour"].isna().mean() == pytest.approx(0.1, abs=0.03)
    assert perturbed["size"].isna().mean() == pytest.approx(0.2, abs=0.03)
    assert any("missing values" in w for w in result.warnings)


def test_numeric_codes_the_schema_calls_categorical_are_sampled_as_categories(tmp_path) -> None:
    from engine.schema import ColumnInfo, ColumnKind, Dataset, ReadOptions, Schema

    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"grade": rng.integers(1, 4, size=300), "x": rng.normal(size=300)})
    schema = Schema(
        (
            ColumnInfo("grade", ColumnKind.CATEGORICAL, "int64", 0, 3),
            ColumnInfo("x", ColumnKind.NUMERIC, "float64", 0, 300),
        )
    )
    dataset = Dataset(frame, tmp_path / "grades.csv", "0" * 64, "csv", ReadOptions(), schema)
    model = FunctionModel(lambda X: X["grade"].to_numpy(dtype=float), ("grade", "x"))
    inputs = AuditInputs.from_dataset(dataset, Roles(target=None, features=("grade", "x")), model)
    L.run(inputs, ctx=JobContext(seed=0), rows=[0], num_samples=500, stability_runs=0)
    perturbed = pd.concat(model.frames[1:])
    assert set(perturbed["grade"].unique()) == {1, 2, 3}
    assert perturbed["grade"].dtype == frame["grade"].dtype


# -- parity with lime's explain_instance ---------------------------------------------------------

_SEEDS = range(6)
_N_SAMPLES = 1000
_ROWS = [0, 13, 57, 101, 300]


@pytest.fixture(scope="module")
def cancer() -> tuple[AuditInputs, np.ndarray, np.ndarray]:
    """Breast cancer, a small forest, and lime's seed-averaged coefficients and median R² for 5 rows."""
    pytest.importorskip("lime")
    from lime.lime_tabular import LimeTabularExplainer
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    data = load_breast_cancer()
    names = [str(n) for n in data.feature_names]
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(data.data, data.target)
    coefs = np.zeros((len(_SEEDS), len(_ROWS), len(names)))
    r2 = []
    for s in _SEEDS:
        ex = LimeTabularExplainer(data.data, feature_names=names, random_state=s)
        for i, r in enumerate(_ROWS):
            e = ex.explain_instance(data.data[r], forest.predict_proba, num_features=len(names), num_samples=_N_SAMPLES)
            for feature, weight in e.local_exp[1]:
                coefs[s, i, feature] = weight
            r2.append(e.score)
    frame = pd.DataFrame(data.data, columns=names)
    return _inputs(frame, SklearnModel(forest)), coefs.mean(axis=0), np.asarray(r2)


@pytest.mark.parametrize("sampling", ["shared", "independent"])
def test_seed_averaged_coefficients_and_r2_agree_with_lime(cancer, sampling: str) -> None:
    inputs, lime_coef, lime_r2 = cancer
    runs = [
        L.run(inputs, ctx=JobContext(seed=s), rows=_ROWS, num_samples=_N_SAMPLES, sampling=sampling, stability_runs=0)
        for s in _SEEDS
    ]
    ours = np.mean([r.values for r in runs], axis=0)
    assert np.corrcoef(ours.ravel(), lime_coef.ravel())[0, 1] >= 0.95
    ours_r2 = np.concatenate([r.quality["r2"] for r in runs])
    assert abs(np.median(ours_r2) - np.median(lime_r2)) <= 0.05
    assert runs[0].predictions == pytest.approx(inputs.model.predict(inputs.X.iloc[_ROWS])[:, 1])


# -- determinism, designs, stability, cancel, errors --------------------------------------------


def _small_classifier() -> AuditInputs:
    frame = _gaussian_frame(n=300, f=5, seed=8)
    frame["kind"] = pd.Categorical(np.where(frame["x0"] > 0, "a", "b"))

    def proba(X: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(X["x1"].to_numpy() - X["x3"].to_numpy() / 2 + (X["kind"] == "a").to_numpy())))
        return np.column_stack([1 - p, p])

    return _inputs(frame, FunctionModel(proba, tuple(frame.columns), classes=("no", "yes")))


@pytest.mark.parametrize("sampling", ["shared", "independent"])
def test_same_seed_gives_identical_results_and_another_seed_does_not(sampling: str) -> None:
    inputs = _small_classifier()
    kw = dict(rows=[1, 2, 3], num_samples=300, sampling=sampling, stability_runs=2)
    a = L.run(inputs, ctx=JobContext(seed=11), **kw)
    b = L.run(inputs, ctx=JobContext(seed=11), **kw)
    c = L.run(inputs, ctx=JobContext(seed=12), **kw)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.quality["coef_spread"], b.quality["coef_spread"])
    assert not np.allclose(a.values, c.values)
    assert a.output_name == "P(yes)" and a.class_index == 1


def test_designs_call_the_model_on_the_expected_number_of_rows() -> None:
    inputs = _small_classifier()
    shared = L.run(inputs, ctx=JobContext(seed=0), rows=[0, 1, 2, 3], num_samples=200, stability_runs=0)
    indep = L.run(
        inputs, ctx=JobContext(seed=0), rows=[0, 1, 2, 3], num_samples=200, sampling="independent", stability_runs=0
    )
    assert shared.summary["model_rows"] == 4 + 199
    assert indep.summary["model_rows"] == 4 + 4 * 199


def test_independent_rows_do_not_depend_on_their_companions_or_chunking() -> None:
    inputs = _small_classifier()
    kw = dict(num_samples=250, sampling="independent", stability_runs=0)
    alone = L.run(inputs, ctx=JobContext(seed=5), rows=[7], **kw)
    batch = L.run(inputs, ctx=JobContext(seed=5), rows=[3, 7, 9], chunk_rows=300, **kw)
    np.testing.assert_allclose(batch.values[1], alone.values[0], rtol=1e-10, atol=1e-13)


def test_shared_results_do_not_depend_on_chunk_size() -> None:
    inputs = _small_classifier()
    kw = dict(rows=[0, 4], num_samples=400, stability_runs=0)
    big = L.run(inputs, ctx=JobContext(seed=9), **kw)
    small = L.run(inputs, ctx=JobContext(seed=9), chunk_rows=37, **kw)
    np.testing.assert_allclose(small.values, big.values, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("sampling", ["shared", "independent"])
def test_memory_blocks_and_solve_groups_change_nothing(monkeypatch: pytest.MonkeyPatch, sampling: str) -> None:
    inputs = _small_classifier()
    kw = dict(rows=[0, 1, 2, 3, 4, 5, 6], num_samples=120, sampling=sampling, num_features=3, stability_runs=0)
    whole = L.run(inputs, ctx=JobContext(seed=4), **kw)
    monkeypatch.setattr(L, "_BLOCK_ELEMENTS", 2 * 120 * 6)  # two instances per block
    monkeypatch.setattr(L, "_SOLVE_ELEMENTS", 3 * 6 * 6)  # three instances per solve
    pieces = L.run(inputs, ctx=JobContext(seed=4), **kw)
    np.testing.assert_allclose(pieces.values, whole.values, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(pieces.quality["r2"], whole.quality["r2"], rtol=1e-10)


def test_stability_figures_lie_in_the_unit_interval_and_can_be_turned_off() -> None:
    inputs = _small_classifier()
    res = L.run(inputs, ctx=JobContext(seed=1), rows=[0, 1, 2, 3, 4], num_samples=150, stability_runs=3)
    for key in ("stability_jaccard", "coef_spread"):
        assert res.quality[key].shape == (5,)
        assert np.all((res.quality[key] >= 0) & (res.quality[key] <= 1))
    assert res.extras["coef_std"].shape == (5, 6)
    assert np.all(res.extras["coef_std"] > 0)
    assert 0 <= res.summary["median_jaccard"] <= 1
    off = L.run(inputs, ctx=JobContext(seed=1), rows=[0], num_samples=150, stability_runs=0)
    assert "stability_jaccard" not in off.quality and "coef_std" not in off.extras


def test_stability_closed_forms() -> None:
    coefs = np.array([[[3.0, 2.0, 1.0, 0.0]], [[3.0, 2.0, 0.0, 1.0]], [[3.0, 2.0, 1.0, 0.0]]])
    jaccard, spread, sd = L._stability(coefs, 3)
    # Pairs: {0,1,2} vs {0,1,3} twice (2/4), identical once (1).
    assert jaccard[0] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    expected_sd = np.array([0.0, 0.0, np.std([1, 0, 1], ddof=1), np.std([0, 1, 0], ddof=1)])
    np.testing.assert_allclose(sd[0], expected_sd)
    assert spread[0] == pytest.approx(expected_sd.sum() / (3 + 2 + 2 / 3 + 1 / 3 + expected_sd.sum()))


def test_cancel_stops_between_model_calls() -> None:
    frame = _gaussian_frame(n=200, f=3, seed=10)
    token = CancelToken()

    def cancel_on_second_call(n_calls: int) -> None:
        if n_calls == 2:
            token.cancel()

    model = FunctionModel(lambda X: X["x0"].to_numpy(), tuple(frame.columns), on_call=cancel_on_second_call)
    with pytest.raises(Cancelled):
        L.run(
            _inputs(frame, model),
            ctx=JobContext(seed=0, cancel=token),
            rows=list(range(10)),
            num_samples=500,
            sampling="independent",
            chunk_rows=600,
            stability_runs=0,
        )
    assert len(model.frames) == 2


def test_progress_rises_to_one_and_the_result_round_trips() -> None:
    inputs = _small_classifier()
    seen: list[float] = []
    res = L.run(
        inputs,
        ctx=JobContext(seed=0, progress_fn=lambda f, m: seen.append(f)),
        rows=[0, 1],
        num_samples=100,
        stability_runs=2,
    )
    assert seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:]))
    back = result_from_dict(res.to_dict())
    assert isinstance(back, AttributionResult) and back.method == "lime"
    np.testing.assert_array_equal(back.values, res.values)
    np.testing.assert_array_equal(back.extras["intercepts"], res.extras["intercepts"])
    assert res.provenance.parameters["sampling"] == "shared"
    assert L.METHOD.name == "lime" and L.METHOD.defaults["num_samples"] == 5000


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sampling": "joint"}, "LIME's sampling design must be one of 'shared', 'independent', not 'joint'."),
        ({"stability_runs": 1}, "LIME's number of stability runs must be 0 (off) or at least 2, not 1."),
        ({"rows": [0, 300]}, "Row position 300 is outside the data, which has 300 rows (positions 0 to 299)."),
        ({"kernel_width": 0}, "LIME's kernel width must be a positive number, not 0."),
        ({"discretizer": "entropy"}, "LIME's discretizer must be one of 'quartile', 'decile', not 'entropy'."),
    ],
)
def test_bad_parameters_are_refused_with_one_sentence(params: dict, message: str) -> None:
    with pytest.raises(AnalysisError) as info:
        L.run(_small_classifier(), ctx=JobContext(seed=0), num_samples=50, **params)
    assert str(info.value) == message


@pytest.mark.parametrize("sampling", ["shared", "independent"])
def test_results_do_not_depend_on_the_number_of_threads(monkeypatch: pytest.MonkeyPatch, sampling: str) -> None:
    inputs = _small_classifier()
    kw = dict(rows=[0, 2, 5, 8], num_samples=300, sampling=sampling, stability_runs=2, chunk_rows=90)
    monkeypatch.setenv("PROBITY_THREADS", "1")
    one = L.run(inputs, ctx=JobContext(seed=6), **kw)
    monkeypatch.setenv("PROBITY_THREADS", "3")
    three = L.run(inputs, ctx=JobContext(seed=6), **kw)
    np.testing.assert_array_equal(one.values, three.values)
    np.testing.assert_array_equal(one.quality["r2"], three.quality["r2"])
