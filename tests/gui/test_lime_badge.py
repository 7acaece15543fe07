"""The LIME fidelity badge judges the surrogate's prediction at the row, not only its R²."""

from __future__ import annotations

import numpy as np
import pytest

from engine.attribution import AttributionResult
from engine.results import Provenance
from gui.plots.local import LimeView, badge_style


def _lime_result(
    *, local: list[float], model: list[float], r2: list[float], space: str = "probability", with_gap: bool = True
) -> AttributionResult:
    """A LIME result as the engine writes it (or, without ``with_gap``, as results saved before the gap existed)."""
    n = len(local)
    provenance = Provenance(
        method="lime",
        parameters={"stability_runs": 0},
        seed=0,
        data_sha256=None,
        model_sha256=None,
        versions={},
        started_at="",
        finished_at="",
    )
    quality = {"r2": np.asarray(r2), "local_prediction": np.asarray(local)}
    if with_gap:
        quality["prediction_gap"] = np.abs(np.asarray(local) - np.asarray(model))
        quality["output_spread"] = np.full(n, 0.3)
    return AttributionResult(
        provenance=provenance,
        method="lime",
        feature_names=("income", "debt"),
        rows=np.arange(10, 10 + n),
        values=np.tile([0.4, -0.1], (n, 1)),
        predictions=np.asarray(model),
        output_name="P(1)",
        output_space=space,
        class_index=1,
        quality=quality,
        summary={},
        extras={"local_predictions": np.asarray(local), "intercepts": np.zeros(n)},
    )


@pytest.fixture
def view(qtbot):
    widget = LimeView()
    qtbot.addWidget(widget)
    return widget


@pytest.mark.parametrize("with_gap", [True, False])
def test_high_r2_with_a_surrogate_far_from_the_model_is_not_green_and_states_the_gap(view, with_gap) -> None:
    result = _lime_result(local=[0.68, 0.41], model=[0.01, 0.40], r2=[0.93, 0.93], with_gap=with_gap)
    view.set_result(result, row=10)
    badge = view.r2_badge
    assert badge is not None and view.shown_row == 10
    assert badge.styleSheet() != badge_style("good")
    assert badge.styleSheet() == badge_style("bad")
    assert "surrogate 0.68 vs model 0.01" in badge.text()
    assert "At row 10 the surrogate predicts 0.68 for P(1) where the model gives 0.01" in badge.toolTip()
    assert "a gap of 0.67" in badge.toolTip()

    # The next row's surrogate matches the model and fits well: green, and no gap named.
    view.show_row(11)
    assert view.r2_badge.styleSheet() == badge_style("good")
    assert view.r2_badge.text() == "Local fidelity R² 0.93"


def test_low_r2_alone_is_amber_and_both_problems_are_red_with_both_reasons(view) -> None:
    result = _lime_result(local=[0.42, 0.68], model=[0.40, 0.01], r2=[0.2, 0.2])
    view.set_result(result, row=10)
    assert view.r2_badge.styleSheet() == badge_style("warning")
    assert view.r2_badge.text() == "Local fidelity R² 0.2 · low"
    assert "weighted R² is 0.2, below 0.5" in view.r2_badge.toolTip()
    view.show_row(11)
    assert view.r2_badge.styleSheet() == badge_style("bad")
    assert view.r2_badge.text() == "Local fidelity R² 0.2 · low · surrogate 0.68 vs model 0.01"
    tip = view.r2_badge.toolTip()
    assert "a gap of 0.67" in tip and "weighted R² is 0.2, below 0.5" in tip
