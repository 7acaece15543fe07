"""The linked selection: which rows of the open dataset the user is looking at.

One :class:`SelectionModel` per window holds the selected row positions
(0-based positions in the dataset's frame, as the engine and the report count
them) and the *current* row, the instance the local explanation views show.
The dataset table, a cluster brush, a click on a point and the instance picker
all write to it; every view listens to ``sig_selection_changed`` and highlights
the same rows.  :class:`TableSelectionSync` keeps a ``QTableView`` over a
:class:`~gui.panes.table_model.FrameTableModel` in step with it, both ways.

:func:`find_rows` is the instance picker's search (``income > 50000``,
``employment = retired``, or plain text); it runs on a worker thread.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QObject, Signal
from PySide6.QtWidgets import QAbstractItemView, QTableView

if TYPE_CHECKING:
    import pandas as pd

    from engine.jobs import JobContext
    from gui.panes.table_model import FrameTableModel

__all__ = [
    "Selection",
    "SelectionModel",
    "TableSelectionSync",
    "Query",
    "parse_query",
    "find_rows",
    "row_ranges",
    "group_rows",
]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False


def _normalised(rows: Iterable[int] | np.ndarray | None) -> np.ndarray:
    """Sorted, unique, read-only ``int64`` positions (negative positions dropped)."""
    if rows is None:
        return _EMPTY
    arr = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64).ravel()
    arr = np.unique(arr[arr >= 0])
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Selection:
    """One state of the selection.

    Attributes
    ----------
    rows: ``(m,)`` sorted unique 0-based row positions in the dataset's frame.
    current: the instance the local views show (one of ``rows``), or ``None``.
    source: who made this selection (``"table"``, ``"clusters"``, ``"picker"``, …),
        so a view can skip echoing its own change back.
    """

    rows: np.ndarray
    current: int | None
    source: str = ""

    @property
    def count(self) -> int:
        return int(self.rows.size)

    def __contains__(self, row: object) -> bool:
        if not isinstance(row, (int, np.integer)):
            return False
        i = int(np.searchsorted(self.rows, row))
        return i < self.rows.size and int(self.rows[i]) == int(row)


class SelectionModel(QObject):
    """The selected rows and the current instance, shared by every view of the window.

    Signals
    -------
    sig_selection_changed(Selection): emitted once per real change.
    """

    sig_selection_changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._selection = Selection(_EMPTY, None, "")
        self._row_count: int | None = None

    # -- state ---------------------------------------------------------------------
    @property
    def selection(self) -> Selection:
        return self._selection

    @property
    def rows(self) -> np.ndarray:
        return self._selection.rows

    @property
    def current(self) -> int | None:
        return self._selection.current

    @property
    def row_count(self) -> int | None:
        return self._row_count

    def set_row_count(self, n_rows: int | None) -> None:
        """Bound positions to ``0 .. n_rows-1`` (a new dataset); clears the selection."""
        self._row_count = None if n_rows is None else int(n_rows)
        self.clear(source="dataset")

    # -- changes -------------------------------------------------------------------
    def set_rows(
        self, rows: Iterable[int] | np.ndarray | None, *, current: int | None = None, source: str = ""
    ) -> bool:
        """Select ``rows``; ``current`` (default: the first row) becomes the instance. True if it changed."""
        arr = _normalised(rows)
        if self._row_count is not None and arr.size and arr[-1] >= self._row_count:
            arr = arr[arr < self._row_count]
            arr.flags.writeable = False
        if current is not None and current not in Selection(arr, None):
            current = None
        if current is None and arr.size:
            current = int(arr[0])
        new = Selection(arr, None if current is None else int(current), source)
        old = self._selection
        if old.current == new.current and np.array_equal(old.rows, new.rows):
            return False
        self._selection = new
        self.sig_selection_changed.emit(new)
        return True

    def set_current(self, row: int | None, *, source: str = "") -> bool:
        """Make ``row`` the instance: it becomes the only selected row."""
        return self.set_rows(None if row is None else [int(row)], current=row, source=source)

    def clear(self, *, source: str = "") -> bool:
        return self.set_rows(None, source=source)


def row_ranges(positions: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` runs of consecutive values in sorted ``positions``."""
    if positions.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = np.r_[positions[0], positions[breaks + 1]]
    ends = np.r_[positions[breaks], positions[-1]]
    return list(zip(starts.tolist(), ends.tolist()))


class TableSelectionSync(QObject):
    """Keeps a table view's selected rows and a :class:`SelectionModel` equal, both ways.

    The view shows the frame through the model's row index (filter, sort), so
    positions are mapped through :meth:`FrameTableModel.source_row` one way
    and through its inverse the other way; rows filtered out of the view stay
    selected in the model but cannot be shown as selected.  Work is per run of
    consecutive rows, never per row, so selecting thousands of rows stays quick.
    """

    SOURCE = "table"

    def __init__(
        self, view: QTableView, table_model: FrameTableModel, selection: SelectionModel, parent: QObject | None = None
    ) -> None:
        super().__init__(parent if parent is not None else view)
        self._view = view
        self._model = table_model
        self._selection = selection
        self._applying = False
        self._inverse: tuple[int, np.ndarray] | None = None  # (id of the rows array, inverse)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.selectionModel().selectionChanged.connect(self._on_view_selection_changed)
        selection.sig_selection_changed.connect(self._on_selection_changed)
        # A filter or sort resets the model (and the view's selection): show the rows again.
        table_model.modelReset.connect(self._on_table_model_reset)

    def view_rows(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (frame positions) as sorted view rows; rows not in the view are dropped."""
        shown = self._model.rows
        if shown is None:
            n = self._model.rowCount()
            return rows[rows < n]
        if self._inverse is None or self._inverse[0] != id(shown):
            frame = self._model.frame
            size = 0 if frame is None else len(frame)
            inverse = np.full(size, -1, dtype=np.int64)
            inverse[shown] = np.arange(shown.size, dtype=np.int64)
            self._inverse = (id(shown), inverse)
        inverse = self._inverse[1]
        mapped = inverse[rows[rows < inverse.size]]
        return np.sort(mapped[mapped >= 0])

    def selected_frame_rows(self) -> np.ndarray:
        """The frame positions of the rows selected in the view."""
        parts = []
        for r in self._view.selectionModel().selection():
            view_rows = np.arange(r.top(), r.bottom() + 1, dtype=np.int64)
            shown = self._model.rows
            parts.append(view_rows if shown is None else shown[view_rows])
        return _normalised(np.concatenate(parts)) if parts else _EMPTY

    # -- slots ---------------------------------------------------------------------------
    def _on_view_selection_changed(self, *_args: object) -> None:
        if self._applying:
            return
        rows = self.selected_frame_rows()
        index = self._view.selectionModel().currentIndex()
        current = self._model.source_row(index.row()) if index.isValid() else None
        self._selection.set_rows(rows, current=current, source=self.SOURCE)

    def _on_selection_changed(self, selection: Selection) -> None:
        if selection.source == self.SOURCE:
            return
        self._apply(selection)

    def _on_table_model_reset(self) -> None:
        self._inverse = None
        self._apply(self._selection.selection)

    def _apply(self, selection: Selection) -> None:
        model = self._model
        columns = model.columnCount()
        item_selection = QItemSelection()
        view_rows = self.view_rows(selection.rows) if columns else _EMPTY
        for top, bottom in row_ranges(view_rows):
            item_selection.select(model.index(top, 0), model.index(bottom, columns - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self._applying = True
        try:
            sel_model = self._view.selectionModel()
            sel_model.select(item_selection, flags)
            if selection.current is not None and columns:
                current_rows = self.view_rows(np.asarray([selection.current], dtype=np.int64))
                if current_rows.size:
                    index = model.index(int(current_rows[0]), 0)
                    sel_model.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
                    self._view.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)
        finally:
            self._applying = False


def group_rows(frame: pd.DataFrame, attribute: str, group: str, *, target: str | None = None) -> np.ndarray:
    """Row positions ``(m,)`` of one group of a group-metrics result: the rows it counted in that group.

    The groups analysis (``engine.explain.groups``) evaluates the rows that
    have a target value (every row when there is no target) and labels their
    groups by value, by quartile range for a numeric column with many values,
    or ``"(missing)"``; the same labelling is applied to the same rows here, so
    a group's rows are exactly those its figures describe.  Empty when no
    group has that label.
    """
    from engine.explain.groups import group_codes  # the analysis's own labelling, never a copy of it

    if attribute not in frame.columns:
        return _EMPTY
    evaluated = np.arange(len(frame), dtype=np.int64)
    if target is not None and target in frame.columns:
        evaluated = np.flatnonzero(frame[target].notna().to_numpy()).astype(np.int64)
    series = frame[attribute].iloc[evaluated]
    codes, labels, _binned = group_codes(series)
    if group not in labels:
        return _EMPTY
    return _normalised(evaluated[codes == labels.index(group)])


# -- search --------------------------------------------------------------------------------------------

_OPERATORS = (">=", "<=", "!=", "==", "=", ">", "<", "~")
_OP_RE = re.compile(r"\s*(>=|<=|!=|==|=|>|<|~)\s*")


@dataclass(frozen=True)
class Query:
    """A parsed search: ``column op value``, or plain ``text`` matched anywhere.

    ``op`` is one of ``>= <= != == > < ~`` (``=`` is read as ``==``; ``~``
    means "contains"); ``column`` is ``None`` for a plain-text search.
    """

    text: str
    column: str | None = None
    op: str | None = None
    value: str = ""


def parse_query(text: str, columns: Sequence[str]) -> Query:
    """Read ``income > 50000``, ``employment = retired``, ``name ~ smith`` or plain text.

    The column is the longest column name the text starts with (names may
    hold spaces); a value may be quoted.  Anything else is plain text.
    Nothing is evaluated as code.
    """
    stripped = text.strip()
    for name in sorted((str(c) for c in columns), key=len, reverse=True):
        if not name or not stripped.startswith(name):
            continue
        match = _OP_RE.match(stripped, len(name))
        if match is None:
            continue
        value = stripped[match.end() :].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        op = "==" if match.group(1) == "=" else match.group(1)
        return Query(text=stripped, column=name, op=op, value=value)
    return Query(text=stripped)


def _compare(values: Any, op: str, value: Any) -> np.ndarray:
    if op == ">":
        out = values > value
    elif op == ">=":
        out = values >= value
    elif op == "<":
        out = values < value
    elif op == "<=":
        out = values <= value
    elif op == "==":
        out = values == value
    else:
        out = values != value
    return np.asarray(out, dtype=bool)


def find_rows(frame: pd.DataFrame, text: str, *, source: str = "the data", ctx: JobContext) -> np.ndarray:
    """Row positions ``(m,)`` matching a search typed in the instance picker.

    Parameters
    ----------
    frame:
        The dataset's frame (not modified).
    text:
        ``column op value`` (see :func:`parse_query`) or plain text, matched
        case-insensitively against every cell as the dataset table's filter does.
    source:
        The data file's name, for error messages.
    ctx:
        Progress and cancel.

    Raises
    ------
    AnalysisError
        The value cannot be compared with the column (e.g. ``income > abc``).
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    from engine.errors import AnalysisError
    from gui.panes.table_model import compute_view_rows

    query = parse_query(text, [str(c) for c in frame.columns])
    if not query.text:
        raise AnalysisError("Type a search, such as income > 50000 or a word to find in any column.")
    if query.column is None:
        rows = compute_view_rows(frame, text=query.text, ctx=ctx)
        return np.arange(len(frame), dtype=np.int64) if rows is None else rows
    if query.value == "":
        raise AnalysisError(f"The search {query.text!r} has no value after {query.op}; write e.g. {query.column} > 10.")
    ctx.progress(0.0, f"Searching {query.column}")
    series = frame[query.column]
    missing = series.isna().to_numpy()
    numeric = is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype)
    if query.op == "~":
        text_values = series.astype("str").str.lower()
        keep = text_values.str.contains(query.value.lower(), regex=False).fillna(False).to_numpy(dtype=bool)
        return np.flatnonzero(keep & ~missing).astype(np.int64)
    if numeric:
        try:
            number = float(query.value.replace(",", "").replace("_", ""))
        except ValueError:
            raise AnalysisError(
                f"The column {query.column!r} in {source} holds numbers, so it cannot be compared with {query.value!r}."
            ) from None
        if math.isnan(number):
            raise AnalysisError(f"Compare {query.column!r} with a number, not NaN; missing values never match.")
        keep = _compare(series.to_numpy(dtype=np.float64, na_value=np.nan), query.op or "==", number)
    else:
        if query.op not in ("==", "!="):
            raise AnalysisError(
                f"The column {query.column!r} in {source} holds text, so use = , != or ~ (contains) with it, "
                f"not {query.op}."
            )
        text_values = series.astype("str").str.strip().str.lower().to_numpy(dtype=object)
        keep = _compare(text_values, query.op, query.value.strip().lower())
    return np.flatnonzero(keep & ~missing).astype(np.int64)
