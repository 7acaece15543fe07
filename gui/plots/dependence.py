"""Partial dependence (bold) over individual conditional expectation curves (thin), one feature at a time.

All ICE curves of a feature are one line item (NaN breaks between rows), so
hundreds of curves draw as fast as one.  The selected rows' curves are drawn
on top in orange.  Clicking near a curve selects its row.

A categorical feature's categories have no order, so nothing is drawn between
them: the partial dependence is a bold level per category, each row's ICE value
a dot spread a little sideways (by row, reproducibly), and long category names
are shortened on the axis with a key underneath and in full on hover.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolTip, QVBoxLayout, QWidget

from gui.plots import palette
from gui.plots.base import abbreviate_labels, make_plot, pen, set_axis_label
from gui.plots.local import format_cell, format_number
from gui.text import literal, plain_label

__all__ = ["DependenceView"]

_CLICK_PIXELS = 8


_CATEGORY_LABEL = 12  # characters of a category name on the axis
_JITTER = 0.3  # half-width of the sideways spread of a category's ICE dots, in category widths
_LEVEL = 0.38  # half-width of a category's partial-dependence level


def _broken(grid_x: np.ndarray, ice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` of all curves as one line, a NaN gap after each row."""
    n, g = ice.shape
    xs = np.tile(np.r_[grid_x, np.nan], n)
    ys = np.hstack([ice, np.full((n, 1), np.nan)]).ravel()
    return xs, ys


def _jitter(n: int) -> np.ndarray:
    """``(n,)`` sideways offsets in ``[-_JITTER, _JITTER]``, fixed per row position (golden-ratio sequence)."""
    return ((np.arange(n) * 0.6180339887498949) % 1.0 - 0.5) * 2 * _JITTER


def _dots(grid_x: np.ndarray, ice: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` of every row's ICE value at every category, as separate dots."""
    xs = (grid_x[None, :] + offsets[:, None]).ravel()
    return xs, ice.ravel()


def _finite_span(values: Any) -> tuple[float, float] | None:
    """The smallest and largest finite value, or ``None`` when none is finite (a NaN grid point defines nothing)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def _levels(grid_x: np.ndarray, pdp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One short horizontal segment per category at its partial dependence (drawn with ``connect="pairs"``)."""
    xs = np.column_stack([grid_x - _LEVEL, grid_x + _LEVEL]).ravel()
    ys = np.repeat(pdp, 2)
    return xs, ys


class DependenceView(QWidget):
    """Shows one ``PartialDependenceResult``; a box chooses the feature."""

    sig_rows_picked = Signal(object, object)  # rows (np.ndarray), current row
    # What the hover line says when nothing is hovered (also after a new result: an old row may be gone).
    HOVER_HINT = "Hover the plot for exact values; click a curve to select its row."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.dependence: Any | None = None
        self.grid_x = np.zeros(0)
        self.selected_rows = np.zeros(0, dtype=np.int64)
        self.feature_box = QComboBox()
        self.feature_box.setMinimumWidth(200)
        self.feature_box.currentTextChanged.connect(self._on_feature_box_text_changed)
        self.plot = make_plot("Partial dependence and ICE", interactive=True)
        self.plot_item = self.plot.getPlotItem()
        self.plot_item.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot_item.getAxis("left").enableAutoSIPrefix(False)
        ice_colour = QColor(palette.PRIMARY)
        ice_colour.setAlpha(46)
        self.ice_item = pg.PlotDataItem(pen=pg.mkPen(ice_colour, width=1.0), connect="finite")
        self.selected_item = pg.PlotDataItem(pen=pen(palette.SECONDARY, 2.2), connect="finite")
        self.selected_item.setZValue(5)
        self.pdp_item = pg.PlotDataItem(
            pen=pen(palette.TEXT, 3.2),
            symbol="o",
            symbolSize=5,
            symbolBrush=QColor(palette.TEXT),
            symbolPen=None,
        )
        self.pdp_item.setZValue(10)
        self.pdp_item.setCurveClickable(False)
        self._ice_pen = pg.mkPen(ice_colour, width=1.0)
        self._ice_brush = pg.mkBrush(ice_colour.red(), ice_colour.green(), ice_colour.blue(), 110)
        self._selected_pen = pen(palette.SECONDARY, 2.2)
        self._pdp_pen = pen(palette.TEXT, 3.2)
        self.categorical = False
        self.category_labels: list[str] = []  # what the axis shows, one per category
        self.category_key = plain_label()
        self.category_key.setObjectName("hint")
        self.category_key.setWordWrap(True)
        self.category_key.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.category_key.hide()
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Feature:"))
        top.addWidget(self.feature_box)
        legend = QLabel(
            f"<span style='color:{palette.TEXT}'><b>━</b> partial dependence (mean)</span> &nbsp; "
            f"<span style='color:{palette.PRIMARY}'>─</span> one row's ICE curve &nbsp; "
            f"<span style='color:{palette.SECONDARY}'><b>━</b></span> selected rows"
        )
        legend.setObjectName("hint")
        top.addStretch(1)
        top.addWidget(legend)
        self.hover_label = plain_label(self.HOVER_HINT)
        self.hover_label.setObjectName("hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption = plain_label()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.category_key)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)

    # -- public API ---------------------------------------------------------------------------
    @property
    def feature(self) -> str | None:
        return None if self.dependence is None else str(self.dependence.feature)

    @property
    def ice_curve_count(self) -> int:
        return 0 if self.dependence is None else int(np.asarray(self.dependence.ice).shape[0])

    def clear(self) -> None:
        self.hover_label.setText(self.HOVER_HINT)
        QToolTip.hideText()
        self.result = None
        self.dependence = None
        self.plot_item.clear()
        self.feature_box.blockSignals(True)
        self.feature_box.clear()
        self.feature_box.blockSignals(False)
        self.caption.setText("")
        self.category_key.hide()
        self.category_labels = []

    def set_result(self, result: Any, *, feature: str | None = None) -> None:
        """Show ``result``; ``feature`` defaults to the one whose PDP moves the output most."""
        self.clear()
        self.result = result
        names = [str(d.feature) for d in result.features]
        if feature is None or feature not in names:
            spans = [_finite_span(d.pdp) for d in result.features]
            ranges = [span[1] - span[0] if span is not None else 0.0 for span in spans]
            feature = names[int(np.argmax(ranges))] if names else None
        self.feature_box.blockSignals(True)
        self.feature_box.addItems(names)
        self.feature_box.blockSignals(False)
        if feature is not None:
            self.show_feature(feature)

    def show_feature(self, name: str) -> None:
        assert self.result is not None
        dep = self.result.feature(name)
        self.dependence = dep
        self.feature_box.blockSignals(True)
        self.feature_box.setCurrentText(name)
        self.feature_box.blockSignals(False)
        item = self.plot_item
        item.clear()
        self.hover_label.setText(self.HOVER_HINT)
        categorical = dep.kind == "categorical"
        self.categorical = categorical
        g = len(dep.grid)
        self.grid_x = np.arange(g, dtype=np.float64) if categorical else np.asarray(dep.grid, dtype=np.float64)
        ice = np.asarray(dep.ice, dtype=np.float64)
        pdp_values = np.asarray(dep.pdp, dtype=np.float64)
        self._set_style(categorical)
        if categorical:
            # Unordered categories: dots and levels, never a line from one category to the next.
            self.ice_item.setData(*_dots(self.grid_x, ice, _jitter(ice.shape[0])))
            self.pdp_item.setData(*_levels(self.grid_x, pdp_values))
        else:
            self.ice_item.setData(*_broken(self.grid_x, ice))
            self.pdp_item.setData(self.grid_x, pdp_values)
        for part in (self.ice_item, self.selected_item, self.pdp_item):
            item.addItem(part)
        bottom = item.getAxis("bottom")
        if categorical:
            full = [format_cell(v, 10_000) for v in dep.grid]
            self.category_labels, key = abbreviate_labels(full, _CATEGORY_LABEL)
            bottom.setTicks([[(float(i), label) for i, label in enumerate(self.category_labels)]])
            if key:
                self.category_key.setText("Key: " + "; ".join(f"{short} = {name}" for short, name in key) + ".")
                self.category_key.show()
            else:
                self.category_key.hide()
        else:
            self.category_labels = []
            self.category_key.hide()
            bottom.setTicks(None)
        set_axis_label(item, "bottom", name, color=palette.TEXT)
        set_axis_label(item, "left", self.result.output_name, color=palette.TEXT)
        self._draw_selected()
        ice_span = _finite_span(ice)
        if ice_span is not None:
            lo, hi = ice_span
            pad = 0.05 * (hi - lo or 1.0)
            item.setYRange(lo - pad, hi + pad, padding=0)
        if g and categorical:
            item.setXRange(-0.6, g - 0.4, padding=0)
        elif g:
            item.setXRange(float(self.grid_x.min()), float(self.grid_x.max()), padding=0.04)
        # The range of the grid points where the partial dependence is defined: one NaN point (every row's
        # prediction failed there) must not hide the others.
        pdp_span = _finite_span(pdp_values)
        span = (
            f"from {format_number(pdp_span[0])} to {format_number(pdp_span[1])}"
            if pdp_span is not None
            else "not defined"
        )
        if categorical:
            self.caption.setText(
                f"Dots: the model's {self.result.output_name} for each of {ice.shape[0]:,} rows as {name} is set "
                f"to each category (ICE), spread sideways to be seen. Bold bars: their mean per category, the "
                f"partial dependence, {span}. The categories have no order, so nothing joins them."
            )
        else:
            self.caption.setText(
                f"Thin lines: the model's {self.result.output_name} for each of {ice.shape[0]:,} rows as {name} is "
                f"set to each value on the grid (ICE). Bold: their mean, the partial dependence, {span}. Curves "
                "that are not parallel mean the feature interacts with others."
            )

    def show_selection(self, rows: np.ndarray) -> None:
        self.selected_rows = np.asarray(rows, dtype=np.int64)
        self._draw_selected()

    @property
    def highlighted_count(self) -> int:
        if self.result is None:
            return 0
        return int(np.isin(np.asarray(self.result.rows), self.selected_rows).sum())

    def curve_at(self, view_x: float, view_y: float) -> int | None:
        """Position in the result's rows of the ICE curve nearest a point (within a few pixels), or ``None``."""
        if self.dependence is None or not self.grid_x.size:
            return None
        ice = np.asarray(self.dependence.ice, dtype=np.float64)
        j = int(np.argmin(np.abs(self.grid_x - view_x)))
        column = ice[:, j]
        if not np.isfinite(column).any():
            return None
        pixel_x, pixel_y = self.plot_item.vb.viewPixelSize()
        if self.categorical:
            # A dot: near in both directions (its x is the category plus the row's offset).
            dx = (self.grid_x[j] + _jitter(column.size) - view_x) / max(pixel_x, 1e-300)
            dy = (column - view_y) / max(pixel_y, 1e-300)
            d2 = np.nan_to_num(dx * dx + dy * dy, nan=np.inf)
            k = int(np.argmin(d2))
            return k if d2[k] <= _CLICK_PIXELS**2 else None
        k = int(np.nanargmin(np.abs(column - view_y)))
        return k if abs(column[k] - view_y) <= _CLICK_PIXELS * pixel_y else None

    def hover_text(self, view_x: float, view_y: float) -> str:
        assert self.dependence is not None and self.result is not None
        dep = self.dependence
        j = int(np.argmin(np.abs(self.grid_x - view_x)))
        # The category in full, whatever the axis shows.
        value = format_cell(dep.grid[j], 10_000) if self.categorical else format_cell(dep.grid[j])
        text = f"{dep.feature} = {value} · partial dependence {format_number(float(dep.pdp[j]))}"
        k = self.curve_at(view_x, view_y)
        if k is not None:
            row = int(self.result.rows[k])
            text += f" · row {row}: {format_number(float(dep.ice[k, j]))}"
        return text

    def click_at(self, view_x: float, view_y: float) -> int | None:
        """Select the row whose curve passes nearest ``(view_x, view_y)``; returns that row."""
        k = self.curve_at(view_x, view_y)
        if k is None or self.result is None:
            return None
        row = int(self.result.rows[k])
        self.sig_rows_picked.emit(np.asarray([row], dtype=np.int64), row)
        return row

    # -- helpers ---------------------------------------------------------------------------------
    def _draw_selected(self) -> None:
        if self.dependence is None or self.result is None:
            self.selected_item.setData([], [])
            return
        mask = np.isin(np.asarray(self.result.rows), self.selected_rows)
        if not mask.any():
            self.selected_item.setData([], [])
            return
        ice = np.asarray(self.dependence.ice, dtype=np.float64)
        if self.categorical:
            self.selected_item.setData(*_dots(self.grid_x, ice[mask], _jitter(ice.shape[0])[mask]))
        else:
            self.selected_item.setData(*_broken(self.grid_x, ice[mask]))

    def _set_style(self, categorical: bool) -> None:
        """Lines for a numeric grid; dots and per-category levels for categories."""
        if categorical:
            self.ice_item.setData([], [])
            self.ice_item.opts["connect"] = "all"
            self.ice_item.setPen(None)
            self.ice_item.setSymbol("o")
            self.ice_item.setSymbolSize(4)
            self.ice_item.setSymbolPen(None)
            self.ice_item.setSymbolBrush(self._ice_brush)
            self.selected_item.setPen(None)
            self.selected_item.setSymbol("o")
            self.selected_item.setSymbolSize(7)
            self.selected_item.setSymbolPen(None)
            self.selected_item.setSymbolBrush(QColor(palette.SECONDARY))
            self.pdp_item.opts["connect"] = "pairs"
            self.pdp_item.setPen(pen(palette.TEXT, 4.0))
            self.pdp_item.setSymbol(None)
        else:
            self.ice_item.opts["connect"] = "finite"
            self.ice_item.setPen(self._ice_pen)
            self.ice_item.setSymbol(None)
            self.selected_item.opts["connect"] = "finite"
            self.selected_item.setPen(self._selected_pen)
            self.selected_item.setSymbol(None)
            self.pdp_item.opts["connect"] = "all"
            self.pdp_item.setPen(self._pdp_pen)
            self.pdp_item.setSymbol("o")
            self.pdp_item.setSymbolSize(5)
            self.pdp_item.setSymbolBrush(QColor(palette.TEXT))
            self.pdp_item.setSymbolPen(None)

    # -- slots ---------------------------------------------------------------------------------
    def _on_feature_box_text_changed(self, name: str) -> None:
        if self.result is not None and name:
            self.show_feature(name)

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        if self.dependence is None or not self.plot_item.vb.sceneBoundingRect().contains(scene_pos):
            return
        point = self.plot_item.vb.mapSceneToView(scene_pos)
        text = self.hover_text(point.x(), point.y())
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), literal(text), self.plot)

    def _on_scene_mouse_clicked(self, event: Any) -> None:
        if self.dependence is None or event.button() != Qt.MouseButton.LeftButton:
            return
        scene_pos = event.scenePos()
        if not self.plot_item.vb.sceneBoundingRect().contains(scene_pos):
            return
        point = self.plot_item.vb.mapSceneToView(scene_pos)
        if math.isfinite(point.x()) and math.isfinite(point.y()):
            self.click_at(point.x(), point.y())
