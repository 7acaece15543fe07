"""A report made from a session's results: written like an audit's, re-run result by result by verify."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.audit import load_inputs
from engine.errors import ProbityError
from engine.jobs import JobContext
from engine.plan import JobSpec, run_job
from engine.record import ReportOptions, session_record, write_record_outputs
from engine.verify import verify_report

TIMESTAMP = "2026-12-06T09:00:00+00:00"


@pytest.fixture(scope="module")
def mlp_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A scikit-learn MLP (differentiable: Integrated Gradients applies)."""
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("mlp")
    frame = load_breast_cancer(as_frame=True).frame
    model = make_pipeline(StandardScaler(), MLPClassifier((8,), activation="tanh", max_iter=300, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is no concern here
        model.fit(frame.drop(columns="target"), frame["target"])
    frame.to_csv(folder / "bc.csv", index=False)
    sio.dump(model, folder / "mlp.skops")
    return folder / "bc.csv", folder / "mlp.skops"


def _session(data: Path, model: Path, specs: dict[str, JobSpec], *, seeds: dict[str, int] | None = None):
    inputs = load_inputs(data, model, target="target", ctx=JobContext())
    results = {
        key: run_job(spec, inputs, JobContext(seed=(seeds or {}).get(key, 0))).result for key, spec in specs.items()
    }
    assert inputs.dataset is not None
    return inputs, session_record(
        dataset=inputs.dataset,
        roles=inputs.roles,
        model=inputs.model,
        results=results,
        seed=0,
        timestamp=TIMESTAMP,
        report=ReportOptions(auditor="A. Auditor", reviewer_notes="Looked at IG and LIME."),
    )


SPECS = {
    "permutation": JobSpec("permutation", {"n_repeats": 3}),
    "lime": JobSpec("lime", {"num_samples": 300}, rows=(0, 1, 2)),
    "ig": JobSpec("ig", rows=(0, 1, 2, 3)),
}


def test_a_session_report_holds_what_was_looked_at_and_verifies(mlp_files, tmp_path: Path) -> None:
    data, model = mlp_files
    # Results of one session may run under different seeds; each records its own.
    _, record = _session(data, model, SPECS, seeds={"lime": 7})
    out = tmp_path / "report"
    written = write_record_outputs(record, out, record.report, command=None)
    document = json.loads(written["results"].read_text())
    assert document["provenance"]["kind"] == "session"
    assert list(document["results"]) == ["permutation", "lime", "ig", "agreement"]
    assert (
        document["results"]["ig"]["method"] == "ig" and "median_deletion_gain" in document["results"]["ig"]["summary"]
    )
    assert document["results"]["lime"]["provenance"]["seed"] == 7
    # The agreement figure compares every global ranking there is, Integrated Gradients' too.
    assert document["results"]["agreement"]["methods"] == ["permutation", "mean |LIME|", "mean |IG|"]

    outcome = verify_report(written["report"], data=data, model=model)
    assert outcome.ok, outcome.lines()
    assert outcome.n_results == 4 and "pages rebuilt from the embedded results" in outcome.checked

    # Another model with the same columns: the re-run numbers differ and verify says so.
    other = tmp_path / "other.skops"
    _retrained(data, other)
    shutil.copy(other, tmp_path / model.name)
    bad = verify_report(written["report"], data=data, model=tmp_path / model.name)
    assert not bad.ok and any("model SHA-256 differs" in d for d in bad.differences)


def _retrained(data: Path, path: Path) -> None:
    import pandas as pd
    import skops.io as sio
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data)
    model = make_pipeline(StandardScaler(), MLPClassifier((4,), activation="tanh", max_iter=200, random_state=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(frame.drop(columns="target"), frame["target"])
    sio.dump(model, path)


def test_a_session_record_refuses_what_a_reader_could_not_re_run(mlp_files) -> None:
    import dataclasses

    data, model = mlp_files
    inputs, record = _session(data, model, {"lime": SPECS["lime"]})
    assert inputs.dataset is not None
    lime = record.results["lime"]
    callless = dataclasses.replace(lime, provenance=dataclasses.replace(lime.provenance, call=None))
    with pytest.raises(ProbityError, match="records no call .* run it again to report it"):
        session_record(
            dataset=inputs.dataset,
            roles=inputs.roles,
            model=inputs.model,
            results={"lime": callless},
            seed=0,
            timestamp=TIMESTAMP,
            report=None,
        )
    elsewhere = dataclasses.replace(lime, provenance=dataclasses.replace(lime.provenance, model_sha256="0" * 64))
    with pytest.raises(ProbityError, match="computed on other data or another model"):
        session_record(
            dataset=inputs.dataset,
            roles=inputs.roles,
            model=inputs.model,
            results={"lime": elsewhere},
            seed=0,
            timestamp=TIMESTAMP,
            report=None,
        )
    with pytest.raises(ProbityError, match="no results to report"):
        session_record(
            dataset=inputs.dataset,
            roles=inputs.roles,
            model=inputs.model,
            results={},
            seed=0,
            timestamp=TIMESTAMP,
            report=None,
        )


def test_an_edited_number_in_a_session_report_is_found(mlp_files, tmp_path: Path) -> None:
    from engine.report import ReportInput, render_report

    data, model = mlp_files
    _, record = _session(data, model, {"ig": SPECS["ig"]})
    document = record.to_document()
    values = np.asarray(document["results"]["ig"]["values"], dtype=float)
    values[0, 0] += 0.5
    document["results"]["ig"]["values"] = values.tolist()
    pdf = tmp_path / "edited.pdf"
    pdf.write_bytes(render_report(ReportInput.from_document(document, auditor="A. Auditor")))
    outcome = verify_report(pdf, data=data, model=model)
    assert not outcome.ok
    assert any("ig" in d and "values" in d for d in outcome.differences), outcome.differences


def test_a_session_report_whose_agreement_left_out_ig_still_verifies(mlp_files, tmp_path: Path) -> None:
    """Reports written before IG joined the agreement figure are re-derived over the rankings they compared."""
    import dataclasses

    from engine.plan import method_agreement_of

    data, model = mlp_files
    inputs, record = _session(data, model, SPECS)
    assert inputs.dataset is not None
    older = method_agreement_of(
        [record.results[k] for k in ("permutation", "lime", "ig")],
        seed=0,
        dataset=inputs.dataset,
        model=inputs.model,
        rankings=("permutation", "mean |LIME|"),
    )
    assert older is not None and older.methods == ("permutation", "mean |LIME|")
    record = dataclasses.replace(record, results={**record.results, "agreement": older})
    written = write_record_outputs(record, tmp_path / "older", record.report, command=None)
    outcome = verify_report(written["report"], data=data, model=model)
    assert outcome.ok, outcome.lines()


def test_the_audit_adds_integrated_gradients_where_the_model_is_differentiable(
    mlp_files, demo_paths, tmp_path: Path
) -> None:
    """A differentiable model's audit carries IG and its ranking in the agreement; a tree model's carries neither."""
    from engine.audit import AuditRequest, run_audit, write_audit_outputs

    data, model = mlp_files
    request = AuditRequest(
        data=data,
        model=model,
        target="target",
        analyses=("permutation", "lime", "ig"),
        n_repeats=2,
        lime_samples=300,
        explain_rows="0-2",
        timestamp=TIMESTAMP,
        measure_times=False,
    )
    outcome = run_audit(request, JobContext())
    ig = outcome.results["ig"]
    assert ig.method == "ig" and list(ig.rows) == [0, 1, 2] and not outcome.warnings
    assert outcome.results["agreement"].methods == ("permutation", "mean |LIME|", "mean |IG|")
    written = write_audit_outputs(outcome, tmp_path / "mlp", ReportOptions())
    checked = verify_report(written["report"], data=data, model=model)
    assert checked.ok, checked.lines()

    trees = AuditRequest(
        data=Path(demo_paths.data),
        model=Path(demo_paths.model),
        target="approved",
        analyses=("ig",),
        measure_times=False,
    )
    tree_outcome = run_audit(trees, JobContext())
    assert "ig" not in tree_outcome.results and not tree_outcome.warnings
