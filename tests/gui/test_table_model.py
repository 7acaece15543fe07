"""The DataFrame table model: on-demand formatting at a million rows, vectorised filter and sort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

import gui.panes.table_model as tm
from engine.errors import Cancelled
from engine.jobs import CancelToken, JobContext
from gui.panes.table_model import FrameTableModel, compute_view_rows, format_value


@pytest.fixture(scope="module")
def million() -> pd.DataFrame:
    n = 1_000_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": np.arange(n, dtype=np.float64) / 4,
            "k": rng.integers(0, 50, n),
            "city": np.where(np.arange(n) % 1000 == 0, "Zürich", "Bern"),
        }
    )
    frame.loc[7, "x"] = np.nan
    return frame


def test_model_over_a_million_rows_formats_only_the_cells_asked_for(qapp, million, monkeypatch):
    calls: list[object] = []
    real = tm.format_value
    monkeypatch.setattr(tm, "format_value", lambda v: calls.append(v) or real(v))
    model = FrameTableModel()
    model.set_frame(million)
    assert model.rowCount() == 1_000_000 and model.columnCount() == 3
    assert calls == []  # construction and counting format nothing
    assert model.data(model.index(999_999, 0)) == "249999.75"
    assert model.data(model.index(999_000, 2)) == "Zürich"
    assert model.data(model.index(7, 0)) == "NA"
    assert len(calls) == 3
    assert model.headerData(999_999, Qt.Orientation.Vertical) == "999999"  # 0-based, as --rows and the report
    align = model.data(model.index(0, 0), Qt.ItemDataRole.TextAlignmentRole)
    assert align & int(Qt.AlignmentFlag.AlignRight)


def test_row_index_array_drives_rows_and_source_row_numbers(qapp, million):
    model = FrameTableModel()
    model.set_frame(million)
    model.set_rows(np.array([999_999, 3], dtype=np.int64))
    assert model.rowCount() == 2
    assert model.data(model.index(0, 0)) == "249999.75"
    assert model.headerData(1, Qt.Orientation.Vertical) == "3"
    model.set_rows(None)
    assert model.rowCount() == 1_000_000


def test_filter_and_sort_over_a_million_rows_are_vectorised(million):
    rows = compute_view_rows(million, text="zür", ctx=JobContext())
    assert rows is not None and len(rows) == 1000
    np.testing.assert_array_equal(rows, np.arange(0, 1_000_000, 1000))
    rows = compute_view_rows(million, text="city: ZÜRICH", sort_column="x", descending=True, ctx=JobContext())
    assert rows[0] == 999_000 and rows[-1] == 0
    # A needle with letters can never match a number column, whatever the column holds.
    assert len(compute_view_rows(million, text="x: 2a", ctx=JobContext())) == 0
    assert compute_view_rows(million, ctx=JobContext()) is None


def test_sort_puts_missing_last_and_is_stable():
    frame = pd.DataFrame({"v": [3.0, np.nan, 1.0, 3.0, 2.0], "s": ["b", "a", None, "c", "a"]})
    np.testing.assert_array_equal(compute_view_rows(frame, sort_column="v", ctx=JobContext()), [2, 4, 0, 3, 1])
    np.testing.assert_array_equal(
        compute_view_rows(frame, sort_column="v", descending=True, ctx=JobContext()), [0, 3, 4, 2, 1]
    )
    np.testing.assert_array_equal(compute_view_rows(frame, sort_column="s", ctx=JobContext()), [1, 4, 0, 3, 2])
    # Typing the missing marker finds the missing cells.
    np.testing.assert_array_equal(compute_view_rows(frame, text="NA", ctx=JobContext()), [1, 2])


def test_filter_stops_when_cancelled(million):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        compute_view_rows(million, text="bern", ctx=JobContext(cancel=token))


def test_format_value_is_compact_and_marks_missing():
    assert format_value(45600.0) == "45600"
    assert format_value(0.1 + 0.2) == "0.3"
    assert format_value(np.int64(12)) == "12"
    assert format_value(pd.NA) == "NA" and format_value(None) == "NA" and format_value(pd.NaT) == "NA"
    assert format_value("text") == "text"


def test_sort_request_is_delegated_not_done_on_the_gui_thread(qapp, qtbot, million):
    model = FrameTableModel()
    model.set_frame(million)
    with qtbot.waitSignal(model.sig_sort_requested, timeout=100) as blocker:
        model.sort(1, Qt.SortOrder.DescendingOrder)
    assert blocker.args == [1, Qt.SortOrder.DescendingOrder]
    assert model.rows is None
