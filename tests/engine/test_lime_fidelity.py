"""LIME's fidelity is judged at the explained row too: the surrogate's prediction against the model's.

A weighted R² is computed over thousands of perturbed samples, of which the
explained row is one; a surrogate can score a high R² and still predict 0.68
where the model gives 0.01.  These tests hold the engine's verdict, the
result's warnings and the PDF's sentences to that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from reportlab.platypus import Flowable, KeepTogether, Paragraph

from engine.attribution import AttributionResult
from engine.explain import lime as L
from engine.jobs import JobContext
from engine.report import ReportInput
from engine.report.facts import Facts
from engine.report.sections import build_story
from engine.report.sections.local import _local_one
from engine.report.sections.summary import _fidelity, executive_summary
from engine.results import Provenance, result_from_dict

from .test_lime import FunctionModel, _inputs

WIDTH = 170 * 2.834645669  # 170 mm in points


# -- real LIME runs --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def step_result() -> AttributionResult:
    """A classifier whose P(1) is 0.9 above x2's third quartile, except in a narrow hole of x1 where it is 0.01.

    Row 0 sits in the hole: nearly no perturbed sample lands there, so the surrogate follows x2's step
    (weighted R² near 1) and predicts about 0.9 at a row where the model gives 0.01.
    """
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.random(2000), "x2": rng.random(2000)})
    frame.loc[0, ["x1", "x2"]] = [0.505, 0.95]
    q3 = float(np.percentile(frame["x2"], 75))

    def proba(X: pd.DataFrame) -> np.ndarray:
        x1, x2 = X["x1"].to_numpy(), X["x2"].to_numpy()
        p = np.where(x2 > q3, 0.9, 0.1)
        return np.where((x1 > 0.50) & (x1 < 0.51), 0.01, p)

    model = FunctionModel(proba, ("x1", "x2"), classes=(0, 1))
    return L.run(_inputs(frame, model), ctx=JobContext(seed=1), rows=[0, 1, 2], num_samples=2000, stability_runs=0)


def test_a_step_at_the_row_is_flagged_although_the_r2_is_high(step_result: AttributionResult) -> None:
    r = step_result
    assert r.predictions[0] == pytest.approx(0.01)
    assert r.quality["r2"][0] > 0.9  # the R² alone would call this surrogate excellent
    gap = r.quality["prediction_gap"]
    np.testing.assert_allclose(gap, np.abs(r.quality["local_prediction"] - r.predictions))
    assert gap[0] > 0.7
    assert r.summary["max_prediction_gap"] == pytest.approx(gap.max())

    verdict = L.lime_fidelity(r, 0)
    assert verdict.row == 0 and not verdict.ok and verdict.gap_poor and not verdict.r2_poor
    assert verdict.level == "bad"
    assert verdict.surrogate_prediction == pytest.approx(r.quality["local_prediction"][0])
    assert verdict.model_prediction == pytest.approx(0.01)
    assert verdict.problems[0].startswith("At row 0 the surrogate predicts 0.")
    assert "where the model gives 0.01" in verdict.problems[0]

    # The result's warnings name the row; the summary counts it.
    poor = [L.lime_fidelity(r, i) for i in range(len(r.rows))]
    assert r.summary["n_poor_fidelity"] == sum(not v.ok for v in poor) >= 1
    warning = L.lime_fidelity_warning(r)
    assert warning is not None and warning in r.warnings
    assert "at row 0 it predicts" in warning.lower() and "where the model gives 0.01" in warning


def test_a_smooth_linear_model_is_judged_faithful_at_every_row() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(1000, 3)), columns=["a", "b", "c"])
    model = FunctionModel(lambda X: X.to_numpy() @ np.array([1.0, -2.0, 0.5]), ("a", "b", "c"))
    r = L.run(
        _inputs(frame, model),
        ctx=JobContext(seed=1),
        rows=list(range(20)),
        num_samples=2000,
        stability_runs=0,
        discretize_continuous=False,
    )
    assert all(L.lime_fidelity(r, i).ok for i in range(20))
    assert L.lime_fidelity_warning(r) is None
    assert r.summary["n_poor_fidelity"] == 0
    assert not any("not faithful" in w for w in r.warnings)
    # The gap is judged against the spread of the model's output, about sqrt(1 + 4 + 0.25) here.
    assert np.all(np.abs(r.quality["output_spread"] - np.sqrt(5.25)) < 0.3)


def test_a_smooth_classifier_is_judged_faithful_at_every_row() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(1000, 2)), columns=["a", "b"])

    def proba(X: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(0.3 * X["a"].to_numpy() - 0.2 * X["b"].to_numpy())))

    r = L.run(
        _inputs(frame, FunctionModel(proba, ("a", "b"), classes=("no", "yes"))),
        ctx=JobContext(seed=2),
        rows=list(range(15)),
        num_samples=2000,
        stability_runs=0,
        discretize_continuous=False,
    )
    assert r.output_space == "probability"
    assert [i for i in range(15) if not L.lime_fidelity(r, i).ok] == []


def test_results_saved_before_the_gap_existed_are_judged_alike(step_result: AttributionResult) -> None:
    data = json.loads(json.dumps(step_result.to_dict()))
    for key in ("prediction_gap", "output_spread"):
        del data["quality"][key]
    old = result_from_dict(data)
    assert isinstance(old, AttributionResult) and "prediction_gap" not in old.quality
    for i in range(len(old.rows)):
        assert L.lime_fidelity(old, i) == L.lime_fidelity(step_result, i)
    assert L.lime_fidelity_warning(old) == L.lime_fidelity_warning(step_result)


# -- the judgement on results written by hand ----------------------------------------------------------------------


def _result(
    *,
    local: Iterable[float],
    model: Iterable[float],
    r2: Iterable[float],
    space: str = "probability",
    spread: Iterable[float] | None = None,
    warnings: tuple[str, ...] = (),
) -> AttributionResult:
    local_a, model_a = np.asarray(list(local), dtype=float), np.asarray(list(model), dtype=float)
    n = local_a.size
    quality: dict[str, Any] = {"r2": np.asarray(list(r2), dtype=float), "local_prediction": local_a}
    if spread is not None:
        quality["output_spread"] = np.asarray(list(spread), dtype=float)
    provenance = Provenance(
        method="lime",
        parameters={"rows": list(range(n))},
        seed=3,
        data_sha256=None,
        model_sha256=None,
        versions={},
        started_at="2024-01-01T00:00:00Z",
        finished_at="2024-01-01T00:00:01Z",
        warnings=warnings,
    )
    return AttributionResult(
        provenance=provenance,
        method="lime",
        feature_names=("income", "debt"),
        rows=np.arange(n) * 5,
        values=np.tile([0.3, -0.2], (n, 1)),
        predictions=model_a,
        output_name="P(approved)" if space == "probability" else "prediction",
        output_space=space,
        class_index=1 if space == "probability" else None,
        quality=quality,
        summary={"median_r2": float(np.median(quality["r2"]))},
        extras={"local_predictions": local_a, "intercepts": np.zeros(n)},
    )


def test_a_regression_gap_is_judged_against_the_spread_of_the_models_output() -> None:
    # The same gap of 2 is small where the model's output spreads over sd 20 and large where it spreads over 2.
    r = _result(local=[12.0, 12.0], model=[10.0, 10.0], r2=[0.9, 0.9], space="value", spread=[20.0, 2.0])
    wide, narrow = L.lime_fidelity(r, 0), L.lime_fidelity(r, 1)
    assert wide.ok and wide.scaled_gap == pytest.approx(0.1)
    assert not narrow.ok and narrow.scaled_gap == pytest.approx(1.0) and narrow.row == 5
    assert "1 standard deviations of the model's output" in narrow.problems[0]
    # A probability's gap is judged as it is: 0.09 passes, 0.11 does not.
    p = _result(local=[0.5, 0.5], model=[0.41, 0.39], r2=[0.9, 0.9])
    assert L.lime_fidelity(p, 0).ok and not L.lime_fidelity(p, 1).ok


def test_an_old_regression_result_scales_the_gap_by_the_spread_of_its_predictions() -> None:
    r = _result(local=[3.0, 0.0, 10.0], model=[0.0, 0.0, 10.0], r2=[0.9, 0.9, 0.9], space="value")
    spread = float(np.std([0.0, 0.0, 10.0]))
    assert L.lime_fidelity(r, 0).scaled_gap == pytest.approx(3.0 / spread)
    assert not L.lime_fidelity(r, 0).ok and L.lime_fidelity(r, 1).ok
    one = _result(local=[3.0], model=[0.0], r2=[0.9], space="value")  # one row: no spread, so not judged
    assert L.lime_fidelity(one, 0).ok


# -- the PDF ------------------------------------------------------------------------------------------------------


def _texts(flowables: Iterable[Flowable]) -> Iterator[str]:
    for f in flowables:
        if isinstance(f, Paragraph):
            yield f.text
        elif isinstance(f, KeepTogether):
            yield from _texts(f._content)


def _document(result: AttributionResult) -> dict[str, Any]:
    return {
        "provenance": {"finished_at": "2024-01-01T00:00:01Z", "seed": 3},
        "data": {"rows": 100, "columns": 3, "schema": []},
        "model": {"task": "classification", "classes": [0, 1], "input_columns": ["income", "debt"]},
        "warnings": list(result.warnings),
        "results": {"lime": json.loads(json.dumps(result.to_dict()))},
    }


def _facts(document: dict[str, Any]) -> Facts:
    return Facts.gather(ReportInput.from_document(document, local_rows=[0, 5]), WIDTH)


@pytest.mark.parametrize("recorded", [False, True], ids=["old-result", "result-with-its-warning"])
def test_the_pdf_warns_of_a_surrogate_far_from_the_model_at_its_row(recorded: bool) -> None:
    # High R² everywhere; at row 5 the surrogate predicts 0.68 where the model gives 0.01.
    base = _result(local=[0.4, 0.68], model=[0.41, 0.01], r2=[0.95, 0.93])
    warning = L.lime_fidelity_warning(base)
    assert warning is not None
    result = _result(local=[0.4, 0.68], model=[0.41, 0.01], r2=[0.95, 0.93], warnings=(warning,) if recorded else ())
    facts = _facts(_document(result))

    # The executive summary's warnings name the row and both predictions, once.
    summary = "\n".join(_texts(executive_summary(facts, 1)))
    assert summary.lower().count("at row 5 it predicts 0.68 where the model gives 0.01") == 1
    assert "at 1 of 2 explained rows (5)" in summary
    assert ("row 5" in "\n".join(_fidelity(facts))) is (not recorded)

    # The row's local explanation warns under its chart; the faithful row does not.
    lime = facts.lime
    assert lime is not None
    at_5 = "\n".join(_texts(_local_one(lime, 1, WIDTH)))
    assert (
        "LIME's surrogate is not faithful to the model at row 5: it predicts 0.68 for P(approved) "
        "where the model gives 0.01"
    ) in at_5
    at_0 = "\n".join(_texts(_local_one(lime, 0, WIDTH)))
    assert "not faithful" not in at_0

    # And the whole story carries both.
    story = "\n".join(_texts(build_story(facts, attachment_sha256="0" * 64)))
    assert "not faithful to the model at row 5" in story
