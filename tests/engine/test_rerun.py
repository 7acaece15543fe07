"""`probity rerun`: every registered method's result is made again from its own provenance, number for number.

Also: files written before results recorded their call (tests/fixtures/before_calls, written at commit 83f3dae)
still verify, read and open, and rerun refuses them with one sentence.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.registry import METHODS

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "before_calls"
DATA = FIXTURE / "credit.csv"
FOREST = FIXTURE / "credit_model.skops"
NUMERIC = ["age", "income", "debt", "credit_history_years", "late_payments", "loan_amount"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def linear(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scaled logistic regression on the fixture's numeric columns: linear and differentiable."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(DATA)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[NUMERIC], frame["approved"])
    path = tmp_path_factory.mktemp("linear") / "linear.skops"
    sio.dump(model, path)
    return path


def _inputs(model: Path) -> list[str]:
    return ["--data", str(DATA), "--model", str(model), "--trust-model", _sha(model)]


# Small but real settings per method, so the whole list runs in seconds.
SETTINGS: dict[str, list[str]] = {
    "performance": [],
    "permutation": ["--samples", "2"],
    "lime": ["--rows", "0-3", "--samples", "150", "--param", "stability_runs=2"],
    "shap": ["--rows", "0-5"],
    "treeshap": ["--rows", "random:6", "--param", "variant=interventional", "--samples", "20"],
    "linearshap": ["--rows", "0-5", "--samples", "50"],
    "kernelshap": ["--rows", "0-2", "--param", "background_size=10"],
    "native": [],
    "pdp": ["--param", "features=income,debt", "--samples", "15", "--param", "grid_resolution=5"],
    "dependence": ["--param", "top=2", "--samples", "15", "--param", "grid_resolution=5"],
    "surrogate": ["--samples", "200"],
    "groups": ["--sensitive", "group"],
    "fairness": ["--sensitive", "group", "--samples", "60", "--param", "flip_inputs=income"],
    "proxies": ["--sensitive", "group", "--param", "n_folds=3"],
    "clusters": ["--rows", "random:40", "--param", "k=2"],
    "ig": ["--rows", "0-4", "--samples", "8", "--param", 'baseline="mean"'],
    "saliency": ["--rows", "0-4"],
    "input_x_gradient": ["--rows", "0-4"],
    "smoothgrad": ["--rows", "0-4", "--samples", "4"],
    "network": ["--samples", "50", "--param", "max_units=4"],
}
LINEAR = {"linearshap", "ig", "saliency", "input_x_gradient", "smoothgrad", "network"}


def test_the_settings_cover_every_registered_method() -> None:
    assert set(SETTINGS) == set(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_reruns_from_its_own_provenance_to_identical_numbers(name, linear, tmp_path, capsys) -> None:
    model = linear if name in LINEAR else FOREST
    out = tmp_path / f"{name}.json"
    code = main(
        [
            "--progress",
            "none",
            "explain",
            name,
            *_inputs(model),
            "--target",
            "approved",
            "--seed",
            "3",
            *SETTINGS[name],
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    call = json.loads(out.read_text())["result"]["provenance"]["call"]
    assert call["method"] == name and set(call["parameters"]) == set(METHODS[name].param_names)
    capsys.readouterr()

    code = main(["--progress", "none", "rerun", str(out), *_inputs(model)])
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    assert printed.out.startswith("reproduced: ") and "every number bit-identical" in printed.out


def test_a_changed_number_a_changed_file_and_bad_input_are_told_apart(tmp_path, capsys) -> None:
    out = tmp_path / "lime.json"
    assert (
        main(
            [
                "--progress",
                "none",
                "explain",
                "lime",
                *_inputs(FOREST),
                "--target",
                "approved",
                "--rows",
                "0-1",
                "--samples",
                "100",
                "--param",
                "stability_runs=0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    document = json.loads(out.read_text())
    document["result"]["values"][1][2] += 0.5
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["--progress", "none", "rerun", str(tampered), *_inputs(FOREST)]) == 1
    printed = capsys.readouterr().out
    assert "results.lime.values[1][2]: report has" in printed and "not reproduced: 1 difference" in printed

    other = tmp_path / "other.csv"
    other.write_text(DATA.read_text().replace("\n0001", "\n9991", 1))
    code = main(
        [
            "--progress",
            "none",
            "rerun",
            str(out),
            "--data",
            str(other),
            "--model",
            str(FOREST),
            "--trust-model",
            _sha(FOREST),
        ]
    )
    assert code == 1 and "data SHA-256 differs" in capsys.readouterr().out

    (tmp_path / "not.json").write_text("{")
    assert main(["rerun", str(tmp_path / "not.json"), *_inputs(FOREST)]) == 2
    assert capsys.readouterr().err.strip().endswith("is not JSON.")


def test_an_audits_results_are_rerun_one_by_one(tmp_path, capsys) -> None:
    folder = tmp_path / "audit"
    assert (
        main(
            [
                "--progress",
                "none",
                "audit",
                *_inputs(FOREST),
                "--target",
                "approved",
                "--sensitive",
                "group",
                "--out",
                str(folder),
                "--no-report",
                "--explain-rows",
                "0-2",
                "--cluster-rows",
                "random:30",
                "--n-repeats",
                "2",
                "--lime-samples",
                "200",
            ]
        )
        == 0
    )
    results = folder / "results.json"
    capsys.readouterr()
    assert main(["rerun", str(results), *_inputs(FOREST)]) == 2
    assert "choose one with --result" in capsys.readouterr().err
    for key in ("lime", "shap", "clusters", "dependence", "groups", "proxies", "fairness"):
        assert main(["--progress", "none", "rerun", str(results), "--result", key, *_inputs(FOREST)]) == 0, key
        assert capsys.readouterr().out.startswith("reproduced: ")
    assert main(["rerun", str(results), "--result", "agreement", *_inputs(FOREST)]) == 2
    assert "records no call (it was derived from other results" in capsys.readouterr().err


def test_a_model_refused_as_untrusted_exits_3(tmp_path, capsys) -> None:
    import pickle

    from sklearn.dummy import DummyClassifier

    model = tmp_path / "dummy.pkl"
    model.write_bytes(pickle.dumps(DummyClassifier().fit([[0], [1]], [0, 1])))
    out = tmp_path / "perf.json"
    assert (
        main(
            [
                "--progress",
                "none",
                "explain",
                "performance",
                *_inputs(FOREST),
                "--target",
                "approved",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["rerun", str(out), "--data", str(DATA), "--model", str(model)]) == 3


# -- files written before calls were recorded ---------------------------------------------------------------


def test_a_report_written_before_calls_were_recorded_still_verifies(tmp_path) -> None:
    from engine.verify import verify_report

    outcome = verify_report(FIXTURE / "report.pdf", data=DATA, model=FOREST, trusted_sha256=(_sha(FOREST),))
    assert outcome.ok, outcome.lines()
    assert "pages rebuilt from the embedded results" in outcome.checked  # the PDF is byte-identical when rebuilt
    # Bit-identical on the machine that wrote it; elsewhere BLAS may sum in another order (within rel_tol).
    assert outcome.n_results == 10 and outcome.n_numbers > 10_000


def test_rerun_refuses_an_explain_output_written_before_calls_in_one_sentence(capsys) -> None:
    assert main(["rerun", str(FIXTURE / "explain-lime.json"), *_inputs(FOREST)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "probity: The result lime in explain-lime.json records no call (it was derived from other "
        "results, or written before Probity recorded calls), so it cannot be re-run alone; probity "
        "verify checks a whole report."
    )


def test_results_written_before_calls_read_and_write_back_unchanged(tmp_path) -> None:
    from engine.report import ATTACHMENT_NAME  # noqa: F401  (the report package reads the embedded results)
    from engine.results import result_from_dict
    from engine.session_store import read_session
    from engine.verify import read_report_results

    document = read_report_results(FIXTURE / "report.pdf")
    for name, data in document["results"].items():
        assert result_from_dict(data).to_dict() == data, name
    explained = json.loads((FIXTURE / "explain-lime.json").read_text())
    assert result_from_dict(explained["result"]).to_dict() == explained["result"]

    folder = tmp_path / "session"
    shutil.copytree(FIXTURE, folder)
    state = read_session(folder / "session.probity")
    assert not state.problems
    saved = json.loads((FIXTURE / "session.probity").read_text())
    assert set(state.results) == set(saved["results"])
    for name, result in state.results.items():
        assert result.to_dict() == saved["results"][name], name
