"""A table model over a DataFrame that stays fluid at millions of rows.

Nothing is computed per row up front: ``data()`` formats only the cells the
view asks for (a few hundred per repaint).  Filtering and sorting produce one
numpy array of source-row positions, computed by :func:`compute_view_rows` on
a worker thread (it is vectorised per column and checks for cancellation
between chunks), and the model simply indexes through it.  A
``QSortFilterProxyModel`` would instead call back into Python once per row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from gui.plots import palette
from gui.text import literal

if TYPE_CHECKING:
    import pandas as pd

    from engine.jobs import JobContext

__all__ = ["FrameTableModel", "compute_view_rows", "format_value", "MISSING_TEXT"]

MISSING_TEXT = "NA"
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_ROOT = QModelIndex()  # the invalid index: "no parent" in a flat table
# Rows per vectorised filter step: small enough to cancel within a fraction of a second.
_CHUNK = 250_000


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, np.floating):
        return bool(np.isnan(value))
    # pandas.NA and NaT are the remaining markers; pandas is surely imported once a frame is shown.
    import pandas as pd

    return value is pd.NA or value is pd.NaT


def format_value(value: Any) -> str:
    """Text for one cell: ten significant digits for floats, ``NA`` for missing values."""
    if _is_missing(value):
        return MISSING_TEXT
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.10g}"
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _numeric(series: pd.Series) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return bool(is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype))


class FrameTableModel(QAbstractTableModel):
    """Read-only view of a DataFrame, optionally through a row-position index.

    ``sort()`` (called by the view when a header is clicked) does not sort: it
    emits ``sig_sort_requested`` so the owner can compute the new row order off
    the GUI thread and hand it back with :meth:`set_rows`.
    """

    sig_sort_requested = Signal(int, object)  # column, Qt.SortOrder

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._frame: pd.DataFrame | None = None
        self._columns: list[Any] = []
        self._names: list[str] = []
        self._numeric: list[bool] = []
        self._rows: np.ndarray | None = None
        self._roles: dict[str, str] = {}
        self._muted = QBrush(QColor(palette.MUTED_TEXT))
        self._missing_font = QFont()
        self._missing_font.setItalic(True)
        self._bold = QFont()
        self._bold.setBold(True)

    # -- content ------------------------------------------------------------------
    def set_frame(self, frame: pd.DataFrame | None) -> None:
        """Show ``frame`` (all rows, source order)."""
        self.beginResetModel()
        self._frame = frame
        self._rows = None
        if frame is None:
            self._columns, self._names, self._numeric = [], [], []
        else:
            # One lookup per column; the arrays are views, not copies.
            series = [frame.iloc[:, i] for i in range(frame.shape[1])]
            self._columns = [s.array for s in series]
            self._names = [str(c) for c in frame.columns]
            self._numeric = [_numeric(s) for s in series]
        self.endResetModel()

    def set_rows(self, rows: np.ndarray | None) -> None:
        """Show the source rows at positions ``rows`` ``(m,)`` in that order; ``None`` shows all."""
        self.beginResetModel()
        self._rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.endResetModel()

    def set_roles(self, roles: Mapping[str, str]) -> None:
        """Column name -> ``"target"``/``"feature"``/``"sensitive"``/``"ignored"`` (header labels)."""
        self._roles = dict(roles)
        if self._names:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self._names) - 1)
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(self._names) - 1))

    @property
    def frame(self) -> pd.DataFrame | None:
        return self._frame

    @property
    def rows(self) -> np.ndarray | None:
        return self._rows

    def source_row(self, row: int) -> int:
        """Position in the frame of the view's ``row``."""
        return int(self._rows[row]) if self._rows is not None else row

    def column_name(self, column: int) -> str:
        return self._names[column]

    # -- QAbstractTableModel ------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        if parent.isValid() or self._frame is None:
            return 0
        return len(self._rows) if self._rows is not None else len(self._frame)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._names)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return format_value(self._columns[column][self.source_row(index.row())])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if self._numeric[column] else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if self._roles.get(self._names[column]) == "ignored":
                return self._muted
            if _is_missing(self._columns[column][self.source_row(index.row())]):
                return self._muted
            return None
        if role == Qt.ItemDataRole.FontRole:
            if _is_missing(self._columns[column][self.source_row(index.row())]):
                return self._missing_font
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            text = format_value(self._columns[column][self.source_row(index.row())])
            return literal(text) if len(text) > 40 else None  # cell text is the file's: shown as written
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Vertical:
            if role == Qt.ItemDataRole.DisplayRole:
                # The source row's 0-based position, so a filtered or sorted view still says where a row
                # came from, in the numbering the CLI (--rows), the Explain workspace and the report use.
                return str(self.source_row(section))
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if section >= len(self._names):
            return None
        name = self._names[section]
        role_name = self._roles.get(name)
        if role == Qt.ItemDataRole.DisplayRole:
            if role_name in ("target", "sensitive", "ignored"):
                return f"{name} ({role_name})"
            return name
        if role == Qt.ItemDataRole.ToolTipRole:
            return literal(f"{name}: {role_name or 'feature'}. Right-click to change its role; click to sort.")
        if role == Qt.ItemDataRole.FontRole and role_name == "target":
            return self._bold
        if role == Qt.ItemDataRole.ForegroundRole and role_name == "ignored":
            return self._muted
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sig_sort_requested.emit(column, order)


def _column_matches(series: pd.Series, needle: str, *, numeric: bool, ctx: JobContext) -> np.ndarray:
    """``(n,)`` bool: rows whose cell text contains ``needle`` (already lower-cased)."""
    n = len(series)
    if numeric and not set(needle) <= _NUMBER_CHARS and needle not in ("nan", "na", "inf"):
        # A number's text holds only these characters, so no cell can match.
        return np.zeros(n, dtype=bool)
    out = np.zeros(n, dtype=bool)
    for start in range(0, n, _CHUNK):
        ctx.check_cancelled()
        part = series.iloc[start : start + _CHUNK]
        text = part.astype("str") if not part.dtype == "str" else part
        found = text.str.lower().str.contains(needle, regex=False)
        out[start : start + len(part)] = found.fillna(False).to_numpy(dtype=bool)
    if MISSING_TEXT.lower().find(needle) >= 0:
        out |= series.isna().to_numpy()
    return out


def compute_view_rows(
    frame: pd.DataFrame,
    *,
    text: str = "",
    sort_column: str | None = None,
    descending: bool = False,
    ctx: JobContext,
) -> np.ndarray | None:
    """Row positions to show for a filter text and a sort column.

    Parameters
    ----------
    frame:
        The table (not modified).
    text:
        Case-insensitive substring; a row is kept when any cell contains it.
        Write ``column: text`` to search one column only.
    sort_column, descending:
        Stable sort of the kept rows by this column; missing values last.
    ctx:
        Job context for cancellation and progress.

    Returns
    -------
    ``(m,)`` int64 positions into ``frame``, or ``None`` when neither a filter
    nor a sort applies (the view then shows every row in source order).
    """
    needle = text.strip().lower()
    if not needle and sort_column is None:
        return None
    rows = np.arange(len(frame), dtype=np.int64)
    if needle:
        columns = list(frame.columns)
        name, sep, rest = text.partition(":")
        if sep and name.strip() in frame.columns and rest.strip():
            columns, needle = [name.strip()], rest.strip().lower()
        keep = np.zeros(len(frame), dtype=bool)
        for i, column in enumerate(columns):
            ctx.progress(i / (len(columns) + 1), f"Filtering {column}")
            series = frame[column]
            keep |= _column_matches(series, needle, numeric=_numeric(series), ctx=ctx)
        rows = np.flatnonzero(keep)
    if sort_column is not None:
        ctx.check_cancelled()
        ctx.progress(len(frame.columns) / (len(frame.columns) + 1), f"Sorting by {sort_column}")
        values = frame[sort_column].iloc[rows].reset_index(drop=True)
        try:
            order = values.sort_values(ascending=not descending, kind="stable", na_position="last").index
        except TypeError:
            # Mixed types in one object column: order by their text instead.
            as_text = values.astype("str").where(values.notna())
            order = as_text.sort_values(ascending=not descending, kind="stable", na_position="last").index
        rows = rows[order.to_numpy()]
    return rows
