"""The Explain workspace on the demo: methods through the runner, linked views, instance picking, cancel."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt

from gui.main_window import MainWindow

WAIT_MS = 30_000


@pytest.fixture
def win(qtbot, settings, demo_paths):
    pytest.importorskip("engine.models.loading")
    window = MainWindow(settings=settings)
    window.resize(1300, 900)
    window.show()
    window.open_data(demo_paths.data, target="approved", sensitive=("group",))
    window.open_model(demo_paths.model)
    qtbot.waitUntil(lambda: window.session.dataset is not None and window.session.model is not None, timeout=WAIT_MS)
    window.tabs.setCurrentWidget(window.explain_pane)
    yield window
    window.close()
    window.deleteLater()


def _run(qtbot, pane, method: str, *, rows: str | None = None, include_selected: bool = True, **params):
    pane.set_method(method)
    if params:
        pane.set_params(params)
    if rows is not None:
        pane.rows_edit.setText(rows)
    pane.include_selected.setChecked(include_selected)
    job = pane.run()
    assert job is not None, pane.error.text()
    qtbot.waitUntil(lambda: pane.job_id is None, timeout=WAIT_MS)
    assert pane.error.kind == "", pane.error.text()
    return job


def _table_rows(window: MainWindow) -> list[int]:
    """Frame positions of the rows selected in the Dataset tab's table, read from Qt's own selection."""
    model = window.dataset_pane.table_model
    indexes = window.dataset_pane.table_view.selectionModel().selectedRows()
    return sorted(model.source_row(i.row()) for i in indexes)


def test_lime_on_three_rows_draws_one_bar_per_feature_with_r2_and_stability(qtbot, win):
    pane = win.explain_pane
    _run(qtbot, pane, "lime", rows="0-2", include_selected=False, num_samples=500, stability_runs=2)
    result = pane.results["lime"]
    features = win.session.model.input_columns
    assert result.values.shape == (3, len(features)) and result.rows.tolist() == [0, 1, 2]
    view = pane.lime_view
    assert pane.result_tabs.currentWidget() is view
    assert view.bar_count == len(features) == 8
    assert view.shown_row == 0
    # The bars are the row's coefficients, largest magnitude on top.
    assert np.allclose(np.sort(view.contributions), np.sort(result.values[0]))
    assert abs(view.contributions[0]) == pytest.approx(np.abs(result.values[0]).max())
    assert view.labels[0].startswith(f"{features[int(np.argmax(np.abs(result.values[0])))]} = ")

    for row in (0, 1, 2):
        win.selection.set_current(row, source="test")
        assert view.shown_row == row
        r2 = float(result.quality["r2"][row])
        from engine.explain.lime import lime_fidelity
        from gui.plots.local import LOW_R2, badge_style, format_number

        verdict = lime_fidelity(result, row)
        expected = f"Local fidelity R² {format_number(r2, 3)}" + (" · low" if r2 < LOW_R2 else "")
        if verdict.gap_poor:
            expected += (
                f" · surrogate {format_number(verdict.surrogate_prediction, 3)}"
                f" vs model {format_number(verdict.model_prediction, 3)}"
            )
        assert view.r2_badge.text() == expected
        # Green only when the engine judges the surrogate faithful at the row: amber for a poor R² alone,
        # red when it misses the model's prediction there.
        assert view.r2_badge.styleSheet() == badge_style(verdict.level)
        assert (verdict.level == "good") == (r2 >= LOW_R2 and not verdict.gap_poor)
        jaccard = float(result.quality["stability_jaccard"][row])
        assert view.stability_badge.text().startswith(f"Stability {format_number(jaccard, 2)} · ")
    assert view.hover_text(0).startswith(view.labels[0] + ": coefficient ")

    # A row LIME did not explain keeps the last one on screen and says so.
    win.selection.set_current(42, source="test")
    assert view.shown_row == 2 and "Row 42 is not among the 3 rows" in view.note.text()


def test_lime_without_rows_says_what_to_choose(qtbot, win):
    pane = win.explain_pane
    pane.set_method("lime")
    pane.rows_edit.setText("")
    pane.run()
    qtbot.waitUntil(lambda: pane.job_id is None, timeout=WAIT_MS)
    assert pane.error.text() == "Choose the rows to explain: select rows, or write a row spec such as first:20."
    assert "lime" not in pane.results


def test_shap_waterfall_sums_to_prediction_and_a_click_selects_the_row_everywhere(qtbot, win):
    pane = win.explain_pane
    win.selection.set_current(123, source="test")
    _run(qtbot, pane, "treeshap", rows="first:40")
    result = pane.results["shap"]
    assert 123 in result.rows.tolist() and len(result.rows) == 41  # the spec plus the selected row

    waterfall = pane.waterfall_view
    assert waterfall.shown_row == 123
    i = int(np.flatnonzero(result.rows == 123)[0])
    assert waterfall.base_value == pytest.approx(float(result.base_values[i]))
    assert waterfall.contributions.sum() == pytest.approx(result.predictions[i] - result.base_values[i], abs=1e-9)
    # With fewer bars than features the rest are summed into one, and the walk still ends at f(x).
    waterfall.MAX_BARS = 4
    waterfall.show_row(123)
    assert waterfall.bar_count == 4 and waterfall.labels[-1] == "5 other features"
    assert waterfall.contributions.sum() == pytest.approx(result.predictions[i] - result.base_values[i], abs=1e-9)
    top_start = waterfall.starts[0] + waterfall.contributions[0]
    assert top_start == pytest.approx(result.predictions[i], abs=1e-9)

    swarm = pane.beeswarm_view
    assert swarm.point_count == result.values.size
    assert swarm.highlighted_count == result.values.shape[1]  # the selected row, once per feature

    # A real mouse click on the most isolated dot (the largest |SHAP|) selects its row.
    pane.show_view("shap")
    qtbot.waitUntil(lambda: swarm.plot.isVisible(), timeout=5000)
    k = int(np.argmax(np.abs(swarm.point_x)))
    row = int(swarm.point_rows[k])
    assert row != win.selection.current
    vb = swarm.plot_item.vb
    target = swarm.plot.mapFromScene(vb.mapViewToScene(QPointF(swarm.point_x[k], swarm.point_y[k])))
    qtbot.mouseClick(swarm.plot.viewport(), Qt.MouseButton.LeftButton, pos=target)
    qtbot.waitUntil(lambda: win.selection.current == row, timeout=5000)
    assert win.selection.rows.tolist() == [row]
    assert waterfall.shown_row == row
    assert _table_rows(win) == [row]
    assert pane.selected_model.rows.tolist() == [row]
    assert pane.row_spin.value() == row
    assert swarm.hover_text(k).startswith(f"Row {row} · ")

    # Selecting in the dataset table updates the explain views.
    other = int(result.rows[3])
    table = win.dataset_pane.table_view
    table.selectRow(other)
    assert win.selection.current == other and waterfall.shown_row == other
    assert swarm.highlighted_count == result.values.shape[1]

    # The Importance tab switches between mean |SHAP| and the model's own importance.
    _run(qtbot, pane, "native")
    importance = pane.importance_view
    assert importance.methods == ("mean_abs", "native") and not importance.switcher.isHidden()
    assert importance.method == "native" and importance.bar_count == 8
    importance.method_box.setCurrentIndex(0)
    assert importance.method == "mean_abs"
    i_top = int(importance.order[0])
    assert importance.hover_text(0).startswith(f"{result.feature_names[i_top]}: mean |value| ")
    assert float(importance._shown.values[i_top]) == pytest.approx(np.abs(result.values[:, i_top]).mean())


def test_cluster_brush_selects_rows_in_the_table_and_profiles_the_cluster(qtbot, win):
    pane = win.explain_pane
    _run(qtbot, pane, "clusters", rows="random:300", k=3)
    result = pane.results["clusters"]
    assert result.k == 3 and len(result.rows) == 300
    view = pane.cluster_view
    assert view.table.rowCount() == 3
    assert "shap" in pane.results  # the SHAP values that were clustered are shown too

    projection = np.asarray(result.projection)
    x_mid = float(np.median(projection[:, 0]))
    rect = QRectF(
        QPointF(projection[:, 0].min() - 1, projection[:, 1].min() - 1), QPointF(x_mid, projection[:, 1].max() + 1)
    )
    expected = np.sort(np.asarray(result.rows)[projection[:, 0] <= x_mid])
    view.brush(rect)
    assert view.roi.isVisible()
    assert win.selection.rows.tolist() == expected.tolist()
    assert _table_rows(win) == expected.tolist()
    assert view.highlighted_count == expected.size
    labels = np.asarray(result.labels)[projection[:, 0] <= x_mid]
    dominant = int(np.argmax(np.bincount(labels, minlength=3)))
    assert view.focused_cluster == dominant
    r2_text = f"{float(result.klime.r2[dominant]):.3g}"
    assert f"Cluster {dominant}</b>" in view.profile.text() and r2_text in view.profile.text()

    # Moving the brush box (what dragging it does) selects the rows under its new place.
    view.roi.setPos((x_mid, projection[:, 1].min() - 1), finish=True)
    moved = view.rows_in(QRectF(QPointF(x_mid, projection[:, 1].min() - 1), rect.size()))
    assert win.selection.rows.tolist() == moved.tolist()

    # A filtered table shows as selected only the selected rows it still shows.
    win.dataset_pane.set_filter_text("neighbourhood: north")
    model = win.dataset_pane.table_model
    qtbot.waitUntil(lambda: model.rows is not None, timeout=WAIT_MS)
    north = set(np.flatnonzero(win.session.dataset.frame["neighbourhood"].to_numpy() == "north").tolist())
    assert _table_rows(win) == sorted(set(moved.tolist()) & north)
    assert win.selection.rows.tolist() == moved.tolist()  # filtering never changes the selection

    # Clicking a cluster in the table selects all of its rows.
    view._on_table_cell_clicked(1, 0)
    assert win.selection.rows.tolist() == np.sort(np.asarray(result.rows)[np.asarray(result.labels) == 1]).tolist()


def test_pdp_view_draws_ice_lines_and_the_pdp_and_follows_the_selection(qtbot, win):
    pane = win.explain_pane
    _run(qtbot, pane, "pdp", ice_rows=40, grid_resolution=8)
    result = pane.results["pdp"]
    view = pane.dependence_view
    assert view.feature == max(result.features, key=lambda d: np.ptp(d.pdp)).feature
    view.show_feature("income")
    dep = result.feature("income")
    g = len(dep.grid)
    assert view.ice_curve_count == 40
    xs, ys = view.ice_item.getData()
    assert xs.size == 40 * (g + 1) and int(np.isnan(ys).sum()) == 40  # one gap after each curve
    np.testing.assert_allclose(ys.reshape(40, g + 1)[:, :g], dep.ice)
    np.testing.assert_allclose(view.pdp_item.getData()[1], dep.pdp)
    np.testing.assert_allclose(dep.pdp, np.asarray(dep.ice).mean(axis=0))

    row = int(result.rows[7])
    win.selection.set_rows([row, 5999 if 5999 not in result.rows else 0], source="test")
    assert view.highlighted_count == 1
    _, sel_y = view.selected_item.getData()
    np.testing.assert_allclose(sel_y[:g], dep.ice[7])

    # Clicking on a curve picks its row.
    j = g // 2
    view.plot_item.setYRange(float(np.min(dep.ice)), float(np.max(dep.ice)))
    picked = view.click_at(float(dep.grid[j]), float(dep.ice[11, j]))
    assert picked is not None and win.selection.current == picked
    assert abs(float(dep.ice[int(np.flatnonzero(result.rows == picked)[0]), j]) - float(dep.ice[11, j])) < 1e-9
    view.show_feature("employment")  # categorical: categories along x
    assert view.feature == "employment" and view.grid_x.tolist() == list(range(len(result.feature("employment").grid)))


def test_cancel_a_running_explain_job_is_not_an_error(qtbot, win):
    pane = win.explain_pane
    pane.set_method("lime")
    pane.set_params({"num_samples": 5000, "stability_runs": 5})
    pane.rows_edit.setText("all")
    with qtbot.waitSignal(win.runner.sig_job_started, timeout=WAIT_MS):
        job = pane.run()
    assert not pane.run_button.isEnabled() and pane.progress.isVisible()
    with qtbot.waitSignal(win.runner.sig_job_cancelled, timeout=WAIT_MS):
        pane.progress.cancel_button.click()
    assert pane.status.text() == "Cancelled."
    assert pane.error.kind == "" and "lime" not in pane.results
    assert win.jobs_dock.state_of(job) == "cancelled"
    assert pane.run_button.isEnabled()


def test_find_and_prediction_pickers_select_rows(qtbot, win):
    pane = win.explain_pane
    frame = win.session.dataset.frame

    pane.find("income > 50000")
    qtbot.waitUntil(lambda: pane._find_job is None, timeout=WAIT_MS)
    assert win.selection.rows.tolist() == np.flatnonzero(frame["income"].to_numpy() > 50000).tolist()
    assert pane.status.text() == f"{int((frame['income'] > 50000).sum()):,} rows match “income > 50000”."

    pane.find("employment = Retired")
    qtbot.waitUntil(lambda: pane._find_job is None, timeout=WAIT_MS)
    assert win.selection.rows.tolist() == np.flatnonzero(frame["employment"].to_numpy() == "retired").tolist()

    pane.find("income > lots")
    qtbot.waitUntil(lambda: pane._find_job is None, timeout=WAIT_MS)
    assert pane.error.text() == "The column 'income' in credit.csv holds numbers, so it cannot be compared with 'lots'."

    pane.pick_count.setValue(5)
    pane.pick_by_prediction("highest")
    qtbot.waitUntil(lambda: pane.predictions is not None and pane._predict_job is None, timeout=WAIT_MS)
    model = win.session.model
    p = model.predict(frame.loc[:, list(model.input_columns)])[:, 1]
    top = np.argsort(-p, kind="stable")[:5]
    assert win.selection.rows.tolist() == sorted(top.tolist())
    assert win.selection.current == int(top[0])
    pane.pick_by_prediction("lowest")  # predictions are kept: no second job
    assert win.selection.current == int(np.argmin(p))

    pane.row_spin.setValue(77)
    assert win.selection.rows.tolist() == [77] and _table_rows(win) == [77]


def test_parse_query_reads_comparisons_and_falls_back_to_text():
    from gui.selection import Query, parse_query

    columns = ["income", "loan amount", "loan"]
    assert parse_query("income>=50000", columns) == Query("income>=50000", "income", ">=", "50000")
    assert parse_query("loan amount < 10", columns) == Query("loan amount < 10", "loan amount", "<", "10")
    assert parse_query("loan = '12'", columns) == Query("loan = '12'", "loan", "==", "12")
    assert parse_query("income ~ 5", columns).op == "~"
    assert parse_query("__import__('os')", columns) == Query("__import__('os')")
    assert parse_query("  retired ", columns) == Query("retired")


def test_selection_model_normalises_and_signals_only_changes(qtbot):
    from gui.selection import SelectionModel, row_ranges

    model = SelectionModel()
    model.set_row_count(10)
    seen = []
    model.sig_selection_changed.connect(seen.append)
    assert model.set_rows([7, 3, 3, 12, -1], current=7, source="x")
    assert model.rows.tolist() == [3, 7] and model.current == 7 and not model.rows.flags.writeable
    assert not model.set_rows([3, 7], current=7)  # same state: no signal
    assert model.set_rows([3, 7], current=9)  # a current outside the rows falls back to the first
    assert model.current == 3 and len(seen) == 2
    assert row_ranges(np.array([1, 2, 3, 7, 9, 10])) == [(1, 3), (7, 7), (9, 10)]


def test_integrated_gradients_of_an_mlp_walk_from_the_baseline(qtbot, settings, tmp_path):
    """A scikit-learn MLP is explained with IG in the SHAP / IG tab; the bars add up to f(x) - f(baseline)."""
    import warnings

    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_iris(as_frame=True).frame
    X = frame.drop(columns="target")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_pipeline(StandardScaler(), MLPClassifier((6,), activation="tanh", max_iter=300, random_state=0))
        model.fit(X, frame["target"])
    frame.to_csv(tmp_path / "iris.csv", index=False)
    sio.dump(model, tmp_path / "mlp.skops")

    window = MainWindow(settings=settings)
    window.resize(1300, 900)
    window.show()
    try:
        window.open_data(tmp_path / "iris.csv", target="target")
        window.open_model(tmp_path / "mlp.skops")
        qtbot.waitUntil(
            lambda: window.session.dataset is not None and window.session.model is not None, timeout=WAIT_MS
        )
        window.tabs.setCurrentWidget(window.explain_pane)
        pane = window.explain_pane
        _run(qtbot, pane, "ig", rows="0-9", include_selected=False, baseline="mean", klass="2")
        result = pane.results["shap"]
        assert result.method == "ig" and len(result.rows) == 10
        waterfall = pane.waterfall_view
        i = int(np.flatnonzero(result.rows == waterfall.shown_row)[0])
        assert waterfall.contributions.sum() == pytest.approx(result.predictions[i] - result.base_values[i], abs=1e-4)
        assert "f(baseline)" in waterfall.heading.text()
        assert "Completeness error" in _badge_texts(waterfall)
        assert pane.result_tabs.tabText(pane.result_tabs.currentIndex()) == "SHAP / IG"
        assert pane.beeswarm_view.hover_text(0).split(" · ")[-1].startswith("IG ")
    finally:
        window.close()
        window.deleteLater()


def _badge_texts(view) -> str:
    layout = view.badges
    return " | ".join(layout.itemAt(k).widget().text() for k in range(layout.count()) if layout.itemAt(k).widget())


def test_method_forms_take_zero_counts_and_small_or_large_numbers(qtbot):
    """No value the engine accepts is clamped by the form: 0 stability re-runs, 1e-05, 250.0."""
    from PySide6.QtCore import Qt as _Qt

    from engine.registry import get_method
    from gui.panes.analyses import NumberBox, ParamForm

    for method, values in (("lime", {"stability_runs": 0, "num_samples": 300}), ("clusters", {"klime_alpha": 1e-5})):
        form = ParamForm(get_method(method).params)
        qtbot.addWidget(form)
        form.set_values(values)
        assert {k: form.values()[k] for k in values} == values

    box = NumberBox(0.15)
    qtbot.addWidget(box)
    assert box.text() == "0.15"
    for typed, expected in (("1e-05", 1e-05), ("250", 250.0), ("0.0003", 0.0003)):
        box.lineEdit().selectAll()
        qtbot.keyClicks(box.lineEdit(), typed)
        qtbot.keyClick(box.lineEdit(), _Qt.Key.Key_Return)
        assert box.value() == pytest.approx(expected, rel=1e-12), typed
        assert box.text() == f"{expected:.6g}"


def test_numbers_never_read_as_negative_zero():
    from gui.plots.local import format_number

    assert format_number(-0.0) == "0" and format_number(-1e-300 * 0) == "0"
    assert format_number(-0.25) == "-0.25"
