"""Structures that compiled code follows are checked before any prediction, and the first
prediction of a loaded model runs in a child process, so a native crash is a clear error."""

from __future__ import annotations

import copy
import pickle
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    BaggingClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.neighbors import (
    KernelDensity,
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
    RadiusNeighborsClassifier,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC, NuSVC, NuSVR, OneClassSVM
from threadpoolctl import threadpool_limits

from engine.errors import ModelError, UntrustedModelError
from engine.hashing import sha256_bytes
from engine.models import SklearnModel, load_model, probe
from engine.models.native_checks import validate_native_structures
from engine.models.probe import ModelCrashError, probe_model, probe_rows

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # SVC(probability=True) is deprecated in 1.9


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Four numeric inputs, a binary, a three-class and a numeric target."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(90, 4))
    binary = (X[:, 0] > 0).astype(int)
    three = np.digitize(X[:, 1], [-0.5, 0.5])
    numeric = 2 * X[:, 0] - X[:, 2]
    return X, binary, three, numeric


def _fitted(est: Any, X: Any, y: Any) -> Any:
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        return est.fit(X, y) if y is not None else est.fit(X)


def _refusal(est: Any) -> str:
    with pytest.raises(ModelError) as err:
        validate_native_structures(est)
    return str(err.value)


# ---------------------------------------------------------------------------
# Legitimate models pass
# ---------------------------------------------------------------------------


def _legitimate(data) -> list[tuple[str, Any]]:
    X, binary, three, numeric = data
    frame = pd.DataFrame({"x": X[:, 0], "colour": np.where(X[:, 1] > 0, "red", "blue")})
    cat = np.column_stack([X[:, :3], (np.abs(X[:, 3]) * 2).astype(int)])
    return [
        ("svc", _fitted(SVC(probability=True, random_state=0), X, three)),
        ("svc-binary-poly", _fitted(SVC(kernel="poly", probability=True, class_weight="balanced"), X, binary)),
        ("svc-sparse", _fitted(SVC(probability=True, random_state=0), sp.csr_matrix(X), three)),
        ("nusvc", _fitted(NuSVC(), X, three)),
        ("svr", _fitted(SVR(), X, numeric)),
        ("svr-sparse", _fitted(SVR(), sp.csr_matrix(X), numeric)),
        ("svr-precomputed", _fitted(SVR(kernel="precomputed"), X @ X.T, numeric)),
        ("nusvr", _fitted(NuSVR(), X, numeric)),
        ("one-class", _fitted(OneClassSVM(), X, None)),
        ("linear-svc", _fitted(LinearSVC(), X, three)),
        ("knn-kd", _fitted(KNeighborsClassifier(algorithm="kd_tree"), X, three)),
        (
            "knn-ball-mahalanobis",
            _fitted(
                KNeighborsClassifier(algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(4)}),
                X,
                three,
            ),
        ),
        (
            "knn-ball-weighted",
            _fitted(
                KNeighborsClassifier(algorithm="ball_tree", metric="minkowski", metric_params={"w": np.ones(4)}),
                X,
                binary,
            ),
        ),
        ("knn-brute-sparse", _fitted(KNeighborsClassifier(algorithm="brute"), sp.csr_matrix(X), three)),
        ("knn-multi-output", _fitted(KNeighborsClassifier(), X, np.column_stack([binary, three]))),
        ("radius", _fitted(RadiusNeighborsClassifier(radius=3.0), X, three)),
        ("knn-regressor-precomputed", _fitted(KNeighborsRegressor(metric="precomputed"), np.abs(X @ X.T), numeric)),
        ("haversine", _fitted(NearestNeighbors(algorithm="ball_tree", metric="haversine"), X[:, :2], None)),
        ("kernel-density", _fitted(KernelDensity(), X, None)),
        ("logistic", _fitted(LogisticRegression(), X, three)),
        ("logistic-sparse-coef", _fitted(LogisticRegression(), X, binary).sparsify()),
        ("ridge-classifier", _fitted(RidgeClassifier(), X, binary)),
        ("sgd", _fitted(SGDClassifier(random_state=0), X, three)),
        ("lda", _fitted(LinearDiscriminantAnalysis(), X, three)),
        ("linear-two-targets", _fitted(LinearRegression(), X, np.column_stack([numeric, -numeric]))),
        ("gradient-boosting", _fitted(GradientBoostingClassifier(n_estimators=3), X, three)),
        ("gradient-boosting-regressor", _fitted(GradientBoostingRegressor(n_estimators=3), X, numeric)),
        (
            "hist-gradient-boosting-categorical",
            _fitted(HistGradientBoostingClassifier(max_iter=3, categorical_features=[3]), cat, three),
        ),
        ("forest", _fitted(RandomForestClassifier(n_estimators=3, random_state=0), X, three)),
        ("isolation-forest", _fitted(IsolationForest(n_estimators=3, max_features=2, random_state=0), X, None)),
        ("bagging", _fitted(BaggingClassifier(max_features=2, n_estimators=3, random_state=0), X, three)),
        ("splines", _fitted(make_pipeline(SplineTransformer(), LinearRegression()), X, numeric)),
        (
            "column-transformer",
            _fitted(
                Pipeline(
                    [
                        (
                            "prep",
                            ColumnTransformer([("num", StandardScaler(), ["x"]), ("cat", OneHotEncoder(), ["colour"])]),
                        ),
                        ("svc", SVC(probability=True, random_state=0)),
                    ]
                ),
                frame,
                binary,
            ),
        ),
    ]


def test_legitimate_models_pass_every_native_check(data) -> None:
    for label, est in _legitimate(data):
        try:
            validate_native_structures(est)
        except ModelError as exc:  # pragma: no cover - the failure message names the model
            pytest.fail(f"{label}: {exc}")


# ---------------------------------------------------------------------------
# libsvm: a crafted skops SVC loads without trust, so its arrays are checked
# ---------------------------------------------------------------------------


def _set(**fields: Any) -> Callable[[Any], None]:
    def tamper(est: Any) -> None:
        for name, value in fields.items():
            setattr(est, name, value(est) if callable(value) else value)

    return tamper


_SVC_TAMPERING: dict[str, tuple[Callable[[Any], None], str]] = {
    # The red team's class: libsvm reads len(support_) support vectors from a shorter array.
    "support-longer-than-vectors": (
        _set(support_=lambda m: np.arange(2_000_000, dtype=np.int32)),
        "_n_support adds up to {n_sv}, but support_ has 2000000 entries",
    ),
    "fewer-vector-rows": (
        _set(support_vectors_=lambda m: np.ascontiguousarray(m.support_vectors_[:2])),
        "support_vectors_ has the shape (2, 4), not ({n_sv}, 4)",
    ),
    "dual-coef-too-short": (
        _set(_dual_coef_=lambda m: np.ascontiguousarray(m._dual_coef_[:, :3])),
        "_dual_coef_ has the shape (2, 3), not (2, {n_sv})",
    ),
    "negative-count": (
        _set(_n_support=lambda m: m._n_support + np.array([-(10**6), 10**6, 0], dtype=np.int32)),
        "_n_support has a negative count",
    ),
    "huge-count": (
        _set(_n_support=lambda m: np.array([2**30, 0, 0], dtype=np.int32)),
        "_n_support adds up to 1073741824, but support_ has {n_sv} entries",
    ),
    "class-count-disagrees": (
        _set(_n_support=lambda m: np.array([m._n_support.sum(), 0], dtype=np.int32)),
        "_n_support has 2 entries, but classes_ has 3",
    ),
    "intercepts-missing": (_set(_intercept_=np.zeros(1)), "_intercept_ has 1 entries, not 3"),
    "probabilities-short": (_set(_probA=np.zeros(1), _probB=np.zeros(1)), "_probA has 1 entries, not 0 or 3"),
    "unknown-kernel": (
        _set(kernel="laplacian"),
        "kernel is 'laplacian', not one of linear, poly, precomputed, rbf, sigmoid",
    ),
    "claims-regression": (_set(_impl="epsilon_svr"), "_impl is 'epsilon_svr', but SVC is 'c_svc'"),
    "support-index-outside-training-rows": (
        _set(support_=lambda m: m.support_ + np.int32(10**6)),
        "support_ points outside the 90 training rows",
    ),
    "sparse-flag-on-dense-arrays": (
        _set(_sparse=True),
        "support_vectors_ is not a CSR sparse matrix, but the model is sparse",
    ),
}


@pytest.mark.parametrize("case", sorted(_SVC_TAMPERING))
def test_tampered_svc_skops_is_refused_before_any_prediction(tmp_path: Path, data, case: str) -> None:
    X, _, three, _ = data
    svc = _fitted(SVC(probability=True, random_state=0), X, three)
    tamper, problem = _SVC_TAMPERING[case]
    bad = copy.deepcopy(svc)
    tamper(bad)
    path = tmp_path / f"{case}.skops"
    sio.dump(bad, path)
    assert sio.get_untrusted_types(file=path) == []  # skops would load it without asking
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert not isinstance(err.value, UntrustedModelError)
    expected = problem.format(n_sv=len(svc.support_))
    assert str(err.value) == f"{case}.skops contains an SVC whose {expected}, so it is not used."


def test_tampered_sparse_svm_and_nested_svm_are_refused(data) -> None:
    X, _, three, numeric = data
    sparse = _fitted(SVR(), sp.csr_matrix(X), numeric)
    bad = copy.deepcopy(sparse)
    bad.support_vectors_.indices[0] = 10**6  # a column far outside the 4 inputs
    assert "support_vectors_ is a csr sparse matrix whose indices point outside its 4 columns" in _refusal(bad)
    bad = copy.deepcopy(sparse)
    bad._dual_coef_ = sp.csr_matrix(np.ones((1, 2)))
    assert "_dual_coef_ does not hold 1 x" in _refusal(bad)

    pipe = _fitted(make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), X, three)
    pipe[-1]._intercept_ = np.zeros(7)
    assert _refusal(pipe) == "The model contains an SVC whose _intercept_ has 7 entries, not 3, so it is not used."


def test_linear_svm_coefficient_shapes_are_checked(data) -> None:
    X, binary, three, _ = data
    svc = _fitted(LinearSVC(), X, three)
    svc.coef_ = svc.coef_[:, :2].copy()
    assert _refusal(svc) == (
        "The model contains a LinearSVC whose coef_ has 2 columns, but the model takes 4 inputs, so it is not used."
    )


# ---------------------------------------------------------------------------
# Nearest neighbours
# ---------------------------------------------------------------------------


def _with_tree_state(est: Any, index: int, value: Any) -> Any:
    """A copy of ``est`` whose search tree has ``value`` as state item ``index``."""
    bad = copy.deepcopy(est)
    state = list(bad._tree.__getstate__())
    state[index] = value
    bad._tree.__setstate__(tuple(state))
    return bad


def test_tampered_neighbour_structures_are_refused(data) -> None:
    X, _, three, _ = data
    knn = _fitted(KNeighborsClassifier(algorithm="kd_tree", leaf_size=5), X, three)
    validate_native_structures(knn)
    idx = knn._tree.__getstate__()[1].copy()
    idx[3] = 10**9
    assert _refusal(_with_tree_state(knn, 1, idx)) == (
        "The model contains a KNeighborsClassifier whose _tree.idx_array is not a permutation of the 90 data rows, "
        "so it is not used."
    )
    nodes = knn._tree.__getstate__()[2].copy()
    nodes["idx_end"][-1] = 10**6
    assert "_tree.node_data has a node whose rows fall outside the 90 data rows" in _refusal(
        _with_tree_state(knn, 2, nodes)
    )
    nodes = knn._tree.__getstate__()[2].copy()
    nodes["is_leaf"][:] = 0  # the last nodes would have children past the array
    assert "_tree.node_data has an inner node whose children lie past" in _refusal(_with_tree_state(knn, 2, nodes))
    bounds = np.ascontiguousarray(knn._tree.__getstate__()[3][:, :1])
    assert "_tree.node_bounds has the shape (2, 1, 4)" in _refusal(_with_tree_state(knn, 3, bounds))

    bad = copy.deepcopy(knn)
    bad._y = bad._y.copy()
    bad._y[0] = 7  # the class-mode kernel counts votes per class code, unchecked
    assert "whose _y has class numbers outside the 3 classes" in _refusal(bad)
    bad = copy.deepcopy(knn)
    bad._fit_X = np.ascontiguousarray(X[:, :2])
    assert "whose _fit_X has the shape (90, 2), not (90, 4)" in _refusal(bad)

    ball = _fitted(
        KNeighborsClassifier(algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(4)}), X, three
    )
    bad = copy.deepcopy(ball)
    metric = bad._tree.__getstate__()[11]
    metric.__setstate__((2.0, np.zeros(1), np.eye(2)))  # the distance reads a 4 x 4 matrix
    assert "whose _tree.dist_metric.VI has the shape (2, 2), not (4, 4)" in _refusal(bad)
    bad = copy.deepcopy(ball)
    bad.effective_metric_ = "manhatten"
    assert "effective_metric_ is 'manhatten', which is not a distance scikit-learn knows" in _refusal(bad)


# ---------------------------------------------------------------------------
# Linear models, ensembles, splines, sparse matrices
# ---------------------------------------------------------------------------


def test_linear_coefficient_shapes_are_checked(data) -> None:
    X, binary, three, numeric = data
    logistic = _fitted(LogisticRegression(), X, three)
    bad = copy.deepcopy(logistic)
    bad.coef_ = bad.coef_[:2].copy()
    assert _refusal(bad) == (
        "The model contains a LogisticRegression whose coef_ has the shape (2, 4), but 3 classes need 3 rows, "
        "so it is not used."
    )
    bad = copy.deepcopy(logistic)
    bad.intercept_ = np.zeros(5)
    assert "whose intercept_ has the shape (5,), but coef_ has 3 rows" in _refusal(bad)
    regression = _fitted(LinearRegression(), X, numeric)
    regression.coef_ = np.zeros(9)
    assert "whose coef_ has 9 columns, but the model takes 4 inputs" in _refusal(regression)
    sparse = _fitted(LogisticRegression(), X, binary).sparsify()
    sparse.coef_.indices[0] = 40
    assert "LogisticRegression whose coef_ is a csr sparse matrix whose indices point outside its 4 columns" in (
        _refusal(sparse)
    )


def test_ensembles_feed_their_trees_only_columns_they_have(data) -> None:
    X, _, three, numeric = data
    boosting = _fitted(GradientBoostingClassifier(n_estimators=3), X, three)
    bad = copy.deepcopy(boosting)
    bad.estimators_ = bad.estimators_[:, :2]  # predict_stages writes 2 columns of 3
    assert "whose estimators_ has 2 trees per stage, but n_trees_per_iteration_ is 3" in _refusal(bad)
    regressor = _fitted(GradientBoostingRegressor(n_estimators=3), X, numeric)
    wide = _fitted(GradientBoostingRegressor(n_estimators=1), np.hstack([X, X]), numeric)
    bad = copy.deepcopy(regressor)
    bad.estimators_[1, 0] = wide.estimators_[0, 0]  # reads 8 columns of 4-column data
    assert "GradientBoostingRegressor whose estimators_[1, 0].n_features_in_ is 8, but the model takes 4" in (
        _refusal(bad)
    )

    forest = _fitted(RandomForestClassifier(n_estimators=2, random_state=0), X, three)
    wide_tree = _fitted(RandomForestClassifier(n_estimators=1, random_state=0), np.hstack([X, X]), three)
    forest.estimators_[1] = wide_tree.estimators_[0]  # called with check_input=False
    assert "RandomForestClassifier whose estimators_[1].n_features_in_ is 8, but the forest takes 4" in (
        _refusal(forest)
    )

    tree_model = forest.estimators_[0]
    tree_model.n_features_in_ = 2  # the tree itself still reads 4 columns
    assert "DecisionTreeClassifier whose tree_.n_features is 4, but the estimator takes 2 columns" in (
        _refusal(tree_model)
    )

    isolation = _fitted(IsolationForest(n_estimators=2, max_features=2, random_state=0), X, None)
    isolation.estimators_features_[0] = np.array([0, 40])
    assert "estimators_features_[0] names a column outside the 4 inputs" in _refusal(isolation)


def test_categorical_split_on_a_numeric_input_is_refused(data) -> None:
    X = data[0]
    codes = (np.abs(X[:, 3]) * 3).astype(int)
    cat = np.column_stack([X[:, :3], codes])
    hgb = _fitted(HistGradientBoostingClassifier(max_iter=3, categorical_features=[3]), cat, codes % 3)
    assert any((p.nodes["is_categorical"] & (p.nodes["is_leaf"] == 0)).any() for row in hgb._predictors for p in row)
    hgb._bin_mapper.is_categorical_ = np.zeros(4, dtype=np.uint8)  # known-category lookup row would not exist
    assert "splits on categories of an input that is not categorical" in _refusal(hgb)


def test_spline_coefficients_must_cover_the_knots(data) -> None:
    X, _, _, numeric = data
    pipe = _fitted(make_pipeline(SplineTransformer(), LinearRegression()), X, numeric)
    spline = pipe[0].bsplines_[1]
    spline.c = spline.c[:2].copy()
    assert "SplineTransformer whose bsplines_[1].c does not hold the" in _refusal(pipe)


def test_whole_number_input_width_is_required(data) -> None:
    X, _, three, _ = data
    model = _fitted(LogisticRegression(), X, three)
    model.n_features_in_ = 4.5
    assert _refusal(model) == (
        "The model contains a LogisticRegression whose n_features_in_ is 4.5, not a positive whole number, "
        "so it is not used."
    )


def test_sklearn_model_checks_before_it_can_predict(data) -> None:
    X, _, three, _ = data
    svc = _fitted(SVC(probability=True, random_state=0), X, three)
    svc.support_ = np.arange(2_000_000, dtype=np.int32)
    with pytest.raises(ModelError, match="whose _n_support adds up to"):
        SklearnModel(svc)


def test_tampered_pickled_knn_is_refused_even_when_trusted(tmp_path: Path, data) -> None:
    X, _, three, _ = data
    knn = _fitted(KNeighborsClassifier(algorithm="kd_tree", leaf_size=5), X, three)
    idx = knn._tree.__getstate__()[1].copy()
    idx[0] = -(10**9)
    path = tmp_path / "knn.pkl"
    path.write_bytes(pickle.dumps(_with_tree_state(knn, 1, idx)))
    with pytest.raises(ModelError) as err:
        load_model(path, trusted_sha256=[sha256_bytes(path.read_bytes())])
    assert str(err.value) == (
        "knn.pkl contains a KNeighborsClassifier whose _tree.idx_array is not a permutation of the 90 data rows, "
        "so it is not used."
    )


# ---------------------------------------------------------------------------
# The first prediction runs in a child process
# ---------------------------------------------------------------------------


class SvmBuiltAtPredictTime(ClassifierMixin, BaseEstimator):
    """A vendor's model whose own code assembles a malformed SVC while predicting.

    Every structure it holds when loaded is sound, so no check can see the fault: only
    running it shows that libsvm then reads two million support vectors from an array of
    a few dozen and the process dies of a segmentation fault.
    """

    def fit(self, X: Any, y: Any) -> SvmBuiltAtPredictTime:
        self.svc_ = SVC(probability=True, random_state=0).fit(X, y)
        self.classes_ = self.svc_.classes_
        self.n_features_in_ = self.svc_.n_features_in_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        svc = copy.deepcopy(self.svc_)
        svc.support_ = np.arange(2_000_000, dtype=np.int32)
        return svc.predict_proba(np.asarray(X, dtype=np.float64))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


@pytest.fixture(scope="module")
def crashing_model(tmp_path_factory: pytest.TempPathFactory, data) -> tuple[Path, str, pd.DataFrame]:
    """A trusted pickle whose first prediction kills the process natively, and a table it would audit."""
    X, binary, _, _ = data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    folder = tmp_path_factory.mktemp("crash")
    path = folder / "crashes.pkl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path.write_bytes(pickle.dumps(SvmBuiltAtPredictTime().fit(frame, binary)))
    table = frame.assign(label=binary)
    table.to_csv(folder / "table.csv", index=False)
    return path, sha256_bytes(path.read_bytes()), table


def _crash_sentence(name: str) -> str:
    return (
        rf"^The model {name} crashed a test process while predicting \(signal \d+, SIG[A-Z]+\), "
        r"so it was not used\.$"
    )


def test_native_crash_in_the_first_prediction_is_a_clear_error(crashing_model, monkeypatch) -> None:
    path, sha, table = crashing_model
    model = load_model(path, trusted_sha256=[sha], allow_unreviewed=True)  # loading runs no prediction
    with pytest.raises(ModelCrashError) as err:
        probe_model(model, rows=table[["a", "b", "c", "d"]])
    assert re.match(_crash_sentence("crashes.pkl"), str(err.value))
    assert "SIGSEGV" in str(err.value) or "SIGBUS" in str(err.value)
    assert err.value.exit_code == 3 and err.value.sha256 == sha

    # The outcome is remembered: the same file is refused again without another child.
    def no_child(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("probed twice")

    monkeypatch.setattr(probe, "_run_child", no_child)
    again = load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    with pytest.raises(ModelCrashError) as second:
        probe_model(again)
    assert str(second.value) == str(err.value)


def test_cli_audit_of_a_crashing_model_exits_3_with_one_sentence(crashing_model, tmp_path: Path, capsys) -> None:
    from engine.cli import main

    path, sha, _ = crashing_model
    code = main(
        [
            "audit",
            "--data",
            str(path.parent / "table.csv"),
            "--model",
            str(path),
            "--target",
            "label",
            "--trust-model",
            sha,
            "--allow-unreviewed",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(_crash_sentence("crashes.pkl")[1:-1], err)
    assert not (tmp_path / "out" / "results.json").exists()


def test_gui_model_intake_refuses_a_crashing_model(crashing_model) -> None:
    from engine.jobs import JobContext
    from gui.tasks import intake_model

    path, sha, _ = crashing_model
    intake = intake_model(path, trusted_sha256=[sha], allow_unreviewed=True, ctx=JobContext())
    assert intake.model is None
    assert isinstance(intake.refusal, ModelCrashError)
    assert intake.job_outcome == "refused"
    assert re.match(_crash_sentence("crashes.pkl"), str(intake.refusal))


def test_probe_predicts_the_demo_pipeline_on_rows_built_from_its_encoders(demo_paths) -> None:
    model = load_model(demo_paths.model)
    rows = probe_rows(model)
    assert rows is not None and list(rows.columns) == list(model.input_columns) and len(rows) == probe.PROBE_ROWS
    encoders = probe._learned_categories(model.estimator)
    assert encoders, "the demo pipeline one-hot encodes its text columns"
    for column, categories in encoders.items():
        assert set(rows[column]) <= set(categories)
    assert np.all(np.isfinite(model.predict(rows)))  # the built rows are valid input
    probe_model(model)
    assert probe._OUTCOMES[model.sha256] is None  # predicted fine in the child, and remembered


def test_probe_rows_are_spread_over_given_rows(data) -> None:
    X, binary, _, _ = data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = SklearnModel(_fitted(LogisticRegression(), frame, binary))
    rows = probe_rows(model, frame)
    assert rows is not None and len(rows) == probe.PROBE_ROWS
    assert rows.index[0] == 0 and rows.index[-1] == len(frame) - 1
    assert probe_rows(model, frame.head(3)).index.tolist() == [0, 1, 2]


def _skops_model(folder: Path, data) -> Path:
    X, binary, _, _ = data
    path = folder / "linear.skops"
    sio.dump(_fitted(LogisticRegression(), pd.DataFrame(X, columns=["a", "b", "c", "d"]), binary), path)
    return path


def test_probe_refuses_a_file_changed_after_loading(tmp_path: Path, data) -> None:
    path = _skops_model(tmp_path, data)
    model = load_model(path)
    X, _, three, _ = data
    sio.dump(_fitted(LogisticRegression(), pd.DataFrame(X, columns=["a", "b", "c", "d"]), three), path)
    with pytest.raises(ModelError) as err:
        probe_model(model)
    assert str(err.value) == (
        f"linear.skops changed after it was loaded (its SHA-256 is now {sha256_bytes(path.read_bytes())}), "
        "so it was not used; load it again."
    )


def test_probe_stops_a_child_that_does_not_finish_in_time(tmp_path: Path, data) -> None:
    model = load_model(_skops_model(tmp_path, data))
    with pytest.raises(ModelCrashError) as err:
        probe_model(model, timeout_s=0)  # no child starts, loads and predicts in no time
    assert str(err.value) == (
        "The model linear.skops did not finish loading in a test process within 0 s, so it was not used."
    )
    assert model.sha256 not in probe._OUTCOMES  # a slow machine is not remembered as a crash


def test_probe_stops_its_child_when_the_job_is_cancelled(tmp_path: Path, data) -> None:
    from engine.errors import Cancelled
    from engine.jobs import JobContext

    class AlreadyCancelled:
        is_cancelled = True

    model = load_model(_skops_model(tmp_path, data))
    with pytest.raises(Cancelled):
        probe_model(model, ctx=JobContext(cancel=AlreadyCancelled()))
    assert model.sha256 not in probe._OUTCOMES


def test_in_memory_models_are_not_probed(data, monkeypatch) -> None:
    X, binary, _, _ = data
    monkeypatch.setattr(probe, "_run_child", lambda *a, **k: pytest.fail("an in-memory model has no file to load"))
    probe_model(SklearnModel(_fitted(LogisticRegression(), X, binary)))
