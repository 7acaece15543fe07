"""Issue 9: the window fits a 1366×768 screen with every kind of result on it, remembers its size,
shows column roles in full, and a click on a group selects that group's rows."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics

from gui.main_window import MainWindow

WAIT_MS = 30_000
MAX_MIN_HEIGHT = 700  # px: what the window may insist on, so it fits a 768-px laptop screen with its panel


@pytest.fixture
def demo_window(qtbot, settings, demo_paths):
    pytest.importorskip("engine.models.loading")
    window = MainWindow(settings=settings)
    window.resize(1366, 768)
    window.show()
    window.open_data(demo_paths.data, target="approved", sensitive=("group",))
    window.open_model(demo_paths.model)
    qtbot.waitUntil(lambda: window.session.dataset is not None and window.session.model is not None, timeout=WAIT_MS)
    yield window
    window.close()
    window.deleteLater()


def _run_analysis(qtbot, window: MainWindow, name: str, **params) -> None:
    window.tabs.setCurrentWidget(window.analyses_pane)
    panel = window.analyses_pane.show_panel(name)
    panel.ensure_ready()
    if params:
        panel.form.set_values(params)
    assert panel.run() is not None, panel.error.text()
    qtbot.waitUntil(lambda: panel.result is not None or panel.error.kind == "error", timeout=WAIT_MS)
    assert panel.error.kind == "", panel.error.text()


def _run_explain(qtbot, window: MainWindow, method: str, rows: str | None = None, **params) -> None:
    pane = window.explain_pane
    window.tabs.setCurrentWidget(pane)
    pane.ensure_ready()
    pane.set_method(method)
    if params:
        pane.set_params(params)
    if rows is not None:
        pane.rows_edit.setText(rows)
    assert pane.run() is not None, pane.error.text()
    qtbot.waitUntil(lambda: pane.job_id is None, timeout=WAIT_MS)
    assert pane.error.kind == "", pane.error.text()


def test_window_fits_1366x768_after_every_kind_of_result(qtbot, demo_window):
    window = demo_window
    window.selection.set_current(17, source="test")
    _run_analysis(qtbot, window, "performance")
    _run_analysis(qtbot, window, "permutation", n_repeats=2, max_rows=500)
    _run_explain(qtbot, window, "groups")
    _run_explain(qtbot, window, "lime", rows="first:2", num_samples=300)
    _run_explain(qtbot, window, "treeshap", rows="random:100")
    _run_explain(qtbot, window, "clusters", rows="random:100")
    _run_explain(qtbot, window, "pdp")
    _run_explain(qtbot, window, "surrogate")
    fairness = window.fairness_pane
    window.tabs.setCurrentWidget(fairness)
    fairness.ensure_ready()
    fairness.set_params({"sensitive": ["group", "age"]})  # two attributes: their intersection too
    assert fairness.run() is not None, fairness.error.text()
    qtbot.waitUntil(lambda: fairness.job_id is None and fairness.proxy_job_id is None, timeout=WAIT_MS)
    assert fairness.error.kind == "" and fairness.result.intersections and fairness.proxies is not None
    assert {"groups", "lime", "shap", "clusters", "dependence", "surrogate", "importance"} <= set(
        window.explain_pane.views
    )
    # Every tab in turn, since only the shown page is laid out at its full size.
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(20)
        hint = window.minimumSizeHint()
        assert hint.height() <= MAX_MIN_HEIGHT, (window.tabs.tabText(index), hint)
        assert hint.width() <= 1366, (window.tabs.tabText(index), hint)
    # At 1366×768 the jobs dock and the status bar stay inside the window.
    window.resize(1366, 768)
    qtbot.wait(50)
    assert window.height() <= 768
    status = window.statusBar().geometry()
    assert status.bottom() < window.height() and status.height() > 0
    dock = window.jobs_dock.geometry()
    assert window.jobs_dock.isVisible() and dock.top() >= 0 and dock.bottom() < status.top()
    # The panes are whole, scrolling where they need more room than there is.
    assert window.tabs.currentWidget() is window.fairness_pane


def test_window_size_and_position_are_remembered_across_runs(qtbot, settings, tmp_path):
    first = MainWindow(settings=settings)
    first.show()
    free = first.screen().availableGeometry()  # Qt keeps a restored window on the screen: stay inside it
    first.resize(min(1010, free.width() - 80), min(640, free.height() - 80))
    first.move(free.left() + 37, free.top() + 29)
    qtbot.wait(20)
    size, first_pos = first.size(), first.pos()
    first.close()
    first.deleteLater()

    from PySide6.QtCore import QSettings

    fresh = MainWindow(settings=QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    assert fresh.size() != size  # nothing remembered: the default size
    fresh.deleteLater()
    second = MainWindow(settings=settings)
    try:
        assert second.size() == size
        # Within a window frame's width (the platform may place the frame, not the contents, there).
        assert (second.pos() - first_pos).manhattanLength() <= 8
        assert second.restore_geometry()
    finally:
        second.close()
        second.deleteLater()


def test_first_run_window_fits_the_screen(qtbot, settings):
    window = MainWindow(settings=settings)
    try:
        free = window.screen().availableGeometry()
        assert window.width() <= free.width() and window.height() <= free.height()
    finally:
        window.close()
        window.deleteLater()


def test_role_suffix_in_a_dataset_header_is_never_cut(qtbot, demo_window):
    pane = demo_window.dataset_pane
    model = pane.table_model
    column = [model.column_name(c) for c in range(model.columnCount())].index("income")
    qtbot.wait(20)  # the first fit runs once the view is laid out
    assert pane.set_column_role("income", "sensitive")
    title = model.headerData(column, Qt.Orientation.Horizontal)
    assert title == "income (sensitive)"
    metrics = pane.table_view.horizontalHeader().fontMetrics()
    assert pane.table_view.columnWidth(column) >= metrics.horizontalAdvance(title) + 16

    # The target's header is bold, so wider: measured in its own font.
    assert pane.set_column_role("debt", "target")
    debt = [model.column_name(c) for c in range(model.columnCount())].index("debt")
    font = model.headerData(debt, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole)
    assert isinstance(font, QFont)
    title = model.headerData(debt, Qt.Orientation.Horizontal)
    assert pane.table_view.columnWidth(debt) >= QFontMetrics(font).horizontalAdvance(title) + 16
    # A name too long for any column loses its middle, never its role.
    assert pane.table_view.horizontalHeader().textElideMode() == Qt.TextElideMode.ElideMiddle


def _dataset_table_rows(window: MainWindow) -> list[int]:
    model = window.dataset_pane.table_model
    indexes = window.dataset_pane.table_view.selectionModel().selectedRows()
    return sorted(model.source_row(i.row()) for i in indexes)


def test_clicking_a_group_selects_its_rows_in_the_dataset_table(qtbot, demo_window):
    window = demo_window
    _run_explain(qtbot, window, "groups")
    view = window.explain_pane.views["groups"]
    table = view.table
    labels = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
    row = labels.index(("group", "B"))
    rect = table.visualRect(table.model().index(row, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    frame = window.session.dataset.frame
    expected = np.flatnonzero((frame["group"] == "B").to_numpy() & frame["approved"].notna().to_numpy())
    assert window.selection.selection.source == "groups"
    assert np.array_equal(window.selection.rows, expected)
    assert _dataset_table_rows(window) == expected.tolist()
    n = next(g.n for g in view.result.groups if g.attribute == "group" and g.group == "B")
    assert expected.size == n


def test_group_rows_follow_the_analysis_quartile_labels():
    import pandas as pd

    from gui.selection import group_rows

    frame = pd.DataFrame({"age": np.arange(40, dtype=float), "y": [1.0] * 39 + [np.nan]})
    frame.loc[3, "age"] = np.nan
    missing = group_rows(frame, "age", "(missing)", target="y")
    assert missing.tolist() == [3]
    # Quartiles of the 38 rows the analysis evaluates (row 39 has no target, row 3 no age).
    first = group_rows(frame, "age", "[0, 10.25]", target="y")
    assert first.tolist() == [0, 1, 2, *range(4, 11)]
    last = group_rows(frame, "age", "(28.75, 38]", target="y")
    assert last.tolist() == list(range(29, 39))
    assert group_rows(frame, "age", "no such group", target="y").size == 0
