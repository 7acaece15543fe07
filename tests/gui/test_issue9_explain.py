"""Issue 9 in the Explain workspace: no stale state, no method offered that cannot run, no SHAP computed twice,
and categorical dependence drawn without lines between unordered categories."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from gui.main_window import MainWindow

WAIT_MS = 60_000


def _open(qtbot, window: MainWindow, data: Path, model: Path) -> None:
    window.open_data(data, target="approved", sensitive=("group",))
    window.open_model(model)
    qtbot.waitUntil(lambda: window.session.dataset is not None and window.session.model is not None, timeout=WAIT_MS)
    window.tabs.setCurrentWidget(window.explain_pane)


@pytest.fixture
def windows(qtbot, settings, tmp_path):
    made: list[MainWindow] = []

    def make() -> MainWindow:
        window = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
        window.resize(1300, 900)
        window.show()
        made.append(window)
        return window

    yield make
    for window in made:
        window.close()
        window.deleteLater()


@pytest.fixture
def demo_copy(tmp_path, demo_paths):
    folder = tmp_path / "work"
    folder.mkdir()
    return (
        Path(shutil.copy(demo_paths.data, folder / "credit.csv")),
        Path(shutil.copy(demo_paths.model, folder / "credit_model.skops")),
    )


@pytest.fixture
def win(qtbot, windows, demo_copy):
    window = windows()
    _open(qtbot, window, *demo_copy)
    return window


def _run(qtbot, pane, method: str, *, rows: str, seed: int = 0, expect_error: bool = False, **params):
    pane.set_method(method)
    if params:
        pane.set_params(params)
    pane.rows_edit.setText(rows)
    pane.include_selected.setChecked(False)
    pane.seed_box.setValue(seed)
    job = pane.run()
    assert job is not None, pane.error.text()
    qtbot.waitUntil(lambda: pane.job_id is None, timeout=WAIT_MS)
    if not expect_error:
        assert pane.error.kind == "", pane.error.text()


# -- 6: stale state ---------------------------------------------------------------------------------------


def test_an_error_goes_away_when_the_method_changes(qtbot, win):
    pane = win.explain_pane
    pane.selection.clear(source="test")
    _run(qtbot, pane, "lime", rows="", expect_error=True)
    assert pane.error.kind == "error" and "Choose the rows" in pane.error.text()
    pane.set_method("shap")
    assert pane.error.kind == ""


def test_a_hover_label_does_not_survive_a_rerun_without_its_row(qtbot, win):
    pane = win.explain_pane
    _run(qtbot, pane, "shap", rows="0-9")
    beeswarm = pane.beeswarm_view
    k = int(np.flatnonzero(beeswarm.point_rows == 3)[0])
    vb = beeswarm.plot_item.vb
    beeswarm._on_scene_mouse_moved(vb.mapViewToScene(QPointF(float(beeswarm.point_x[k]), float(beeswarm.point_y[k]))))
    assert beeswarm.hover_label.text().startswith("Row 3 · ")
    _run(qtbot, pane, "shap", rows="20-29")
    assert 3 not in beeswarm.point_rows
    assert beeswarm.hover_label.text() == beeswarm.HOVER_HINT


def test_a_restored_session_shows_the_rows_of_its_result_and_the_selection(qtbot, windows, demo_copy, tmp_path):
    first = windows()
    _open(qtbot, first, *demo_copy)
    pane = first.explain_pane
    _run(qtbot, pane, "lime", rows="first:4", num_samples=200, stability_runs=2)
    first.selection.set_rows([5, 7, 11], current=7, source="test")
    path = tmp_path / "work" / "audit.probity"
    with qtbot.waitSignal(first.session_keeper.sig_saved, timeout=WAIT_MS):
        first.session_keeper.save(path)
    first.close()

    second = windows()
    with qtbot.waitSignal(second.session_keeper.sig_opened, timeout=WAIT_MS):
        second.session_keeper.open(path)
    restored = second.explain_pane
    assert restored.method_name == "lime"
    assert tuple(restored.results["lime"].rows) == (0, 1, 2, 3)
    assert restored.rows_edit.text() == "first:4" and not restored.include_selected.isChecked()
    assert second.selection.rows.tolist() == [5, 7, 11] and second.selection.current == 7
    assert restored.lime_view.shown_row in (0, 1, 2, 3)


def test_a_session_saved_without_row_specs_writes_out_the_results_rows():
    from gui.panes.explain.pane import _rows_used, rows_spec_text

    assert rows_spec_text(np.array([41, 0, 1, 2, 3, 17, 40])) == "0-3,17,40-41"
    result = SimpleNamespace(rows=np.array([2, 3, 4, 9]))
    assert _rows_used(None, {"explain-lime": result}) == {"lime": {"rows_spec": "2-4,9", "include_selected": False}}


# -- 8: methods that cannot run are greyed out with the engine's reason ----------------------------------


def test_gradient_and_tree_methods_are_offered_only_where_they_apply(qtbot, win):
    from engine.registry import refusal

    pane = win.explain_pane
    pane.ensure_ready()
    model = win.session.model
    items = pane.method_box.model()
    names = [pane.method_box.itemData(i) for i in range(pane.method_box.count())]
    ig = items.item(names.index("ig"))
    reason = refusal("ig", model, feature_names=win.session.roles.features)
    assert reason is not None and reason.startswith("Gradient methods need a differentiable model")
    assert not ig.isEnabled() and ig.toolTip().endswith(reason)
    assert items.item(names.index("treeshap")).isEnabled()  # the demo model is a tree ensemble
    assert items.item(names.index("shap")).toolTip() == ""

    jobs: list[int] = []
    win.runner.sig_job_queued.connect(jobs.append)
    pane.set_method("ig")
    assert pane.run() is None and not jobs  # refused before anything runs, with the reason
    assert pane.error.kind == "error" and pane.error.text() == reason


# -- 9: SHAP computed once for SHAP and then clusters ---------------------------------------------------


def test_clusters_reuse_the_shap_values_just_computed_and_match_a_fresh_computation(qtbot, win, monkeypatch):
    import dataclasses

    from engine import registry
    from engine.jobs import JobContext
    from gui.panes.explain import run_explanation

    calls: list[tuple[int, ...]] = []
    original = registry.METHODS["shap"]

    @functools.wraps(original.run)
    def counted(inputs, *, ctx, **params):
        calls.append(tuple(params.get("rows") or ()))
        return original.run(inputs, ctx=ctx, **params)

    monkeypatch.setitem(registry.METHODS, "shap", dataclasses.replace(original, run=counted))
    pane = win.explain_pane
    _run(qtbot, pane, "shap", rows="random:60", seed=11)
    shap = pane.results["shap"]
    _run(qtbot, pane, "clusters", rows="random:60", seed=11, k=3)
    clusters = pane.results["clusters"]
    assert len(calls) == 1  # the clustering took the SHAP values of the run before
    reused = clusters.provenance.parameters["attributions_reused"]
    assert reused["started_at"] == shap.provenance.started_at and reused["seed"] == 11 and reused["rows"] == 60
    np.testing.assert_array_equal(clusters.rows, shap.rows)

    # A fresh computation (nothing to reuse) gives the same clusters.
    fresh = run_explanation(
        win.session.audit_inputs(),
        method="clusters",
        params=pane.form_values(),
        rows_spec="random:60",
        ctx=JobContext(seed=11),
    )
    assert len(calls) == 2 and not fresh.shap_reused
    np.testing.assert_array_equal(fresh.attributions.values, shap.values)
    np.testing.assert_array_equal(fresh.result.labels, clusters.labels)
    np.testing.assert_allclose(fresh.result.projection, clusters.projection, rtol=0, atol=0)
    assert fresh.result.k == clusters.k == 3
    assert "attributions_reused" not in fresh.result.provenance.parameters

    # Another seed draws other rows: nothing to reuse.
    _run(qtbot, pane, "clusters", rows="random:60", seed=12, k=3)
    assert len(calls) == 3


# -- 10: categorical dependence ------------------------------------------------------------------------------


def _categorical_result():
    grid = ("Professional services and consulting", "Professional services (public sector)", "retired", "n/a")
    ice = np.array([[0.2, 0.25, 0.6, 0.1], [0.3, 0.35, 0.7, 0.2], [0.1, 0.15, 0.5, 0.05]])
    dep = SimpleNamespace(feature="employment", kind="categorical", grid=grid, pdp=ice.mean(axis=0), ice=ice)
    return SimpleNamespace(
        features=(dep,), rows=np.array([4, 8, 15]), output_name="P(approved=1)", feature=lambda name: dep
    )


def test_categorical_dependence_draws_dots_and_levels_never_lines_between_categories(qtbot):
    from gui.plots.dependence import DependenceView

    view = DependenceView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    view.set_result(_categorical_result())
    assert view.categorical
    # ICE: dots only (no pen), spread around their category.
    assert view.ice_item.opts["pen"].style() == Qt.PenStyle.NoPen and view.ice_item.opts["symbol"] == "o"
    xs, ys = view.ice_item.getData()
    assert xs.size == 12 and np.all(np.abs(xs - np.round(xs)) < 0.5)
    # PDP: one level per category, drawn as separate pairs inside the category.
    assert view.pdp_item.opts["connect"] == "pairs"
    px, py = view.pdp_item.getData()
    pairs = px.reshape(-1, 2)
    assert pairs.shape == (4, 2) and np.array_equal(np.round(pairs.mean(axis=1)), np.arange(4))
    assert np.all(np.abs(pairs - np.arange(4)[:, None]) < 0.5)
    np.testing.assert_allclose(py.reshape(-1, 2)[:, 0], _categorical_result().features[0].pdp)
    # Long names shortened, distinct, with a key; the hover names the category in full.
    assert all(len(label) <= 12 for label in view.category_labels)
    assert len(set(view.category_labels)) == 4 and view.category_labels[2:] == ["retired", "n/a"]
    assert view.category_key.isVisible()
    assert "Professional services and consulting" in view.category_key.text()
    assert "Professional services (public sector)" in view.category_key.text()
    assert view.hover_text(0.0, 10.0).startswith("employment = Professional services and consulting · ")
    # A dot can still be picked: row 8's dot at the third category.
    dot = np.flatnonzero((np.round(xs) == 2) & np.isclose(ys, 0.7))[0]
    assert view.curve_at(float(xs[dot]), 0.7) == 1

    # A numeric feature afterwards goes back to lines.
    numeric = SimpleNamespace(
        feature="income",
        kind="numeric",
        grid=(1.0, 2.0, 3.0),
        pdp=np.array([0.1, 0.2, 0.3]),
        ice=np.array([[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]]),
    )
    view.set_result(
        SimpleNamespace(features=(numeric,), rows=np.array([0, 1]), output_name="P", feature=lambda name: numeric)
    )
    assert not view.categorical and view.pdp_item.opts["connect"] == "all"
    assert view.ice_item.opts["pen"].style() != Qt.PenStyle.NoPen and not view.category_key.isVisible()


def test_hover_labels_reset_when_a_view_gets_a_new_result(qtbot):
    from gui.plots.dependence import DependenceView

    view = DependenceView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    view.set_result(_categorical_result())
    xs, ys = view.ice_item.getData()
    dot = int(np.flatnonzero((np.round(xs) == 1) & np.isclose(ys, 0.35))[0])
    view.hover_label.setText(view.hover_text(float(xs[dot]), 0.35))
    assert "row 8" in view.hover_label.text()
    view.set_result(_categorical_result())
    assert view.hover_label.text() == view.HOVER_HINT
