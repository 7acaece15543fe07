"""Loading models: skops, ONNX, pickle and joblib round trips, trust decisions, and clear errors."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from engine.demo import FEATURES, TARGET, make_credit_frame, train_credit_model
from engine.errors import IncompatibleModelError, ModelError, ModelInputError, UntrustedModelError
from engine.hashing import sha256_bytes
from engine.models import (
    OnnxModel,
    SklearnModel,
    Task,
    inspect_model,
    load_model,
    scan_pickle,
    validate_tree_structures,
)

HERE_SKLEARN = sklearn.__version__


def _sha(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return make_credit_frame(n_rows=400, seed=7)


@pytest.fixture(scope="module")
def credit_pipeline(credit: pd.DataFrame) -> Pipeline:
    # The demo's own pipeline code (impute + one-hot + gradient boosting) on a small frame.
    return train_credit_model(credit)


@pytest.fixture(scope="module")
def credit_skops(tmp_path_factory: pytest.TempPathFactory, credit_pipeline) -> Path:
    path = tmp_path_factory.mktemp("skops") / "credit_model.skops"
    sio.dump(credit_pipeline, path)
    return path


@pytest.fixture(scope="module")
def numeric() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + 0.5 * X["b"] > 0).astype(int).to_numpy() + (X["c"] > 1).astype(int).to_numpy()
    return X, y


# ---------------------------------------------------------------------------
# skops
# ---------------------------------------------------------------------------


def test_demo_pipeline_skops_loads_without_trust(credit_skops: Path, credit, credit_pipeline) -> None:
    path = credit_skops
    assert sorted(sio.get_untrusted_types(file=path)) == ["numpy.dtype", "sklearn.tree._tree.Tree"]
    model = load_model(path)
    assert isinstance(model, SklearnModel)
    assert model.format == "skops"
    assert model.trust.granted_by == "probity reviewed types"
    assert model.trust.sha256 == _sha(path)
    assert model.trust.imports == ("numpy.dtype", "sklearn.tree._tree.Tree")
    assert model.input_columns == FEATURES
    assert model.classes == (0, 1)
    np.testing.assert_array_equal(model.predict(credit), credit_pipeline.predict_proba(credit[list(FEATURES)]))


def test_skops_with_unreviewed_types_needs_trust(tmp_path: Path, numeric) -> None:
    X, y = numeric
    knn = KNeighborsClassifier(n_neighbors=3).fit(X, y)
    path = tmp_path / "knn.skops"
    sio.dump(knn, path)
    sha = _sha(path)
    with pytest.raises(UntrustedModelError) as err:
        load_model(path)
    message = str(err.value)
    assert err.value.exit_code == 3
    assert err.value.sha256 == sha
    assert "sklearn.neighbors._kd_tree.KDTree" in err.value.imports
    assert "sklearn.neighbors._kd_tree.KDTree" in message
    assert f"--trust-model {sha}" in message
    model = load_model(path, trusted_sha256=[sha.upper()], granted_by="gui confirmation")
    assert model.trust.granted_by == "gui confirmation"
    np.testing.assert_array_equal(model.predict(X), knn.predict_proba(X))


def test_column_transformer_on_raw_string_columns_works_as_trained(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "colour": pd.array(rng.choice(["red", "green", "blue"], 150), dtype="str"),
            "size": rng.normal(size=150),
            "shape": pd.array(rng.choice(["round", "square"], 150), dtype="str"),
        }
    )
    y = ((frame["colour"] == "red") | (frame["size"] > 0.5)).astype(int)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour", "shape"]),
                        ("num", StandardScaler(), ["size"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, y)
    path = tmp_path / "strings.skops"
    sio.dump(pipe, path)
    model = load_model(path)
    assert model.trust.granted_by == "not required"
    assert model.input_columns == ("colour", "size", "shape")
    # Columns given in another order, plus an extra one: the model picks its own.
    shuffled = frame[["shape", "size", "colour"]].assign(extra=1.0)
    np.testing.assert_array_equal(model.predict(shuffled), pipe.predict_proba(frame))
    with pytest.raises(ModelInputError) as err:
        model.predict(frame.drop(columns=["colour", "shape"]))
    assert str(err.value) == "The data lacks 2 columns the model strings.skops needs: 'colour', 'shape'."


def test_tampered_tree_in_skops_file_is_rejected(tmp_path: Path, numeric) -> None:
    # skops itself does not trust Tree because scikit-learn follows node indices
    # unchecked; Probity approves it only because it checks them.
    X, y = numeric
    forest = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0).fit(X, y)
    good = tmp_path / "forest.skops"
    sio.dump(forest, good)
    assert load_model(good).predict(X).shape == (len(X), 3)
    bad = tmp_path / "tampered.skops"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        tampered = 0
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith(".npy"):
                arr = np.load(io.BytesIO(data), allow_pickle=False)
                if arr.dtype.names and "left_child" in arr.dtype.names and tampered == 0:
                    arr = arr.copy()
                    arr["left_child"][0] = 10**6  # points far outside the node array
                    out = io.BytesIO()
                    np.save(out, arr, allow_pickle=False)
                    data = out.getvalue()
                    tampered += 1
            dst.writestr(item, data)
    assert tampered == 1
    with pytest.raises(ModelError) as err:
        load_model(bad)
    assert str(err.value) == (
        "tampered.skops contains a decision tree whose node structure is inconsistent, so it is not used."
    )


def test_hist_gradient_boosting_skops_loads_and_is_checked(tmp_path: Path, numeric) -> None:
    X, y = numeric
    with threadpool_limits(1):  # OpenMP start-up dominates on tiny data
        hgb = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    path = tmp_path / "hgb.skops"
    sio.dump(hgb, path)
    model = load_model(path)
    assert model.trust.granted_by == "probity reviewed types"
    np.testing.assert_array_equal(model.predict(X), hgb.predict_proba(X))
    predictor = hgb._predictors[0][0]
    predictor.nodes["feature_idx"][0] = X.shape[1]  # one past the last feature
    with pytest.raises(ModelError, match="inconsistent"):
        validate_tree_structures(hgb)


def test_corrupt_skops_is_a_model_error(write_text) -> None:
    path = write_text("broken.skops", b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert str(err.value).startswith("broken.skops is not a valid skops file (")
    assert str(err.value).endswith(").")


# ---------------------------------------------------------------------------
# pickle and joblib
# ---------------------------------------------------------------------------


def test_benign_pickle_needs_trust_then_predicts_like_the_original(tmp_path: Path, numeric) -> None:
    X, y = numeric
    clf = LogisticRegression().fit(X, y)
    path = tmp_path / "logistic.pkl"
    path.write_bytes(pickle.dumps(clf, protocol=5))
    sha = _sha(path)
    with pytest.raises(UntrustedModelError) as err:
        load_model(path)
    expected_imports = scan_pickle(path).imports
    assert "sklearn.linear_model._logistic.LogisticRegression" in expected_imports
    assert err.value.exit_code == 3
    assert err.value.imports == expected_imports
    assert str(err.value) == (
        f"logistic.pkl is a pickle file that imports {', '.join(expected_imports)}; unpickling runs their code, "
        f"so trust this exact file with --trust-model {sha} only if you trust its source."
    )
    with pytest.raises(UntrustedModelError):
        load_model(path, trusted_sha256=["0" * 64])
    model = load_model(path, trusted_sha256=[sha])
    assert model.format == "pickle"
    assert model.trust.required and model.trust.granted_by == "cli --trust-model"
    assert model.trust.sha256 == sha and model.trust.imports == expected_imports
    np.testing.assert_array_equal(model.predict(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    ("name", "compress"),
    [("model.joblib", 0), ("model.joblib", ("zlib", 3)), ("model.pkl", ("lzma", 3)), ("model.pkl", 0)],
)
def test_joblib_round_trip_predicts_equal(tmp_path: Path, credit, credit_pipeline, name, compress) -> None:
    path = tmp_path / name
    joblib.dump(credit_pipeline, path, compress=compress)
    sha = _sha(path)
    with pytest.raises(UntrustedModelError, match=f"--trust-model {sha}"):
        load_model(path)
    model = load_model(path, trusted_sha256=[sha])
    assert model.format == "joblib"  # content decides: a .pkl written by joblib is read by joblib
    np.testing.assert_array_equal(model.predict(credit), credit_pipeline.predict_proba(credit[list(FEATURES)]))


def test_unpickled_object_that_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "table.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(ModelError) as err:
        load_model(path, trusted_sha256=[_sha(path)])
    assert str(err.value) == "The object in table.pkl is a dict, not a fitted model with a predict method."


def _with_sklearn_version(data: bytes, version: str) -> bytes:
    here = HERE_SKLEARN.encode()
    assert len(version) == len(here) and data.count(here) >= 1
    return data.replace(here, version.encode())


def _incompatible_message(name: str, saved: str) -> str:
    return (
        f"{name} was saved with scikit-learn {saved}, but this installation has {HERE_SKLEARN}; "
        f"re-save the model with scikit-learn {HERE_SKLEARN} (or export it to ONNX) to audit it."
    )


def test_model_from_another_sklearn_version_is_incompatible(tmp_path: Path, numeric) -> None:
    X, y = numeric
    clf = LogisticRegression().fit(X, y)
    old = ("1.3.2" + "0" * 10)[: len(HERE_SKLEARN)]  # same length, so the pickle stays well formed
    pkl = tmp_path / "old.pkl"
    pkl.write_bytes(_with_sklearn_version(pickle.dumps(clf, protocol=4), old))
    assert scan_pickle(pkl).sklearn_versions == (old,)
    with pytest.raises(IncompatibleModelError) as err:
        load_model(pkl, trusted_sha256=[_sha(pkl)])
    assert str(err.value) == _incompatible_message("old.pkl", old)
    raw = io.BytesIO()
    joblib.dump(clf, raw)
    (tmp_path / "old_raw.joblib").write_bytes(_with_sklearn_version(raw.getvalue(), old))
    with pytest.raises(IncompatibleModelError) as err:
        load_model(tmp_path / "old_raw.joblib")  # refused before any trust question
    assert str(err.value) == _incompatible_message("old_raw.joblib", old)


class _StateDict(dict):
    """A state the scanner cannot read as a constant dict; sklearn's own warning must catch it."""

    def __reduce__(self):
        return (_StateDict, (), None, None, iter(self.items()))


class _OldLogistic:
    """Pickles as a LogisticRegression whose state claims an old scikit-learn."""

    def __init__(self, fitted: LogisticRegression, version: str) -> None:
        self.state = _StateDict(fitted.__getstate__(), _sklearn_version=version)

    def __reduce__(self):
        return (LogisticRegression, (), self.state)


def test_version_warning_during_unpickling_is_incompatible(tmp_path: Path, numeric) -> None:
    X, y = numeric
    path = tmp_path / "hidden_version.pkl"
    path.write_bytes(pickle.dumps(_OldLogistic(LogisticRegression().fit(X, y), "1.3.2"), protocol=4))
    assert scan_pickle(path).sklearn_versions == ()  # the scan cannot see it ...
    with pytest.raises(IncompatibleModelError) as err:  # ... scikit-learn's warning can
        # _StateDict lives in this test module, which is not on the reviewed list.
        load_model(path, trusted_sha256=[_sha(path)], allow_unreviewed=True)
    assert str(err.value) == _incompatible_message("hidden_version.pkl", "1.3.2")


# ---------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("zipmap", [True, False])
def test_onnx_classifier_matches_sklearn(tmp_path: Path, numeric, zipmap: bool) -> None:
    from skl2onnx import to_onnx

    X, y = numeric
    clf = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X.to_numpy(np.float32), y)
    path = tmp_path / "forest.onnx"
    path.write_bytes(to_onnx(clf, X.to_numpy(np.float32)[:1], options={"zipmap": zipmap}).SerializeToString())
    model = load_model(path)
    assert isinstance(model, OnnxModel)
    assert model.task is Task.CLASSIFICATION
    assert model.classes == (0, 1, 2)
    assert model.input_columns is None and model.n_features_in == 4
    assert model.trust.granted_by == "not required" and model.trust.sha256 == _sha(path)
    np.testing.assert_allclose(model.predict(X), clf.predict_proba(X.to_numpy(np.float32)), atol=1e-6)
    with pytest.raises(ModelInputError, match="expects 4 input columns but was given 3"):
        model.predict(X.iloc[:, :3])


def test_onnx_regressor_matches_sklearn(tmp_path: Path, numeric) -> None:
    from skl2onnx import to_onnx

    X, _ = numeric
    target = X["a"] * 2.0 - X["c"]
    reg = GradientBoostingRegressor(n_estimators=10, max_depth=2, random_state=0).fit(X.to_numpy(np.float32), target)
    path = tmp_path / "boost.onnx"
    path.write_bytes(to_onnx(reg, X.to_numpy(np.float32)[:1]).SerializeToString())
    model = load_model(path)
    assert model.task is Task.REGRESSION and model.classes is None
    np.testing.assert_allclose(model.predict(X), reg.predict(X.to_numpy(np.float32)), rtol=1e-5, atol=1e-5)


def test_onnx_pipeline_with_one_input_per_raw_column(tmp_path: Path, credit, credit_pipeline) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    features = ["age", "income", "debt", "late_payments", "employment", "neighbourhood"]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "income", "debt", "late_payments"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["employment", "neighbourhood"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(credit[features], credit[TARGET])
    types = [
        (c, StringTensorType([None, 1]) if c in ("employment", "neighbourhood") else FloatTensorType([None, 1]))
        for c in features
    ]
    path = tmp_path / "credit.onnx"
    path.write_bytes(to_onnx(pipe, initial_types=types, options={"zipmap": False}).SerializeToString())
    model = load_model(path)
    assert model.input_columns == tuple(features)
    assert model.classes == (0, 1)
    np.testing.assert_allclose(model.predict(credit), pipe.predict_proba(credit[features]), atol=1e-5)
    text = inspect_model(path).to_text()
    assert "Inputs:   age, income, debt, late_payments, employment, neighbourhood" in text
    assert "Classes:  0, 1" in text


def test_corrupt_onnx_is_a_model_error(write_text) -> None:
    path = write_text("broken.onnx", b"\x08\x07\x12\x04skl2" + bytes(range(200)))
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert str(err.value) == "broken.onnx is not a valid ONNX model."


# ---------------------------------------------------------------------------
# Inspection and file-level errors
# ---------------------------------------------------------------------------


def test_inspect_model_reports_format_hash_imports_and_verdict(tmp_path: Path, numeric) -> None:
    X, y = numeric
    path = tmp_path / "logistic.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path, compress=("bz2", 3))
    info = inspect_model(path)
    sha = _sha(path)
    assert (info.format, info.size_bytes, info.sha256) == ("joblib", path.stat().st_size, sha)
    assert info.scan is not None and info.scan.format == "joblib+bz2"
    assert info.needs_trust
    text = info.to_text()
    assert "Format:   joblib (joblib+bz2 container)\n" in text
    assert f"Size:     {path.stat().st_size:,} bytes\n" in text
    assert f"SHA-256:  {sha}\n" in text
    assert "  sklearn.linear_model._logistic.LogisticRegression\n" in text
    assert f"with --trust-model {sha}\n" in text


def test_inspect_skops_names_reviewed_types(credit_skops: Path) -> None:
    info = inspect_model(credit_skops)
    assert info.skops_untrusted_types == ("numpy.dtype", "sklearn.tree._tree.Tree")
    assert not info.needs_trust
    assert "  reviewed    sklearn.tree._tree.Tree   (loads without a decision:" in info.to_text()
    assert info.to_text().endswith("Verdict:  loads without a trust decision.\n")


def test_wrong_extension_and_missing_files(tmp_path: Path, write_text) -> None:
    path = write_text("model.csv", "a,b\n1,2\n")
    for call in (load_model, inspect_model):
        with pytest.raises(ModelError) as err:
            call(path)
        assert str(err.value) == (
            "model.csv is not a model file Probity can read (expected .skops, .onnx, .pkl, .pickle, .joblib, "
            "XGBoost .json or .ubj, LightGBM .txt or .lgb, CatBoost .cbm or .json, or PyTorch .pt, .pth, .ts, "
            ".torchscript, .pt2 or .safetensors)."
        )
    with pytest.raises(ModelError, match=r"^absent\.skops does not exist\.$"):
        load_model(tmp_path / "absent.skops")
    with pytest.raises(ModelError, match=r"^text\.pkl is not a pickle or joblib file\.$"):
        load_model(write_text("text.pkl", "just some words\n"))
