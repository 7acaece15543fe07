"""Partial dependence (bold) over individual conditional expectation curves (thin), one feature at a time.

All ICE curves of a feature are one line item (NaN breaks between rows), so
hundreds of curves draw as fast as one.  The selected rows' curves are drawn
on top in orange.  Clicking near a curve selects its row.
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
from gui.plots.base import make_plot, pen
from gui.plots.local import format_cell, format_number

__all__ = ["DependenceView"]

_CLICK_PIXELS = 8


def _broken(grid_x: np.ndarray, ice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` of all curves as one line, a NaN gap after each row."""
    n, g = ice.shape
    xs = np.tile(np.r_[grid_x, np.nan], n)
    ys = np.hstack([ice, np.full((n, 1), np.nan)]).ravel()
    return xs, ys


class DependenceView(QWidget):
    """Shows one ``PartialDependenceResult``; a box chooses the feature."""

    sig_rows_picked = Signal(object, object)  # rows (np.ndarray), current row

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
            pen=pen(palette.TEXT, 3.2), symbol="o", symbolSize=5, symbolBrush=QColor(palette.TEXT), symbolPen=None,
        )
        self.pdp_item.setZValue(10)
        self.pdp_item.setCurveClickable(False)
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
        self.hover_label = QLabel("Hover the plot for exact values; click a curve to select its row.")
        self.hover_label.setObjectName("hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption = QLabel()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
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
        self.result = None
        self.dependence = None
        self.plot_item.clear()
        self.feature_box.blockSignals(True)
        self.feature_box.clear()
        self.feature_box.blockSignals(False)
        self.caption.setText("")

    def set_result(self, result: Any, *, feature: str | None = None) -> None:
        """Show ``result``; ``feature`` defaults to the one whose PDP moves the output most."""
        self.clear()
        self.result = result
        names = [str(d.feature) for d in result.features]
        if feature is None or feature not in names:
            ranges = [
                float(np.ptp(np.asarray(d.pdp, dtype=np.float64))) if len(d.pdp) else 0.0 for d in result.features
            ]
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
        categorical = dep.kind == "categorical"
        g = len(dep.grid)
        self.grid_x = np.arange(g, dtype=np.float64) if categorical else np.asarray(dep.grid, dtype=np.float64)
        ice = np.asarray(dep.ice, dtype=np.float64)
        xs, ys = _broken(self.grid_x, ice)
        self.ice_item.setData(xs, ys)
        self.pdp_item.setData(self.grid_x, np.asarray(dep.pdp, dtype=np.float64))
        for part in (self.ice_item, self.selected_item, self.pdp_item):
            item.addItem(part)
        bottom = item.getAxis("bottom")
        if categorical:
            bottom.setTicks([[(float(i), format_cell(v, 14)) for i, v in enumerate(dep.grid)]])
        else:
            bottom.setTicks(None)
        item.setLabel("bottom", name, color=palette.TEXT)
        item.setLabel("left", self.result.output_name, color=palette.TEXT)
        self._draw_selected()
        finite = ice[np.isfinite(ice)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            pad = 0.05 * (hi - lo or 1.0)
            item.setYRange(lo - pad, hi + pad, padding=0)
        if g:
            item.setXRange(float(self.grid_x.min()), float(self.grid_x.max()), padding=0.04)
        pdp = np.asarray(dep.pdp, dtype=np.float64)
        self.caption.setText(
            f"Thin lines: the model's {self.result.output_name} for each of {ice.shape[0]:,} rows as {name} is set "
            f"to each value on the grid (ICE). Bold: their mean, the partial dependence, from "
            f"{format_number(float(pdp.min()))} to {format_number(float(pdp.max()))}. Curves that are not parallel "
            "mean the feature interacts with others."
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
        k = int(np.nanargmin(np.abs(column - view_y)))
        pixel_y = self.plot_item.vb.viewPixelSize()[1]
        return k if abs(column[k] - view_y) <= _CLICK_PIXELS * pixel_y else None

    def hover_text(self, view_x: float, view_y: float) -> str:
        assert self.dependence is not None and self.result is not None
        dep = self.dependence
        j = int(np.argmin(np.abs(self.grid_x - view_x)))
        text = f"{dep.feature} = {format_cell(dep.grid[j])} · partial dependence {format_number(float(dep.pdp[j]))}"
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
        xs, ys = _broken(self.grid_x, np.asarray(self.dependence.ice, dtype=np.float64)[mask])
        self.selected_item.setData(xs, ys)

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
        QToolTip.showText(QCursor.pos(), text, self.plot)

    def _on_scene_mouse_clicked(self, event: Any) -> None:
        if self.dependence is None or event.button() != Qt.MouseButton.LeftButton:
            return
        scene_pos = event.scenePos()
        if not self.plot_item.vb.sceneBoundingRect().contains(scene_pos):
            return
        point = self.plot_item.vb.mapSceneToView(scene_pos)
        if math.isfinite(point.x()) and math.isfinite(point.y()):
            self.click_at(point.x(), point.y())
