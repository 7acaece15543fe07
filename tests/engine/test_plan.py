"""One job layer: the same analysis gives the same numbers from the CLI, the GUI's job function and the audit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.audit import AuditRequest, load_inputs, run_audit
from engine.cli import main
from engine.explain.quality import faithfulness_summary
from engine.jobs import JobContext
from engine.plan import FAITHFULNESS, JobSpec, base_spec, run_job

ROWS = (0, 3, 7)


@pytest.fixture(scope="module")
def inputs(demo_paths):
    return load_inputs(Path(demo_paths.data), Path(demo_paths.model), target="approved", ctx=JobContext())


def _explain_cli(demo_paths, tmp_path: Path, capsys, method: str, *extra: str) -> dict:
    out = tmp_path / f"{method}.json"
    argv = ["--progress", "none", "explain", method, "--data", str(demo_paths.data), "--model", str(demo_paths.model)]
    code = main([*argv, "--target", "approved", "--rows", ",".join(map(str, ROWS)), *extra, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    return json.loads(out.read_text())


def test_lime_from_the_cli_the_gui_and_the_audit_is_one_result(demo_paths, inputs, tmp_path: Path, capsys) -> None:
    from gui.panes.explain import run_explanation

    cli = _explain_cli(demo_paths, tmp_path, capsys, "lime", "--samples", "400")
    gui = run_explanation(
        inputs, method="lime", params={"num_samples": 400}, rows_spec=",".join(map(str, ROWS)), ctx=JobContext()
    ).result
    request = AuditRequest(
        data=Path(demo_paths.data),
        model=Path(demo_paths.model),
        target="approved",
        analyses=("lime",),
        explain_rows=",".join(map(str, ROWS)),
        lime_samples=400,
        measure_times=False,
    )
    audit = run_audit(request, JobContext(), inputs=inputs).results["lime"]
    values = np.asarray(cli["result"]["values"], dtype=float)
    assert np.array_equal(values, gui.values) and np.array_equal(values, audit.values)
    # Each carries the same faithfulness figures, made under the same stream.
    for result in (gui, audit):
        assert result.provenance.call["faithfulness"]["stream"] == ["lime", "faithfulness"]
        assert result.summary["median_deletion_gain"] == pytest.approx(cli["result"]["summary"]["median_deletion_gain"])


def test_every_attribution_gets_faithfulness_figures_and_nothing_else_does(inputs) -> None:
    shap = run_job(JobSpec("shap", rows=ROWS), inputs, JobContext()).result
    summary = faithfulness_summary(shap)
    assert summary is not None and summary.n_rows == len(ROWS)
    assert summary.deletion_gain > 0 and summary.insertion_gain > 0 and summary.warning() is None
    assert set(FAITHFULNESS) <= set(shap.provenance.call["faithfulness"])
    plain = run_job(JobSpec("shap", rows=ROWS, faithfulness=False), inputs, JobContext()).result
    assert faithfulness_summary(plain) is None and "faithfulness" not in plain.provenance.call
    assert np.array_equal(plain.values, shap.values)  # the figures are attached; the attributions are the same
    perf = run_job(JobSpec("performance"), inputs, JobContext()).result
    assert not hasattr(perf, "quality") or not perf.quality


def test_what_a_method_builds_on_is_exactly_that_method_run_alone(inputs) -> None:
    spec = JobSpec("clusters", {"k": 2}, rows=tuple(range(40)))
    alone = run_job(base_spec(spec, "shap"), inputs, JobContext(seed=5)).result
    computed = run_job(spec, inputs, JobContext(seed=5))
    handed = run_job(spec, inputs, JobContext(seed=5), built={"attributions": alone})
    assert computed.reused == () and handed.reused == ("attributions",)
    assert np.array_equal(computed.built_on["attributions"].values, alone.values)
    assert np.array_equal(computed.result.labels, handed.result.labels)


def test_a_faithfulness_summary_warns_when_the_order_is_no_better_than_random(inputs) -> None:
    import dataclasses

    from engine.explain.quality import FaithfulnessSummary

    good = FaithfulnessSummary("lime", 5, 0.2, 0.9, 0.1, 0.05, "P(1)")
    assert good.ok and good.warning() is None
    assert "deletion area of 0.2 (+0.1 better than random orders)" in good.line()
    bad = dataclasses.replace(good, insertion_gain=-0.02)
    assert not bad.ok
    assert bad.warning() == (
        "The lime attributions order the features no better than random orders on insertion (median gain -0.02): "
        "do not rely on their ranking of features for these rows."
    )


def test_dependence_on_the_ranking_is_one_analysis_in_the_cli_the_gui_and_the_audit(
    demo_paths, inputs, tmp_path: Path, capsys
) -> None:
    """The composite "curves of the features permutation importance ranks highest" is declared once."""
    from gui.panes.explain import run_explanation

    out = tmp_path / "dependence.json"
    argv = ["--progress", "none", "explain", "dependence", "--data", str(demo_paths.data), "--model"]
    code = main([*argv, str(demo_paths.model), "--target", "approved", "--param", "top=2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    cli = json.loads(out.read_text())["result"]
    gui = run_explanation(inputs, method="dependence", params={"top": 2}, ctx=JobContext()).result
    request = AuditRequest(
        data=Path(demo_paths.data),
        model=Path(demo_paths.model),
        target="approved",
        analyses=("permutation", "dependence"),
        dependence_features=2,
        measure_times=False,
    )
    audit_results = run_audit(request, JobContext(), inputs=inputs).results
    audit = audit_results["dependence"]
    ranking = audit_results["permutation"].ranking()
    # The curves are those of the ranking's top two features, the same numbers from every front end.
    assert [f.feature for f in audit.features] == list(ranking[:2])
    assert [f.feature for f in gui.features] == [f["feature"] for f in cli["features"]] == list(ranking[:2])
    for ours, theirs, recorded in zip(gui.features, audit.features, cli["features"], strict=True):
        assert np.array_equal(ours.pdp, theirs.pdp)
        assert np.allclose(np.asarray(recorded["pdp"], dtype=float), theirs.pdp, rtol=0, atol=1e-12)
    # The call records the ranking it was given, so the result re-runs alone.
    call = audit.provenance.call
    assert call["method"] == "dependence" and call["parameters"]["top"] == 2
    assert call["parameters"]["importance"]["call"]["method"] == "permutation"
    assert call["stream"] == ["dependence"]


def test_dependence_without_a_ranking_is_refused_in_one_sentence(inputs) -> None:
    from engine.errors import AnalysisError
    from engine.explain.dependence import run as dependence

    with pytest.raises(AnalysisError, match=r"needs the model's permutation importance, computed first\.$"):
        dependence(inputs, ctx=JobContext(), importance=None)
