"""The window end to end: data, roles, model intake with trust, analyses, errors inline, crash dialog."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow

WAIT_MS = 30_000


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings=settings)
    win.resize(1200, 800)
    win.show()
    yield win
    win.close()
    win.deleteLater()


def _wait_dataset(qtbot, win: MainWindow, name: str) -> None:
    def settled() -> bool:
        loaded = win.session.dataset is not None and win.session.dataset.name == name
        return loaded or bool(win.dataset_pane.error_text)

    qtbot.waitUntil(settled, timeout=WAIT_MS)
    assert win.dataset_pane.error_text == ""


def _wait_model(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: win.session.model is not None or bool(win.model_pane.error_text), timeout=WAIT_MS)
    assert win.model_pane.error_text == ""


def _needs_model_loading() -> None:
    pytest.importorskip("engine.models.loading", reason="engine.models.loading is not written yet")


def test_open_data_sets_roles_and_filter_narrows_rows(qtbot, window, demo_paths):
    window.open_data(demo_paths.data, target="approved", sensitive=("group",))
    _wait_dataset(qtbot, window, "credit.csv")
    pane = window.dataset_pane
    roles = window.session.roles
    assert roles.target == "approved" and roles.sensitive == ("group",)
    assert "group" not in roles.features and "approved" not in roles.features
    assert pane.role_of("approved") == "target" and pane.role_of("group") == "sensitive"
    assert pane.table_model.rowCount() == 6000
    assert window.dataset_pane.recent.paths()[0] == demo_paths.data.resolve()

    pane.set_filter_text("neighbourhood: north")
    qtbot.waitUntil(lambda: pane.table_model.rowCount() < 6000, timeout=WAIT_MS)
    frame = window.session.dataset.frame
    assert pane.table_model.rowCount() == int((frame["neighbourhood"] == "north").sum())
    assert pane.row_count_label.text().endswith("of 6,000 rows")


def test_choosing_a_new_target_demotes_the_old_one(qtbot, window, demo_paths):
    window.open_data(demo_paths.data, target="approved")
    _wait_dataset(qtbot, window, "credit.csv")
    assert window.dataset_pane.set_column_role("income", "target")
    roles = window.session.roles
    assert roles.target == "income"
    assert "approved" in roles.ignored and "approved" not in roles.features
    assert window.dataset_pane.role_of("approved") == "ignored"
    assert window.dataset_pane.table_model.headerData(2, Qt.Orientation.Horizontal) == "income (target)"


def test_binary_garbage_csv_shows_inline_error_and_app_stays_usable(qtbot, window, write_text, demo_paths):
    bad = write_text("garbage.csv", bytes(range(256)) * 64)
    window.open_data(bad)
    qtbot.waitUntil(lambda: bool(window.dataset_pane.error_text), timeout=WAIT_MS)
    assert "garbage.csv" in window.dataset_pane.error_text
    assert window.session.dataset is None
    assert window.reporter.dialog is None  # a user error is never a crash dialog
    # Still usable: a good file opens and the error goes away.
    window.open_data(demo_paths.data)
    _wait_dataset(qtbot, window, "credit.csv")
    assert window.dataset_pane.error_text == ""


def _drag(widget, mime: QMimeData) -> bool:
    """Send a drag-enter then a drop, as the window system does; True if the drop was taken."""
    point = QPointF(10, 10)
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(point, *args)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(point, *args)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def test_dropping_a_file_on_the_dataset_pane_opens_it(qtbot, window, demo_paths):
    text_only = QMimeData()
    text_only.setText("not a file")
    assert not _drag(window.dataset_pane, text_only)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_paths.data))])
    assert _drag(window.dataset_pane, mime)
    _wait_dataset(qtbot, window, "credit.csv")


def test_analysis_without_a_model_says_what_is_missing(qtbot, window, demo_paths):
    window.open_data(demo_paths.data, target="approved")
    _wait_dataset(qtbot, window, "credit.csv")
    panel = window.analyses_pane.show_panel("permutation")
    assert not panel.run_button.isEnabled()
    assert panel.run() is None
    assert panel.error.text() == "To run an analysis, open a model."


def test_demo_end_to_end_permutation_importance_plots_one_bar_per_feature(qtbot, window, demo_paths):
    _needs_model_loading()
    window.open_data(demo_paths.data, target="approved", sensitive=("group",))
    window.open_model(demo_paths.model)
    _wait_dataset(qtbot, window, "credit.csv")
    _wait_model(qtbot, window)
    window.tabs.setCurrentWidget(window.analyses_pane)
    panel = window.analyses_pane.show_panel("permutation")
    panel.ensure_ready()
    assert set(panel.form.values()) == set(panel.method.defaults)
    panel.form.set_values({"n_repeats": 3, "max_rows": 1500}, seed=11)
    panel._on_run_clicked()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=WAIT_MS)
    result = panel.result
    assert result.n_repeats == 3 and result.n_rows == 1500 and result.provenance.seed == 11
    features = window.session.model.input_columns
    assert tuple(result.feature_names) == tuple(features)
    assert panel.view.bar_count == len(features) == 8
    top = panel.view.hover_text(0)
    assert top.startswith(f"{result.ranking()[0]}: mean ") and "CI [" in top
    # Hovering the middle of the top bar shows its exact values; the empty far right shows nothing.
    vb = panel.view.plot_item.vb
    i = int(panel.view.order[0])
    assert panel.view.rank_at(vb.mapViewToScene(QPointF(result.mean[i] / 2, 7))) == 0
    panel.view._on_scene_mouse_moved(vb.mapViewToScene(QPointF(result.mean[i] / 2, 7)))
    assert panel.view.hover_label.text() == top
    assert panel.view.rank_at(vb.mapViewToScene(QPointF(result.mean[i], 0))) is None
    assert panel.run_button.isEnabled()

    perf = window.analyses_pane.show_panel("performance")
    perf.run()
    qtbot.waitUntil(lambda: perf.result is not None, timeout=WAIT_MS)
    assert perf.view.metrics_table.columnCount() == len(perf.result.metrics)
    assert perf.view.confusion_plot.isVisibleTo(perf)

    # Changing the inputs clears results that no longer match them.
    window.dataset_pane.set_column_role("group", "ignored")
    assert perf.result is None and panel.result is None


def test_cancel_a_running_analysis_is_not_an_error(qtbot, window, demo_paths):
    _needs_model_loading()
    window.open_data(demo_paths.data, target="approved")
    window.open_model(demo_paths.model)
    _wait_dataset(qtbot, window, "credit.csv")
    _wait_model(qtbot, window)
    panel = window.analyses_pane.show_panel("permutation")
    panel.ensure_ready()
    with qtbot.waitSignal(window.runner.sig_job_started, timeout=WAIT_MS):
        job_id = panel.run()
    with qtbot.waitSignal(window.runner.sig_job_cancelled, timeout=WAIT_MS):
        panel.cancel()
    assert panel.status.text() == "Cancelled."
    assert panel.error.kind == "" and panel.result is None
    assert window.jobs_dock.state_of(job_id) == "cancelled"


@pytest.fixture
def small_pickle(tmp_path: Path) -> Path:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    model = LogisticRegression().fit(frame, np.arange(20) % 2)
    path = tmp_path / "small.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


def test_pickle_needs_trust_and_records_gui_confirmation(qtbot, window, small_pickle):
    _needs_model_loading()
    window.open_model(small_pickle)
    qtbot.waitUntil(lambda: window.model_pane.trust_dialog is not None, timeout=WAIT_MS)
    dialog = window.model_pane.trust_dialog
    listed = [dialog.imports_list.item(i).text() for i in range(dialog.imports_list.count())]
    assert any("LogisticRegression" in name for name in listed)
    assert window.session.model is None  # nothing loaded before the decision
    dialog.accept()
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT_MS)
    trust = window.session.model.trust
    assert trust.required and trust.granted_by == "gui confirmation"
    assert window.model_pane.fields["trust"].text().startswith("granted by “gui confirmation” for this file")


def test_declining_trust_loads_nothing(qtbot, window, small_pickle):
    _needs_model_loading()
    window.open_model(small_pickle)
    qtbot.waitUntil(lambda: window.model_pane.trust_dialog is not None, timeout=WAIT_MS)
    window.model_pane.trust_dialog.reject()
    assert window.session.model is None
    assert window.model_pane.error.kind == "warning"
    assert "small.pkl was not loaded" in window.model_pane.error.text()


def test_refused_pickle_is_explained_inline_and_never_run(qtbot, window, tmp_path):
    _needs_model_loading()
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pkl"
    # builtins.exec would create the marker file if the pickle were ever executed.
    payload = f"open({str(marker)!r}, 'w').close()"
    evil.write_bytes(b"cbuiltins\nexec\n(" + pickle.dumps(payload, protocol=0)[:-1] + b"tR.")
    window.open_model(evil)
    qtbot.waitUntil(lambda: bool(window.model_pane.error_text), timeout=WAIT_MS)
    assert window.model_pane.trust_dialog is None
    assert "evil.pkl" in window.model_pane.error_text
    scanned = [window.model_pane.scan_list.item(i).text() for i in range(window.model_pane.scan_list.count())]
    assert "builtins.exec" in scanned
    assert not marker.exists()
    assert window.session.model is None


def test_unexpected_job_error_opens_details_dialog_with_traceback(qtbot, window, tmp_path):
    from gui.runner import JobSpec

    def broken(*, ctx):
        raise ZeroDivisionError("division by zero in a bug")

    with qtbot.waitSignal(window.runner.sig_job_failed, timeout=WAIT_MS):
        window.runner.submit(JobSpec(kind="bug", fn=broken))
    qtbot.waitUntil(lambda: window.reporter.dialog is not None and window.reporter.dialog.isVisible(), timeout=5000)
    dialog = window.reporter.dialog
    assert not dialog.details.isVisible()  # traceback only behind "Details"
    dialog.details_button.click()
    assert dialog.details.isVisible()
    assert "ZeroDivisionError: division by zero in a bug" in dialog.details.toPlainText()
    assert "in broken" in dialog.details_text
    dialog.copy_button.click()
    assert "ZeroDivisionError" in QApplication.clipboard().text()
    assert (tmp_path / "logs" / "probity.log").exists()
    dialog.close()
