"""XGBoost's and LightGBM's scikit-learn wrappers inside a pickled Pipeline (issue #13).

They go through the pickle trust flow like any pickle: refused until the exact file is
trusted, then loaded with no further acknowledgement, because every booster state the
file hands to the library's native parser is first checked as a booster file of that
library would be (engine/models/pickle_state.py).  A damaged or crafted state stops the
load in one sentence before the library sees it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.cli import main
from engine.errors import ModelError, UntrustedModelError
from engine.hashing import sha256_file
from engine.models.loading import inspect_model, load_model


def _data(seed: int = 0, n: int = 240) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["income", "debt", "age", "tenure"])
    X.loc[::9, "debt"] = np.nan
    margin = X["income"].to_numpy() - 0.5 * np.nan_to_num(X["debt"].to_numpy()) + 0.2 * rng.normal(size=n)
    return X, (margin > 0).astype(int), margin


def _estimators() -> dict[str, Any]:
    return {
        "xgb-classifier": xgb.XGBClassifier(n_estimators=12, max_depth=3, n_jobs=1, random_state=0),
        "xgb-regressor": xgb.XGBRegressor(n_estimators=12, max_depth=3, n_jobs=1, random_state=0),
        "lgbm-classifier": lgb.LGBMClassifier(n_estimators=12, num_leaves=7, n_jobs=1, verbose=-1, random_state=0),
        "lgbm-regressor": lgb.LGBMRegressor(n_estimators=12, num_leaves=7, n_jobs=1, verbose=-1, random_state=0),
    }


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    X, labels, values = _data()
    out = {}
    for key, estimator in _estimators().items():
        out[key] = make_pipeline(StandardScaler(), estimator).fit(X, values if "regressor" in key else labels)
    return out


@pytest.mark.parametrize("key", ["xgb-classifier", "xgb-regressor", "lgbm-classifier", "lgbm-regressor"])
@pytest.mark.parametrize("writer", ["joblib", "pickle"])
def test_a_pickled_wrapper_needs_trust_and_then_predicts_as_itself(
    fitted: dict[str, Any], tmp_path: Path, key: str, writer: str
) -> None:
    pipeline = fitted[key]
    path = tmp_path / f"{key}.{'joblib' if writer == 'joblib' else 'pkl'}"
    if writer == "joblib":
        joblib.dump(pipeline, path)
    else:
        path.write_bytes(pickle.dumps(pipeline, protocol=5))
    report = inspect_model(path)
    assert not report.refused and report.needs_trust and not report.unreviewed
    assert report.scan is not None and any(name.endswith(".Booster") for name in report.scan.imports)
    with pytest.raises(UntrustedModelError) as err:
        load_model(path)
    assert f"--trust-model {sha256_file(path)}" in str(err.value) and err.value.exit_code == 3
    model = load_model(path, trusted_sha256=[sha256_file(path)])
    assert model.trust.required and not model.trust.allow_unreviewed
    X, _, _ = _data(seed=1, n=60)
    # Model.predict gives probabilities for a classifier, values for a regressor: the library's own numbers.
    expected = pipeline.predict_proba(X) if "classifier" in key else pipeline.predict(X)
    assert np.array_equal(model.predict(X), expected)


def _forged(booster: Any, state: Any) -> bytes:
    """The pickle of ``booster`` with ``state`` in place of its own (what a crafted file would hold)."""
    cls = type(booster)
    original = cls.__getstate__
    cls.__getstate__ = lambda self: state
    try:
        return pickle.dumps(booster, protocol=4)
    finally:
        cls.__getstate__ = original


def _forbid_setstate(monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
    def refuse(self: Any, state: Any) -> None:
        raise AssertionError("the library was handed the state")

    monkeypatch.setattr(cls, "__setstate__", refuse)


def test_a_truncated_xgboost_state_is_refused_before_xgboost_parses_it(
    fitted: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = fitted["xgb-classifier"][-1].get_booster().__getstate__()
    raw = bytes(state["handle"])
    path = tmp_path / "forged.pkl"
    path.write_bytes(
        _forged(fitted["xgb-classifier"][-1].get_booster(), {**state, "handle": bytearray(raw[: len(raw) // 2])})
    )
    _forbid_setstate(monkeypatch, xgb.core.Booster)
    with pytest.raises(ModelError) as err:
        load_model(path, trusted_sha256=[sha256_file(path)])
    message = str(err.value)
    assert message.startswith("The model of the XGBoost booster pickled in forged.pkl is not the UBJSON document")
    assert "\n" not in message


def test_an_xgboost_state_of_another_shape_is_refused(
    fitted: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "text.pkl"
    path.write_bytes(_forged(fitted["xgb-regressor"][-1].get_booster(), {"handle": "not bytes"}))
    _forbid_setstate(monkeypatch, xgb.core.Booster)
    with pytest.raises(ModelError, match=r"^The model of the XGBoost booster pickled in text\.pkl is a str, not bytes"):
        load_model(path, trusted_sha256=[sha256_file(path)])


def test_a_crafted_lightgbm_state_is_refused_before_lightgbm_parses_it(
    fitted: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    booster = fitted["lgbm-classifier"][-1].booster_
    state = booster.__getstate__()
    text = state["_handle"]
    assert "left_child=" in text
    # A child index far outside the tree: LightGBM's parser would follow it.
    line = next(line for line in text.splitlines() if line.startswith("left_child="))
    crafted = text.replace(line, "left_child=" + " ".join(["900"] * len(line.split("=")[1].split())), 1)
    path = tmp_path / "forged_lgb.pkl"
    path.write_bytes(_forged(booster, {**state, "_handle": crafted}))
    _forbid_setstate(monkeypatch, lgb.basic.Booster)
    with pytest.raises(ModelError) as err:
        load_model(path, trusted_sha256=[sha256_file(path)])
    message = str(err.value)
    assert message.startswith("forged_lgb.pkl contains a LightGBM booster whose ") and "\n" not in message


def test_the_cli_audits_a_trusted_pickled_xgboost_pipeline(fitted: dict[str, Any], tmp_path: Path, capsys) -> None:
    X, labels, _ = _data(seed=2, n=120)
    data = tmp_path / "applicants.csv"
    X.assign(approved=labels).to_csv(data, index=False)
    model = tmp_path / "pipeline.joblib"
    joblib.dump(fitted["xgb-classifier"], model)
    argv = ["--progress", "none", "audit", "--data", str(data), "--model", str(model), "--target", "approved"]
    assert main([*argv, "--out", str(tmp_path / "untrusted")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trust-model" in err and "Traceback" not in err
    out = tmp_path / "audit"
    code = main([*argv, "--trust-model", sha256_file(model), "--n-repeats", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "report.pdf").stat().st_size > 0 and (out / "results.json").exists()


@pytest.mark.parametrize("key", ["xgb-classifier", "xgb-regressor", "lgbm-classifier", "lgbm-regressor"])
def test_treeshap_explains_a_wrapper_exactly_in_its_boosters_margin(fitted: dict[str, Any], key: str) -> None:
    """The automatic SHAP reads the wrapper's booster: the library's own contributions on the scaled columns."""
    from engine.explain import shap_auto
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.sklearn_adapter import SklearnModel
    from engine.schema import Roles

    pipeline = fitted[key]
    X, labels, values = _data(seed=3, n=50)
    model = SklearnModel(pipeline, path=None, sha256="0" * 64, format="pickle")
    target = values if "regressor" in key else labels
    inputs = AuditInputs(frame=X.assign(y=target), roles=Roles(target="y", features=tuple(X.columns)), model=model)
    choice, reason = shap_auto.choose(inputs)
    assert choice == "treeshap" and "scikit-learn wrapper" in reason
    result = shap_auto.run(inputs, ctx=JobContext(), rows=list(range(20)))
    scaled = pipeline[0].transform(X.iloc[:20])
    if key.startswith("xgb"):
        theirs = pipeline[-1].get_booster().predict(xgb.DMatrix(scaled), pred_contribs=True)
        tolerance = 1e-6 * max(1.0, float(np.abs(theirs).sum(axis=1).max()))  # XGBoost adds up in float32
    else:
        theirs = pipeline[-1].booster_.predict(scaled, pred_contrib=True)
        tolerance = 1e-9
    assert np.allclose(result.values, theirs[:, :-1], rtol=0, atol=tolerance)
    flag = {"output_margin": True} if key.startswith("xgb") else {"raw_score": True}
    margin = pipeline.predict(X.iloc[:20], **flag)
    assert np.allclose(result.values.sum(axis=1) + result.base_values, margin, rtol=0, atol=tolerance)
