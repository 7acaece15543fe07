"""`probity explain`: every method from the command line, on the demo and a bundled dataset."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.errors import AnalysisError
from engine.jobs import JobContext
from engine.rows import parse_rows


def _explain(capsys, tmp_path: Path, *argv: str | Path) -> tuple[int, dict | None, str]:
    out = tmp_path / "explain.json"
    code = main(["explain", *[str(a) for a in argv], "--out", str(out)])
    err = capsys.readouterr().err
    return code, (json.loads(out.read_text()) if code == 0 else None), err


def _demo(demo_paths) -> list[str]:
    return ["--data", str(demo_paths.data), "--model", str(demo_paths.model), "--target", "approved"]


@pytest.fixture(scope="module")
def wine_forest(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """scikit-learn's bundled wine data (3 classes) and a RandomForest saved with skops."""
    import skops.io as sio
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    folder = tmp_path_factory.mktemp("wine")
    frame = load_wine(as_frame=True).frame
    X = frame.drop(columns="target")
    model = RandomForestClassifier(n_estimators=25, max_depth=4, random_state=0).fit(X, frame["target"])
    frame.to_csv(folder / "wine.csv", index=False)
    sio.dump(model, folder / "wine.skops")
    return ["--data", str(folder / "wine.csv"), "--model", str(folder / "wine.skops"), "--target", "target"]


# -- row specs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0-3", [0, 1, 2, 3]), ("5,1,1,3", [1, 3, 5]), ("first:2", [0, 1]), ("last:2", [8, 9]), ("all", list(range(10)))],
)
def test_row_specs(spec: str, expected: list[int]) -> None:
    assert parse_rows(spec, 10).tolist() == expected


def test_random_rows_follow_the_seed() -> None:
    a = parse_rows("random:4", 1000, ctx=JobContext(seed=1))
    assert a.tolist() == parse_rows("random:4", 1000, ctx=JobContext(seed=1)).tolist()
    assert a.tolist() != parse_rows("random:4", 1000, ctx=JobContext(seed=2)).tolist()


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("12", "outside"),
        ("3-1", "backwards"),
        ("top:3", "not understood"),
        ("first:x", "non-integer"),
        ("first:0", "no rows"),
    ],
)
def test_bad_row_specs_are_explained(spec: str, needle: str) -> None:
    with pytest.raises(AnalysisError, match=needle):
        parse_rows(spec, 10)


# -- local explanations from the CLI ------------------------------------------------------


def test_lime_from_the_cli(demo_paths, tmp_path: Path, capsys) -> None:
    code, doc, err = _explain(
        capsys, tmp_path, "lime", *_demo(demo_paths), "--rows", "0-2", "--samples", "600", "--param", "stability_runs=2"
    )
    assert code == 0, err
    assert doc["rows"] == [0, 1, 2]
    assert len(doc["feature_names"]) == 8
    assert np.asarray(doc["values"]).shape == (3, 8)
    assert doc["base_values"] is None
    assert len(doc["quality"]) == 3
    for row in doc["quality"]:
        assert 0.0 <= row["r2"] <= 1.0
        assert 0.0 <= row["stability_jaccard"] <= 1.0
        assert "deletion_auc" in row and "insertion_auc" in row
    assert doc["timing"]["compute_seconds"] > 0
    assert doc["provenance"]["parameters"]["num_samples"] == 600
    assert doc["provenance"]["data_sha256"]


def test_shap_chooses_exact_treeshap_for_the_demo_and_is_additive(demo_paths, tmp_path: Path, capsys) -> None:
    code, doc, err = _explain(capsys, tmp_path, "shap", *_demo(demo_paths), "--rows", "0-9")
    assert code == 0, err
    params = doc["provenance"]["parameters"]
    assert params["auto_choice"] == "treeshap"
    assert "tree ensemble" in params["auto_reason"]
    values = np.asarray(doc["values"])
    total = values.sum(axis=1) + np.asarray(doc["base_values"])
    np.testing.assert_allclose(total, doc["output"]["predictions"], atol=1e-6)


def test_kernelshap_and_treeshap_agree_on_the_same_rows(demo_paths, tmp_path: Path, capsys) -> None:
    code, kernel, err = _explain(capsys, tmp_path, "kernelshap", *_demo(demo_paths), "--rows", "0-1")
    assert code == 0, err
    values = np.asarray(kernel["values"])
    np.testing.assert_allclose(
        values.sum(axis=1) + np.asarray(kernel["base_values"]), kernel["output"]["predictions"], atol=1e-8
    )
    assert values.shape == (2, 8)


def test_multiclass_class_choice(wine_forest, tmp_path: Path, capsys) -> None:
    code, doc, err = _explain(capsys, tmp_path, "treeshap", *wine_forest, "--rows", "0-4", "--class", "2")
    assert code == 0, err
    assert doc["output"]["class_index"] == 2
    code, _, err = _explain(capsys, tmp_path, "treeshap", *wine_forest, "--class", "7")
    assert code == 2 and "no class '7'" in err


def test_gradient_methods_refuse_non_differentiable_models(demo_paths, tmp_path: Path, capsys) -> None:
    code, _, err = _explain(capsys, tmp_path, "ig", *_demo(demo_paths), "--rows", "0")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "Gradient methods need a differentiable model" in err
    assert "credit_model.skops is not one, because its step ColumnTransformer is not a per-column affine scaler" in err


def test_integrated_gradients_of_a_scikit_learn_mlp_from_the_cli(tmp_path: Path, capsys) -> None:
    """An MLP saved with skops is explained through its exact torch view; attributions add up."""
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    X = frame.drop(columns="target")
    model = make_pipeline(StandardScaler(), MLPClassifier((8,), activation="tanh", max_iter=400, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is no concern here
        model.fit(X, frame["target"])
    frame.to_csv(tmp_path / "bc.csv", index=False)
    sio.dump(model, tmp_path / "mlp.skops")
    argv = ["--data", tmp_path / "bc.csv", "--model", tmp_path / "mlp.skops", "--target", "target"]
    code, doc, err = _explain(capsys, tmp_path, "ig", *argv, "--rows", "0-5")
    assert code == 0, err
    assert doc["provenance"]["parameters"]["differentiable_view"] == "MLPClassifier (1 hidden layer, tanh, one logit)"
    values = np.asarray(doc["values"])
    assert values.shape == (6, 30) and doc["rows"] == [0, 1, 2, 3, 4, 5]
    # Completeness: the logit's change from the baseline is what the attributions add up to.
    gap = np.asarray(doc["output"]["predictions"]) - np.asarray(doc["base_values"])
    np.testing.assert_allclose(values.sum(axis=1), gap, rtol=1e-3, atol=1e-3)


# -- global views from the CLI -------------------------------------------------------------


def test_permutation_pdp_surrogate_native_from_the_cli(wine_forest, tmp_path: Path, capsys) -> None:
    code, doc, err = _explain(capsys, tmp_path, "permutation", *wine_forest, "--samples", "3")
    assert code == 0, err
    assert len(doc["values"]) == 1 and len(doc["values"][0]) == len(doc["feature_names"]) == 13

    code, doc, err = _explain(
        capsys, tmp_path, "pdp", *wine_forest, "--param", 'features=["proline"]', "--samples", "40"
    )
    assert code == 0, err
    assert doc["result"]["kind"] == "partial_dependence"

    code, doc, err = _explain(capsys, tmp_path, "surrogate", *wine_forest)
    assert code == 0, err
    assert doc["result"]["kind"] == "surrogate"

    code, doc, err = _explain(capsys, tmp_path, "native", *wine_forest)
    assert code == 0, err
    assert doc["result"]["kind"] == "native_importance"


def test_clusters_from_the_cli(demo_paths, tmp_path: Path, capsys) -> None:
    code, doc, err = _explain(
        capsys, tmp_path, "clusters", *_demo(demo_paths), "--rows", "random:200", "--param", "k=3"
    )
    assert code == 0, err
    result = doc["result"]
    assert result["kind"] == "explanation_clusters"
    assert len(doc["rows"]) == 200


def test_rows_do_not_apply_to_global_methods(wine_forest, tmp_path: Path, capsys) -> None:
    code, _, err = _explain(capsys, tmp_path, "surrogate", *wine_forest, "--rows", "0-3")
    assert code == 2 and "--rows does not apply" in err


def test_explain_writes_to_stdout_without_out(demo_paths, capsys) -> None:
    code = main(["explain", "native", *_demo(demo_paths)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["method"] == "native"


def test_device_flag_reaches_treeshap_and_is_refused_where_it_does_not_apply(wine_forest, tmp_path: Path, capsys):
    code, doc, err = _explain(capsys, tmp_path, "treeshap", *wine_forest, "--rows", "0-2", "--device", "cpu")
    assert code == 0, err
    assert doc["provenance"]["parameters"]["device"] == "cpu"
    code, _, err = _explain(capsys, tmp_path, "lime", *wine_forest, "--rows", "0", "--device", "cpu")
    assert code == 2 and err.strip() == "probity: --device does not apply to lime, which runs on the processor."
