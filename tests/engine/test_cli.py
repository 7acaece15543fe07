"""`probity` end to end: exit codes, results.json keys, provenance, refusals."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from engine.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def breast_cancer_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """scikit-learn's bundled breast-cancer data as CSV and a Pipeline saved with joblib."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("bc")
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "malignant"})
    X = frame.drop(columns="malignant")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, frame["malignant"])
    data = folder / "breast_cancer.csv"
    frame.to_csv(data, index=False)
    model_path = folder / "pipeline.joblib"
    joblib.dump(model, model_path)
    return data, model_path


def test_version_from_the_installed_console_script() -> None:
    script = Path(sys.executable).with_name("probity")
    assert script.exists(), "the package must install a `probity` console command"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    from engine import __version__

    assert proc.returncode == 0
    assert proc.stdout.strip() == f"probity {__version__}"


def test_audit_on_the_demo_writes_results(demo_paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit"
    code, _, err = _run(
        capsys,
        "audit",
        "--data",
        demo_paths.data,
        "--model",
        demo_paths.model,
        "--target",
        "approved",
        "--sensitive",
        "group",
        "--out",
        out,
        "--seed",
        "7",
        "--n-repeats",
        "3",
    )
    assert code == 0, err
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    prov = doc["provenance"]
    assert prov["data_sha256"] == _sha(demo_paths.data)
    assert prov["model_sha256"] == _sha(demo_paths.model)
    assert prov["seed"] == 7
    assert prov["parameters"]["permutation"]["n_repeats"] == 3
    assert {"numpy", "pandas", "scikit-learn", "python", "probity"} <= set(prov["versions"])
    assert prov["roles"]["sensitive"] == ["group"]
    assert "group" not in prov["roles"]["features"]  # the demo model never sees the sensitive attribute
    perf = doc["performance"]
    for key in ("accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "log_loss", "brier"):
        assert 0.0 <= perf[key] <= (10.0 if key == "log_loss" else 1.0)
    assert perf["roc_auc"] > 0.8
    rows = doc["importance"]["permutation"]
    assert {r["feature"] for r in rows} == set(prov["roles"]["features"])
    for r in rows:
        assert set(r) == {"feature", "mean", "std", "ci_low", "ci_high"}
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
    # Income and debt drive approval by construction; they must outrank the loan amount.
    by = {r["feature"]: r["mean"] for r in rows}
    assert by["income"] > by["loan_amount"] and by["debt"] > by["loan_amount"]
    # Permutation importance and mean |SHAP| rank the features alike on this model.
    agreement = doc["results"]["agreement"]
    assert agreement["methods"][:2] == ["permutation", "mean |SHAP|"]
    assert agreement["spearman"][0][1] > 0.8
    assert all(-1.0 <= v <= 1.0 for row in agreement["spearman"] for v in row)


def test_same_seed_identical_different_seed_different(demo_paths, tmp_path: Path, capsys) -> None:
    def importance(seed: int, name: str) -> list[dict]:
        code, _, err = _run(
            capsys,
            "audit",
            "--data",
            demo_paths.data,
            "--model",
            demo_paths.model,
            "--target",
            "approved",
            "--out",
            tmp_path / name,
            "--seed",
            str(seed),
            "--n-repeats",
            "2",
        )
        assert code == 0, err
        return json.loads((tmp_path / name / "results.json").read_text())["importance"]["permutation"]

    a, b, c = importance(1, "a"), importance(1, "b"), importance(2, "c")
    assert a == b
    assert a != c


def test_audit_on_a_real_sklearn_pipeline_needs_trust(breast_cancer_pipeline, tmp_path: Path, capsys) -> None:
    data, model = breast_cancer_pipeline
    sha = _sha(model)
    code, _, err = _run(
        capsys, "audit", "--data", data, "--model", model, "--target", "malignant", "--out", tmp_path / "refused"
    )
    assert code == 3
    assert sha in err and "--trust-model" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "refused" / "results.json").exists()

    code, _, err = _run(
        capsys,
        "audit",
        "--data",
        data,
        "--model",
        model,
        "--target",
        "malignant",
        "--out",
        tmp_path / "ok",
        "--trust-model",
        sha,
        "--n-repeats",
        "2",
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "ok" / "results.json").read_text())
    assert doc["provenance"]["model_trust"]["required"] is True
    assert doc["provenance"]["model_trust"]["sha256"] == sha
    assert doc["provenance"]["model_trust"]["granted_by"] == "cli --trust-model"
    assert doc["performance"]["accuracy"] > 0.95
    assert len(doc["importance"]["permutation"]) == 30


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_executed(demo_paths, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps(_Payload(marker)))
    for extra in ([], ["--trust-model", _sha(bad)]):
        code, _, err = _run(
            capsys,
            "audit",
            "--data",
            demo_paths.data,
            "--model",
            bad,
            "--target",
            "approved",
            "--out",
            tmp_path / "o",
            *extra,
        )
        assert code == 3
        assert "system" in err and "Traceback" not in err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--data", "{missing}"], "does-not-exist.csv"),
        (["--target", "no_such_column"], "no_such_column"),
    ],
)
def test_bad_input_is_one_line_exit_2(demo_paths, tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    base = {"--data": str(demo_paths.data), "--model": str(demo_paths.model), "--target": "approved"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1].format(missing=tmp_path / "does-not-exist.csv")
    argv = ["audit", *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "o")]
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


def test_data_lacking_model_columns_names_them(demo_paths, tmp_path: Path, capsys) -> None:
    frame = pd.read_csv(demo_paths.data).drop(columns=["income", "debt"])
    data = tmp_path / "partial.csv"
    frame.to_csv(data, index=False)
    code, _, err = _run(
        capsys, "audit", "--data", data, "--model", demo_paths.model, "--target", "approved", "--out", tmp_path / "o"
    )
    assert code == 2
    assert "'income'" in err and "'debt'" in err and "partial.csv" in err


def test_inspect_model_lists_pickle_imports_without_loading(tmp_path: Path, capsys) -> None:
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=2).fit(np.arange(20.0).reshape(10, 2), np.arange(10) % 2)
    path = tmp_path / "tree.pkl"
    path.write_bytes(pickle.dumps(model))
    code, out, _ = _run(capsys, "inspect-model", path)
    assert code == 0
    assert "pickle" in out.lower()
    assert _sha(path) in out
    assert "sklearn.tree._classes.DecisionTreeClassifier" in out
