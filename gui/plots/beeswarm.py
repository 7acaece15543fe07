"""SHAP summary (beeswarm): one dot per row and feature, coloured by the feature's value.

x is the attribution, y the feature (most important on top), and dots that
would overlap are spread up and down in a deterministic swarm (no random
jitter, so the picture is the same every time).  Colour runs from blue (low
values of the feature) through purple to vermillion (high values); categorical
and missing values are grey.  Clicking a dot selects its row; the selected rows
are ringed in black.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolTip, QVBoxLayout, QWidget

from gui.plots import palette
from gui.plots.base import make_plot, method_word, pen, set_axis_label, set_title
from gui.plots.local import format_cell, format_number
from gui.text import literal, plain_label

__all__ = ["BeeswarmView", "swarm_offsets", "value_levels", "VALUE_RAMP"]

# Low -> high feature value: blue, reddish purple, vermillion (Okabe & Ito), distinct in colour-blind vision.
VALUE_RAMP: tuple[str, str, str] = (palette.CATEGORICAL[0], palette.CATEGORICAL[4], palette.CATEGORICAL[3])
_N_LEVELS = 64
_N_BINS = 80
_MAX_SPREAD = 0.4  # half the distance between two feature rows
_DOT = 6
_ROW_PIXELS = 28


def value_levels(values: Any) -> np.ndarray:
    """``(n,)`` colour positions in [0, 1] (rank-based, 5–95 % clipped) or NaN for missing/non-numeric."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    series = pd.Series(values)
    if not is_numeric_dtype(series.dtype) or is_bool_dtype(series.dtype):
        return np.full(len(series), np.nan)
    x = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(x)
    if not finite.any():
        return np.full(x.size, np.nan)
    lo, hi = np.nanpercentile(x[finite], [5, 95])
    if hi <= lo:
        lo, hi = float(np.min(x[finite])), float(np.max(x[finite]))
    out = np.full(x.size, np.nan)
    out[finite] = 0.5 if hi <= lo else np.clip((x[finite] - lo) / (hi - lo), 0.0, 1.0)
    return out


def swarm_offsets(x: np.ndarray, *, n_bins: int = _N_BINS, max_spread: float = _MAX_SPREAD) -> np.ndarray:
    """Vertical offsets ``(n,)`` that stack dots sharing an x bin alternately above and below the row line."""
    n = x.size
    if n == 0:
        return np.zeros(0)
    finite = np.where(np.isfinite(x), x, 0.0)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        bins = np.zeros(n, dtype=np.int64)
    else:
        bins = np.clip(((finite - lo) / (hi - lo) * n_bins).astype(np.int64), 0, n_bins - 1)
    order = np.lexsort((finite, bins))
    sorted_bins = bins[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_bins)) + 1]
    lengths = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, lengths)
    step = min(0.06, max_spread / max(1.0, np.ceil(lengths.max() / 2)))
    level = (rank + 1) // 2
    sign = np.where(rank % 2 == 1, 1.0, -1.0)
    out = np.empty(n)
    out[order] = level * sign * step
    return out


def _ramp_brushes() -> list[QColor]:
    cmap = pg.ColorMap(np.array([0.0, 0.5, 1.0]), [QColor(c) for c in VALUE_RAMP])
    return [cmap.map(i / (_N_LEVELS - 1), mode="qcolor") for i in range(_N_LEVELS)]


class BeeswarmView(QWidget):
    """Attributions of many rows at once; click a dot to pick its row."""

    sig_rows_picked = Signal(object, object)  # rows (np.ndarray), current row
    # What the hover line says when nothing is hovered (also after a new result: an old row may be gone).
    HOVER_HINT = "Hover a dot for its row and values; click it to select the row."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.frame: Any | None = None
        self.feature_order = np.zeros(0, dtype=np.int64)
        self.point_rows = np.zeros(0, dtype=np.int64)
        self.point_features = np.zeros(0, dtype=np.int64)
        self.point_x = np.zeros(0)
        self.point_y = np.zeros(0)
        self.plot = make_plot("SHAP summary over the explained rows", interactive=True)
        self.plot_item = self.plot.getPlotItem()
        self.plot_item.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot_item.showGrid(x=True, y=False, alpha=0.18)
        self.scatter: pg.ScatterPlotItem | None = None
        self.highlight = pg.ScatterPlotItem(
            size=_DOT + 5, pen=pg.mkPen(QColor(palette.TEXT), width=1.6), brush=pg.mkBrush(0, 0, 0, 0)
        )
        self.highlight.setZValue(10)
        self._brushes = [pg.mkBrush(c) for c in _ramp_brushes()]
        self._missing_brush = pg.mkBrush(QColor(palette.REFERENCE))
        self.hover_label = plain_label(self.HOVER_HINT)
        self.hover_label.setObjectName("hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption = plain_label()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        legend = QHBoxLayout()
        legend.setContentsMargins(0, 0, 0, 0)
        legend.addStretch(1)
        low = QLabel("Feature value: low")
        low.setObjectName("hint")
        ramp = QFrame()
        ramp.setFixedSize(120, 10)
        ramp.setStyleSheet(
            "background: qlineargradient(x1:0, y1:0, x2:1, y2:0, "
            f"stop:0 {VALUE_RAMP[0]}, stop:0.5 {VALUE_RAMP[1]}, stop:1 {VALUE_RAMP[2]}); border: none;"
        )
        high = QLabel("high · grey: text or missing")
        high.setObjectName("hint")
        for w in (low, ramp, high):
            legend.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(legend)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    # -- public API ------------------------------------------------------------------------
    @property
    def point_count(self) -> int:
        return int(self.point_rows.size)

    def clear(self) -> None:
        self.hover_label.setText(self.HOVER_HINT)
        QToolTip.hideText()
        self.result = None
        self.frame = None
        self.plot_item.clear()
        self.scatter = None
        self.point_rows = np.zeros(0, dtype=np.int64)
        self.point_features = np.zeros(0, dtype=np.int64)
        self.point_x = self.point_y = np.zeros(0)
        self.caption.setText("")

    def set_result(self, result: Any, *, frame: Any | None = None) -> None:
        """Draw every row of an ``AttributionResult``; ``frame`` supplies the feature values for colour."""
        self.clear()
        self.result = result
        self.frame = frame
        values = np.asarray(result.values, dtype=np.float64)
        rows = np.asarray(result.rows, dtype=np.int64)
        n, f = values.shape
        names = [str(c) for c in result.feature_names]
        with np.errstate(invalid="ignore"):
            importance = np.nan_to_num(np.nanmean(np.abs(values), axis=0)) if n else np.zeros(f)
        self.feature_order = np.argsort(-importance, kind="stable")
        # One shared brush per colour level (and a last one for grey), picked by index.
        brush_table = np.empty(_N_LEVELS + 1, dtype=object)
        brush_table[:_N_LEVELS] = self._brushes
        brush_table[_N_LEVELS] = self._missing_brush
        xs, ys, feats, point_rows, brushes = [], [], [], [], []
        for rank, j in enumerate(self.feature_order):
            x = values[:, j]
            level = f - 1 - rank
            xs.append(x)
            ys.append(level + swarm_offsets(x))
            feats.append(np.full(n, j, dtype=np.int64))
            point_rows.append(rows)
            colour = (
                value_levels(frame[names[j]].iloc[rows])
                if frame is not None and names[j] in frame.columns
                else np.full(n, np.nan)
            )
            idx = np.where(np.isfinite(colour), np.round(np.nan_to_num(colour) * (_N_LEVELS - 1)), -1).astype(int)
            brushes.append(brush_table[idx])  # index -1 is the grey brush
        self.point_x = np.concatenate(xs) if xs else np.zeros(0)
        self.point_y = np.concatenate(ys) if ys else np.zeros(0)
        self.point_features = np.concatenate(feats) if feats else np.zeros(0, dtype=np.int64)
        self.point_rows = np.concatenate(point_rows) if point_rows else np.zeros(0, dtype=np.int64)
        self.plot_item.addItem(pg.InfiniteLine(pos=0.0, angle=90, pen=pen(palette.REFERENCE, 1.0)))
        self.scatter = pg.ScatterPlotItem(
            x=self.point_x,
            y=self.point_y,
            data=np.arange(self.point_x.size),
            size=_DOT,
            pen=None,
            brush=np.concatenate(brushes) if brushes else [],
            hoverable=False,
        )
        self.scatter.sigClicked.connect(self._on_scatter_clicked)
        self.plot_item.addItem(self.scatter)
        self.plot_item.addItem(self.highlight)
        ticks = [(float(f - 1 - rank), names[j]) for rank, j in enumerate(self.feature_order)]
        self.plot_item.getAxis("left").setTicks([ticks])
        word = method_word(result)
        set_title(self.plot_item, f"{word} summary over the explained rows")
        set_axis_label(self.plot_item, "bottom", f"{word} value (effect on {result.output_name})", color=palette.TEXT)
        finite = self.point_x[np.isfinite(self.point_x)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            pad = 0.05 * (hi - lo or 1.0)
            self.plot_item.setXRange(lo - pad, hi + pad, padding=0)
        self.plot_item.setYRange(-0.6, f - 0.4, padding=0)
        self.plot.setMinimumHeight(max(260, 90 + _ROW_PIXELS * f))
        self.caption.setText(
            f"{n:,} rows × {f} features. Each dot is one row: its position is the feature's {word} value, its "
            f"colour the feature's value in that row. Features are ordered by mean |{word}|."
        )

    def show_selection(self, rows: np.ndarray) -> None:
        """Ring the dots of the selected dataset rows."""
        if self.scatter is None or not self.point_rows.size:
            self.highlight.setData(x=[], y=[])
            return
        mask = np.isin(self.point_rows, rows)
        self.highlight.setData(x=self.point_x[mask], y=self.point_y[mask])

    @property
    def highlighted_count(self) -> int:
        return len(self.highlight.data)

    def point_at(self, scene_pos: QPointF) -> int | None:
        """Index of the dot nearest a scene position (within a few pixels), or ``None``."""
        if self.scatter is None or not self.point_x.size:
            return None
        vb = self.plot_item.vb
        view = vb.mapSceneToView(scene_pos)
        px = vb.viewPixelSize()
        dx = (self.point_x - view.x()) / max(px[0], 1e-300)
        dy = (self.point_y - view.y()) / max(px[1], 1e-300)
        d2 = np.nan_to_num(dx * dx + dy * dy, nan=np.inf)
        k = int(np.argmin(d2))
        return k if d2[k] <= (_DOT / 2 + 3) ** 2 else None

    def hover_text(self, k: int) -> str:
        assert self.result is not None
        j = int(self.point_features[k])
        row = int(self.point_rows[k])
        name = str(self.result.feature_names[j])
        value = "" if self.frame is None else f" = {format_cell(self.frame[name].iloc[row])}"
        return f"Row {row} · {name}{value} · {method_word(self.result)} {format_number(float(self.point_x[k]))}"

    def click_point(self, k: int) -> None:
        """Select the row of dot ``k`` (what a mouse click on it does)."""
        row = int(self.point_rows[k])
        self.sig_rows_picked.emit(np.asarray([row], dtype=np.int64), row)

    # -- slots ---------------------------------------------------------------------------
    def _on_scatter_clicked(self, _item: object, points: Any, _event: object = None) -> None:
        if len(points):
            self.click_point(int(points[0].data()))

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        k = self.point_at(scene_pos)
        if k is None:
            QToolTip.hideText()
            return
        text = self.hover_text(k)
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), literal(text), self.plot)
