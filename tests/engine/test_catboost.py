"""CatBoost models from their own files (.cbm and .json) through CatBoost's own loader (issue #13).

Every model is trained here on small synthetic data with a text category column and missing numbers
(iterations 20, depth 3, one thread, a fixed seed, no training files written): predictions equal
CatBoost's own on the same rows, the model is described, damaged or crafted files are refused with one
sentence before CatBoost reads them, and the model-agnostic analyses and the audit run on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import catboost as cb
import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.data import load_table
from engine.errors import AnalysisError, ModelError
from engine.explain import native, treeshap
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models import catboost_adapter
from engine.models.base import Task
from engine.models.catboost_adapter import CATBOOST_CAVEAT, CatBoostModel, is_catboost_json
from engine.models.loading import inspect_model, load_model
from engine.schema import Roles

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ["zeta", "alpha", "mid", "north"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(size=n),
            "region": rng.choice(REGIONS, size=n),
            "debt": rng.normal(size=n),
        }
    )
    X.loc[::6, "income"] = np.nan  # CatBoost's nan_mode Min: missing numbers go below every border
    X.loc[2::11, "debt"] = np.nan
    return X


def _params(**extra: Any) -> dict[str, Any]:
    return dict(
        iterations=20,
        depth=3,
        thread_count=1,
        random_seed=0,
        allow_writing_files=False,
        verbose=False,
        cat_features=["region"],
        one_hot_max_size=2,  # region's 4 categories go through counters (CTRs), not one-hot splits
        **extra,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The training frame, its CSV, and one model per task saved as .cbm and as .json."""
    folder = tmp_path_factory.mktemp("catboost")
    X = _frame(300, seed=7)
    rng = np.random.default_rng(8)
    score = np.nan_to_num(X["income"].to_numpy()) + 0.8 * (X["region"] == "alpha") - 0.3 * np.nan_to_num(X["debt"])
    y = {
        "binary": (score + 0.3 * rng.normal(size=len(X)) > 0.2).astype(int),
        "multiclass": np.array(["low", "mid", "high"], dtype=object)[np.digitize(score, [-0.4, 0.6])],
        "regression": 2.0 * score + 0.1 * rng.normal(size=len(X)),
    }
    csv = folder / "credit.csv"
    X.assign(target=y["binary"], level=y["multiclass"], amount=y["regression"]).to_csv(csv, index=False)
    here = Path.cwd()
    os.chdir(folder)  # where CatBoost would write its catboost_info folder if it wrote one
    try:
        trained = {
            "binary": cb.CatBoostClassifier(**_params()).fit(X, y["binary"]),
            "multiclass": cb.CatBoostClassifier(**_params(loss_function="MultiClass")).fit(X, y["multiclass"]),
            "regression": cb.CatBoostRegressor(**_params()).fit(X, y["regression"]),
        }
    finally:
        os.chdir(here)
    assert not (folder / "catboost_info").exists()
    paths: dict[str, Path] = {}
    for task, model in trained.items():
        paths[f"{task}.cbm"] = folder / f"{task}.cbm"
        model.save_model(str(paths[f"{task}.cbm"]))
        paths[f"{task}.json"] = folder / f"{task}.json"
        model.save_model(str(paths[f"{task}.json"]), format="json")
    return SimpleNamespace(folder=folder, X=X, y=y, csv=csv, paths=paths)


def _own(path: Path) -> Any:
    own = cb.CatBoost()
    own.load_model(str(path), format="json" if path.suffix == ".json" else "cbm")
    return own


MODELS = ["binary.cbm", "binary.json", "multiclass.cbm", "multiclass.json", "regression.cbm", "regression.json"]


# -- loading and prediction --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", MODELS)
def test_predictions_equal_catboosts_own_on_the_same_rows(models: SimpleNamespace, key: str) -> None:
    path = models.paths[key]
    model = load_model(path)
    assert isinstance(model, CatBoostModel)
    assert model.format == "catboost" and model.container == ("JSON" if key.endswith(".json") else "binary .cbm")
    assert not model.trust.required and model.trust.granted_by == "not required"
    assert model.input_columns == ("income", "region", "debt")
    assert model.info.categorical == {1: None}
    table = load_table(models.csv).frame  # as Probity reads the CSV
    ours = model.predict(table[["debt", "target", "region", "income"]])  # any column order, extra columns
    own = _own(path)
    task = key.split(".")[0]
    if task == "binary":
        assert model.task is Task.CLASSIFICATION and model.classes == (0, 1)
        theirs = own.predict(models.X, prediction_type="Probability")
    elif task == "multiclass":
        assert model.classes == ("high", "low", "mid")  # CatBoost's own (sorted) class order
        theirs = own.predict(models.X, prediction_type="Probability")
        assert ours.shape == (300, 3)
    else:
        assert model.task is Task.REGRESSION and model.classes is None
        theirs = own.predict(models.X, prediction_type="RawFormulaVal")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert len(np.unique(np.round(theirs, 9), axis=0)) > 5  # not a constant model
    raw = model.predict_raw_output(models.X)
    np.testing.assert_allclose(raw, own.predict(models.X, prediction_type="RawFormulaVal"), rtol=0, atol=1e-12)
    assert model.raw_output_space == {"binary": "log-odds", "multiclass": "margin", "regression": "value"}[task]
    if task == "binary":  # the log-odds are those of the probabilities Probity reports
        np.testing.assert_allclose(1.0 / (1.0 + np.exp(-raw)), ours[:, 1], atol=1e-12)


def test_unseen_and_missing_categories_are_predicted_as_catboost_does(models: SimpleNamespace) -> None:
    model = load_model(models.paths["binary.cbm"])
    rows = models.X.head(6).copy()
    rows.loc[rows.index[1], "region"] = "atlantis"  # never seen in training: legal for CatBoost
    rows.loc[rows.index[2], "region"] = np.nan  # missing: the text "nan"
    own_rows = rows.assign(region=rows["region"].fillna("nan"))
    theirs = _own(models.paths["binary.cbm"]).predict(own_rows, prediction_type="Probability")
    np.testing.assert_allclose(model.predict(rows), theirs, rtol=0, atol=1e-12)
    # A region written as a number predicts as CatBoost's text of it ("3", not "3.0").
    numbered = rows.assign(region=[3.0, 3, "3", 4.0, "4", 4])
    own_numbered = rows.assign(region=["3", "3", "3", "4", "4", "4"])
    np.testing.assert_allclose(
        model.predict(numbered),
        _own(models.paths["binary.cbm"]).predict(own_numbered, prediction_type="Probability"),
        rtol=0,
        atol=1e-12,
    )


def test_unnamed_features_take_the_data_columns_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(200, 3))
    matrix[::5, 0] = np.nan
    y = (np.nan_to_num(matrix[:, 0]) + matrix[:, 1] > 0).astype(int)
    params = _params()
    params.pop("cat_features")
    booster = cb.CatBoostClassifier(**params).fit(matrix, y)
    for suffix in (".cbm", ".json"):
        path = tmp_path / f"plain{suffix}"
        booster.save_model(str(path), format="json" if suffix == ".json" else "cbm")
        model = load_model(path)
        assert model.input_columns is None and model.n_features_in == 3
        frame = pd.DataFrame(matrix, columns=["p", "q", "r"])
        theirs = booster.predict(matrix, prediction_type="Probability")
        np.testing.assert_allclose(model.predict(frame), theirs, rtol=0, atol=1e-12)
        assert "Features:  3 (the file names none: taken in order)" in inspect_model(path).to_text()


def test_catboost_json_is_told_from_xgboost_json_by_its_keys(models: SimpleNamespace, tmp_path: Path) -> None:
    text = models.paths["regression.json"].read_bytes()
    assert is_catboost_json(text)
    assert not is_catboost_json(b'{"learner": {"feature_names": []}, "version": [3, 2, 0]}')
    assert not is_catboost_json(b'{"theme": "dark"}')
    # Rewritten in another key order (its first key no longer one CatBoost writes first): still CatBoost's.
    doc = json.loads(text)
    reordered = tmp_path / "reordered.json"
    reordered.write_text(json.dumps({"scale_and_bias": doc.pop("scale_and_bias"), **dict(reversed(doc.items()))}))
    assert is_catboost_json(reordered.read_bytes())
    np.testing.assert_allclose(
        load_model(reordered).predict(models.X), load_model(models.paths["regression.json"]).predict(models.X), atol=0
    )


# -- what the model declares -----------------------------------------------------------------------------


def test_inspect_model_describes_the_catboost_model(models: SimpleNamespace) -> None:
    info = inspect_model(models.paths["multiclass.cbm"])
    assert info.format == "catboost" and not info.needs_trust and not info.refused
    text = info.to_text()
    assert "Library:   CatBoost (binary .cbm; CatBoost 1.2.10)" in text
    assert "Objective: MultiClass" in text
    assert "Task:      classification, classes high, low, mid" in text
    assert "Trees:     20" in text
    assert "Features:  3: income, region, debt" in text
    assert "categorical: region (passed as text" in text and "never seen in training is legal" in text
    assert "Output:    probability; the raw output (margin) is in margin space" in text
    assert "loads without a trust decision" in text
    text = inspect_model(models.paths["regression.json"]).to_text()
    assert "Library:   CatBoost (JSON; CatBoost 1.2.10)" in text and "Objective: RMSE" in text
    assert (
        "Output:    value; the raw output (margin) is in value space" in text and "every structure was checked" in text
    )


def test_starting_the_engine_leaves_catboost_unloaded() -> None:
    code = (
        "import json, sys; import engine.cli, engine.models.loading, engine.models.catboost_adapter; "
        "print(json.dumps('catboost' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False


# -- bad input: one sentence each, before CatBoost reads the file ------------------------------------------


def _forbid_library_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("CatBoost was handed a file Probity should have refused")

    monkeypatch.setattr(catboost_adapter, "_load_library", refuse)


def test_a_truncated_or_padded_cbm_is_refused_before_catboost_reads_it(
    models: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = models.paths["binary.cbm"].read_bytes()
    core = int.from_bytes(whole[4:8], "little")
    assert len(whole) > 8 + core  # the counter tables of region follow the core
    _forbid_library_loading(monkeypatch)
    # One byte short: CatBoost 1.2.10 itself loads this and predicts as if nothing were missing.
    cases = {
        "magic": (whole[:3], r'it does not start with "CBM1"'),
        "length": (whole[:6], r"it ends inside the length of the model core"),
        "core": (whole[:500], r"its model core of [\d,]+ bytes does not fit in the 492 bytes after its length"),
        "tables": (whole[: 8 + core + 30], r"it ends inside counter table 0"),
        "last-byte": (whole[:-1], r"it ends inside counter table \d+ \([\d,]+ bytes, [\d,]+ left\)\.$"),
        "padded": (whole + b"\0\0", r"it has 2 bytes after its last part"),
    }
    for label, (data, needle) in cases.items():
        path = tmp_path / f"{label}.cbm"
        path.write_bytes(data)
        for call in (load_model, inspect_model):
            with pytest.raises(ModelError, match=needle) as err:
                call(path)
            assert str(err.value).startswith(f"{label}.cbm is ")
        capsys.readouterr()
        assert main(["inspect-model", str(path)]) == 2
        err_text = capsys.readouterr().err
        assert err_text.count("\n") == 1 and "Traceback" not in err_text and f"{label}.cbm" in err_text


def test_a_damaged_cbm_core_is_one_sentence_from_catboosts_verifier(models: SimpleNamespace, tmp_path: Path) -> None:
    damaged = bytearray(models.paths["regression.cbm"].read_bytes())
    damaged[9] ^= 0xFF  # inside the core's root offset: the container is whole, the core is not
    path = tmp_path / "damaged.cbm"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ModelError, match=r"^(damaged\.cbm is a truncated or damaged|CatBoost could not load damaged)"):
        load_model(path)


def _json_doc(models: SimpleNamespace, key: str = "binary.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(models.paths[key].read_text())
    return doc


def _crafted_json() -> list[tuple[str, Any, str]]:
    def split_index(doc: dict[str, Any]) -> None:
        doc["oblivious_trees"][0]["splits"][0]["split_index"] = 9999  # kills CatBoost 1.2.10 at predict

    def no_counters(doc: dict[str, Any]) -> None:
        del doc["ctr_data"]  # kills CatBoost 1.2.10 at predict

    def short_leaves(doc: dict[str, Any]) -> None:
        doc["oblivious_trees"][3]["leaf_values"].pop()  # CatBoost loads it and predicts from wrong leaves

    def nan_leaf(doc: dict[str, Any]) -> None:
        doc["oblivious_trees"][1]["leaf_values"][0] = float("nan")

    def stride(doc: dict[str, Any]) -> None:
        next(iter(doc["ctr_data"].values()))["hash_stride"] = 0  # CatBoost divides by it

    def flat_index(doc: dict[str, Any]) -> None:
        doc["features_info"]["categorical_features"][0]["flat_feature_index"] = 7

    return [
        ("split", split_index, "tree 0's split_index 9999 is outside the "),
        ("counters", no_counters, "has no counter table in ctr_data"),
        ("leaves", short_leaves, "tree 3's leaf_values has 7 entries, not 1 per each of its 8 leaves"),
        ("nan", nan_leaf, "tree 1's leaf_values holds a value that is not a finite number"),
        ("stride", stride, "has the hash stride 0"),
        ("flat", flat_index, "feature flat indices do not run over 0 to 2"),
    ]


@pytest.mark.parametrize(("label", "craft", "needle"), _crafted_json(), ids=[c[0] for c in _crafted_json()])
def test_a_crafted_catboost_json_is_refused_before_catboost_reads_it(
    models: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str, craft: Any, needle: str
) -> None:
    doc = _json_doc(models)
    craft(doc)
    path = tmp_path / f"crafted_{label}.json"
    path.write_text(json.dumps(doc))
    _forbid_library_loading(monkeypatch)
    for call in (load_model, inspect_model):
        with pytest.raises(ModelError) as err:
            call(path)
        message = str(err.value)
        assert message.startswith(f"crafted_{label}.json contains a CatBoost model whose ")
        assert needle in message and message.endswith(", so it is not used.")


def test_a_corrupted_catboost_json_is_one_sentence(
    models: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = models.paths["multiclass.json"].read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    _forbid_library_loading(monkeypatch)
    with pytest.raises(ModelError, match=r"^cut\.json is a truncated or damaged CatBoost JSON model: .* \(line \d+"):
        load_model(path)
    assert main(["inspect-model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_cli_refuses_a_truncated_cbm_and_a_feature_name_mismatch_with_one_sentence(
    models: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.cbm"
    cut.write_bytes(models.paths["binary.cbm"].read_bytes()[:-40])
    renamed = tmp_path / "renamed.csv"
    load_table(models.csv).frame.rename(columns={"region": "area"}).to_csv(renamed, index=False)
    runs = {
        "truncated": (["--data", str(models.csv), "--model", str(cut)], "cut.cbm is a truncated or damaged CatBoost"),
        "mismatch": (
            ["--data", str(renamed), "--model", str(models.paths["binary.cbm"]), "--features", "income"]
            + ["--features", "area", "--features", "debt"],
            "lacks 1 of the 3 columns the CatBoost booster binary.cbm was trained on ('region')",
        ),
    }
    for label, (argv, needle) in runs.items():
        capsys.readouterr()
        code = main(
            ["--progress", "none", "explain", "pdp", *argv, "--target", "target", "--out", str(tmp_path / label)]
        )
        err = capsys.readouterr().err
        assert code == 2, err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err


# -- native importance and TreeSHAP ----------------------------------------------------------------------


def _inputs(frame: pd.DataFrame, model: CatBoostModel) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=None, features=tuple(frame.columns)), model=model)


def test_native_importance_is_catboosts_prediction_values_change(models: SimpleNamespace) -> None:
    path = models.paths["multiclass.json"]
    model = load_model(path)
    assert isinstance(model, CatBoostModel)
    frame = models.X[["debt", "income", "region"]]  # another order than the model's
    own = np.asarray(_own(path).get_feature_importance(type="PredictionValuesChange"), dtype=np.float64)
    result = native.run(_inputs(frame, model), ctx=JobContext(), importance_type="gain")
    np.testing.assert_allclose(result.importance, own / own.sum(), rtol=1e-12)
    assert result.feature_names == ("income", "region", "debt")
    # Named as what it is, with its own caveat (not the gain and split counts of XGBoost and LightGBM).
    assert result.basis == "PredictionValuesChange" and result.estimator == "CatBoost model"
    assert result.caveat == CATBOOST_CAVEAT and result.provenance.warnings[0] == CATBOOST_CAVEAT
    assert native.refusal(model) is None
    with pytest.raises(AnalysisError, match=r"gives one importance of its own, PredictionValuesChange"):
        native.run(_inputs(frame, model), ctx=JobContext(), importance_type="split")


def test_treeshap_explains_catboost_models_as_catboost_does(models: SimpleNamespace) -> None:
    """Counters over one feature are read exactly (tests/engine/test_catboost_treeshap.py has the rest,
    and the refusal of counters over feature combinations)."""
    model = load_model(models.paths["binary.cbm"])
    assert treeshap.refusal(model, feature_names=("income", "region", "debt")) is None
    result = treeshap.run(_inputs(models.X, model), ctx=JobContext(), rows=list(range(20)), device="cpu")
    own = _own(models.paths["binary.cbm"]).get_feature_importance(
        cb.Pool(models.X.iloc[:20], cat_features=["region"]), type="ShapValues", thread_count=1
    )
    np.testing.assert_allclose(result.values, own[:, :-1], rtol=0, atol=1e-9)
    assert result.output_name == "log-odds(1)" and np.abs(result.values[:, 1]).max() > 1e-6


# -- the analyses and the audit ------------------------------------------------------------------------------


def _explain(capsys: pytest.CaptureFixture[str], out: Path, *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["--progress", "none", "explain", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    return code, (json.loads(out.read_text()) if code == 0 else None), err


@pytest.mark.parametrize(("key", "target"), [("binary.cbm", "target"), ("multiclass.json", "level")])
def test_model_agnostic_analyses_run_on_catboost_from_the_cli(
    models: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, target: str
) -> None:
    base = ["--data", str(models.csv), "--model", str(models.paths[key]), "--target", target]
    features = ["--features", "income", "--features", "region", "--features", "debt"]
    model = load_model(models.paths[key])
    rows = load_table(models.csv).frame.iloc[[0, 3]]
    runs = {
        "permutation": ["--param", "n_repeats=2"],
        "lime": ["--rows", "0,3", "--samples", "300", "--param", "stability_runs=2"],
        "kernelshap": ["--rows", "0,3"],
        "pdp": [],
    }
    for method, extra in runs.items():
        code, doc, err = _explain(capsys, tmp_path / f"{method}.json", method, *base, *features, *extra)
        assert code == 0, err
        assert doc is not None and doc["feature_names"] == ["income", "region", "debt"]
        assert doc["provenance"]["model_trust"]["required"] is False
        if method == "kernelshap":
            values = np.asarray(doc["values"])
            predictions = np.asarray(doc["output"]["predictions"])
            np.testing.assert_allclose(values.sum(axis=1) + np.asarray(doc["base_values"]), predictions, atol=1e-8)
            np.testing.assert_allclose(predictions, model.predict(rows)[:, doc["output"]["class_index"]], atol=1e-12)
        elif method == "permutation":
            assert len(doc["result"]["mean"]) == 3 and doc["result"]["mean"][0] > 0  # income matters


def test_an_audit_of_a_catboost_model_writes_a_report(
    models: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "credit.csv"
    load_table(models.csv).frame.assign(group=np.where(np.arange(300) % 3 == 0, "g1", "g2")).to_csv(
        data, index=False, lineterminator="\n"
    )
    out = tmp_path / "audit"
    argv = ["--progress", "none", "audit", "--data", str(data), "--model", str(models.paths["binary.cbm"])]
    argv += ["--target", "target", "--features", "income", "--features", "region", "--features", "debt"]
    argv += ["--sensitive", "group", "--out", str(out), "--seed", "3", "--n-repeats", "2", "--lime-samples", "100"]
    argv += ["--cluster-rows", "random:40", "--explain-rows", "0,5"]
    assert main(argv) == 0, capsys.readouterr().err
    assert (out / "report.pdf").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["format"] == "catboost" and results["model"]["input_columns"] == [
        "income",
        "region",
        "debt",
    ]
    # The audit's SHAP is exact TreeSHAP on CatBoost's own trees, in its margin space.
    assert results["results"]["shap"]["method"] == "treeshap"
    assert results["results"]["shap"]["provenance"]["parameters"]["auto_choice"] == "treeshap"
    native_result = results["results"]["native"]
    own = _own(models.paths["binary.cbm"]).get_feature_importance(type="PredictionValuesChange")
    np.testing.assert_allclose(native_result["importance"], np.asarray(own) / np.sum(own), rtol=1e-9)
