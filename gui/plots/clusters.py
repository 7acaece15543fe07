"""Explanation clusters: the rows' 2-D projection coloured by cluster, a brush, profiles and K-LIME.

Drag a box over the points (the *brush*; a ``pg.RectROI`` that can then be
moved and resized) to select their rows everywhere; the panel on the right
then describes the cluster most of them belong to.  With "Brush" off, a drag
pans the view instead.  Clicking a point selects its row, clicking a cluster
in the table selects all of its rows.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QCursor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from gui.plots import palette
from gui.plots.base import TICK_POINT_SIZE, set_axis_label, set_title
from gui.plots.local import badge_style, format_number
from gui.text import literal, plain_label

__all__ = ["BrushViewBox", "ClusterView"]

_DOT = 7


class BrushViewBox(pg.ViewBox):
    """A view box whose left-button drag draws a selection box instead of panning (while ``brushing``)."""

    sig_brush_drawn = Signal(object)  # QRectF in data coordinates

    def __init__(self) -> None:
        super().__init__()
        self.brushing = True

    def mouseDragEvent(self, ev: Any, axis: int | None = None) -> None:  # noqa: N802 - pyqtgraph override
        if not self.brushing or axis is not None or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isFinish():
            self.rbScaleBox.hide()
            rect = QRectF(pg.Point(ev.buttonDownPos(ev.button())), pg.Point(ev.pos()))
            self.sig_brush_drawn.emit(self.childGroup.mapRectFromParent(rect).normalized())
        else:
            self.updateScaleBox(ev.buttonDownPos(), ev.pos())


def _plot_with(view_box: pg.ViewBox, title: str, bottom: str, left: str) -> pg.PlotWidget:
    """A white plot styled as :func:`gui.plots.base.make_plot`, on the given view box, mouse enabled."""
    widget = pg.PlotWidget(background="w", viewBox=view_box)
    item = widget.getPlotItem()
    set_title(item, title)
    tick_font = QFont()
    tick_font.setPointSize(TICK_POINT_SIZE)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(palette.MUTED_TEXT))
        axis.setTextPen(pg.mkPen(palette.TEXT))
        axis.setTickFont(tick_font)
        axis.enableAutoSIPrefix(False)
    set_axis_label(item, "bottom", bottom)
    set_axis_label(item, "left", left)
    item.showGrid(x=True, y=True, alpha=0.18)
    item.hideButtons()
    widget.setMinimumSize(360, 300)
    widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
    return widget


class ClusterView(QWidget):
    """Shows one ``ExplanationClustersResult``."""

    sig_rows_picked = Signal(object, object)  # rows (np.ndarray), current row
    # What the hover line says when nothing is hovered (also after a new result: an old row may be gone).
    HOVER_HINT = "Hover a point for its row."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.points = np.zeros((0, 2))
        self.point_rows = np.zeros(0, dtype=np.int64)
        self.point_labels = np.zeros(0, dtype=np.int64)
        self.focused_cluster: int | None = None
        self.brushed_rows = np.zeros(0, dtype=np.int64)
        self.scatters: list[pg.ScatterPlotItem] = []

        self.view_box = BrushViewBox()
        self.view_box.sig_brush_drawn.connect(self._on_view_box_brush_drawn)
        self.plot = _plot_with(self.view_box, "Rows clustered by their explanations", "Component 1", "Component 2")
        self.plot_item = self.plot.getPlotItem()
        self.highlight = pg.ScatterPlotItem(
            size=_DOT + 5, pen=pg.mkPen(QColor(palette.TEXT), width=1.6), brush=pg.mkBrush(0, 0, 0, 0)
        )
        self.highlight.setZValue(10)
        self.roi = pg.RectROI([0, 0], [1, 1], pen=pg.mkPen(QColor(palette.TEXT), width=1.5, style=Qt.PenStyle.DashLine))
        self.roi.setZValue(20)
        self.roi.sigRegionChangeFinished.connect(self._on_roi_region_change_finished)
        self.roi.hide()

        self.brush_button = QPushButton("Brush")
        self.brush_button.setCheckable(True)
        self.brush_button.setChecked(True)
        self.brush_button.setToolTip("On: drag a box to select rows. Off: drag to pan. The wheel zooms either way.")
        self.brush_button.toggled.connect(self._on_brush_button_toggled)
        self.clear_brush_button = QPushButton("Clear brush")
        self.clear_brush_button.clicked.connect(self._on_clear_brush_clicked)
        self.reset_zoom_button = QPushButton("Reset zoom")
        self.reset_zoom_button.clicked.connect(self._on_reset_zoom_clicked)
        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        hint = QLabel("Drag a box over points to select their rows; click a point or a cluster to select it.")
        hint.setObjectName("hint")
        tools.addWidget(hint, 1)
        for button in (self.brush_button, self.clear_brush_button, self.reset_zoom_button):
            tools.addWidget(button)

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Cluster", "Rows", "Share", "Mean", "K-LIME R²"])
        self.table.horizontalHeaderItem(3).setToolTip("Mean explained output of the cluster's rows.")
        self.table.horizontalHeaderItem(4).setToolTip("In-sample R² of the cluster's own ridge surrogate.")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(40)
        self.table.cellClicked.connect(self._on_table_cell_clicked)
        self.klime_badge = plain_label()
        self.profile = QLabel("Brush points or click a cluster to see what its rows share.")
        self.profile.setWordWrap(True)
        self.profile.setTextFormat(Qt.TextFormat.RichText)
        self.profile.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.profile.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 0, 0, 0)
        title = QLabel("Clusters")
        title.setObjectName("sectionTitle")
        side_layout.addWidget(title)
        side_layout.addWidget(self.klime_badge)
        side_layout.addWidget(self.table)
        side_layout.addWidget(self.profile, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.plot)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        self.hover_label = plain_label(self.HOVER_HINT)
        self.hover_label.setObjectName("hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption = plain_label()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    # -- public API ---------------------------------------------------------------------------
    def clear(self) -> None:
        self.hover_label.setText(self.HOVER_HINT)
        QToolTip.hideText()
        self.result = None
        self.plot_item.clear()
        self.plot_item.legend = None
        self.scatters = []
        self.points = np.zeros((0, 2))
        self.point_rows = np.zeros(0, dtype=np.int64)
        self.point_labels = np.zeros(0, dtype=np.int64)
        self.brushed_rows = np.zeros(0, dtype=np.int64)
        self.focused_cluster = None
        self.table.setRowCount(0)
        self.klime_badge.setText("")
        self.caption.setText("")
        self.roi.hide()

    def set_result(self, result: Any) -> None:
        self.clear()
        self.result = result
        self.points = np.asarray(result.projection, dtype=np.float64)
        self.point_rows = np.asarray(result.rows, dtype=np.int64)
        self.point_labels = np.asarray(result.labels, dtype=np.int64)
        item = self.plot_item
        legend = item.addLegend(offset=(10, 10), labelTextColor=palette.TEXT, brush=pg.mkBrush("#FFFFFFE6"))
        legend.setPen(pg.mkPen(palette.GRID))
        for c in range(int(result.k)):
            mask = self.point_labels == c
            scatter = pg.ScatterPlotItem(
                x=self.points[mask, 0],
                y=self.points[mask, 1],
                data=self.point_rows[mask],
                size=_DOT,
                pen=pg.mkPen(QColor("#FFFFFF"), width=0.6),
                brush=pg.mkBrush(QColor(palette.categorical(c))),
                name=f"Cluster {c} ({int(mask.sum()):,} rows)",
            )
            scatter.sigClicked.connect(self._on_scatter_clicked)
            item.addItem(scatter)
            self.scatters.append(scatter)
        item.addItem(self.highlight)
        item.addItem(self.roi)
        self.roi.hide()
        if result.projection_method == "pca" and result.explained_variance is not None:
            share = np.asarray(result.explained_variance, dtype=np.float64)
            set_axis_label(item, "bottom", f"Principal component 1 ({share[0]:.0%} of the variance)")
            set_axis_label(item, "left", f"Principal component 2 ({share[1]:.0%} of the variance)")
        else:
            set_axis_label(item, "bottom", "t-SNE 1")
            set_axis_label(item, "left", "t-SNE 2")
        self._fill_table(result)
        self._reset_zoom()
        klime = result.klime
        r2 = float(klime.global_r2)
        self.klime_badge.setText(f"K-LIME over all rows: R² {format_number(r2, 3)}")
        self.klime_badge.setStyleSheet(badge_style("good" if math.isfinite(r2) and r2 >= 0.5 else "warning"))
        self.klime_badge.setToolTip(
            "R² of one ridge surrogate over all rows; each cluster's own surrogate R² is in the table."
        )
        self.caption.setText(
            f"{len(self.point_rows):,} rows clustered by their {result.attribution_method} attributions of "
            f"{result.output_name} into {result.k} clusters (k chosen by silhouette from "
            f"{', '.join(str(int(k)) for k in result.k_tried) or 'the given k'})."
        )

    def brush(self, rect: QRectF) -> np.ndarray:
        """Put the brush box on ``rect`` (data coordinates) and select the rows inside; returns them."""
        rect = rect.normalized()
        self.roi.show()
        self.roi.setPos(pg.Point(rect.left(), rect.top()), update=False, finish=False)
        # finish=True: the same signal a user's drag or resize of the box ends with.
        self.roi.setSize(pg.Point(max(rect.width(), 1e-12), max(rect.height(), 1e-12)), finish=True)
        return self.brushed_rows

    def rows_in(self, rect: QRectF) -> np.ndarray:
        """The dataset rows whose points lie inside ``rect`` (data coordinates)."""
        rect = rect.normalized()
        x, y = self.points[:, 0], self.points[:, 1]
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        return np.sort(self.point_rows[inside])

    def show_selection(self, rows: np.ndarray) -> None:
        """Ring the selected rows' points and describe the cluster most of them are in."""
        if self.result is None:
            return
        mask = np.isin(self.point_rows, rows)
        self.highlight.setData(x=self.points[mask, 0], y=self.points[mask, 1])
        if not mask.any():
            self.focused_cluster = None
            self.profile.setText("Brush points or click a cluster to see what its rows share.")
            self.table.clearSelection()
            return
        counts = np.bincount(self.point_labels[mask], minlength=int(self.result.k))
        self.focus_cluster(int(np.argmax(counts)), counts=counts)

    @property
    def highlighted_count(self) -> int:
        return len(self.highlight.data)

    def focus_cluster(self, cluster: int, *, counts: np.ndarray | None = None) -> None:
        """Show the profile of ``cluster`` (and, given ``counts``, how the selected rows split)."""
        assert self.result is not None
        self.focused_cluster = cluster
        self.table.blockSignals(True)
        self.table.selectRow(cluster)
        self.table.blockSignals(False)
        self.profile.setText(self.profile_html(cluster, counts))

    def profile_html(self, cluster: int, counts: np.ndarray | None = None) -> str:
        result = self.result
        assert result is not None
        p = result.profiles[cluster]
        r2 = float(result.klime.r2[cluster]) if cluster < len(result.klime.r2) else math.nan
        colour = palette.categorical(cluster)
        parts = [
            f"<p><b><span style='color:{colour}'>●</span> Cluster {cluster}</b>: {p.size:,} rows "
            f"({p.share:.1%}), mean {html.escape(result.output_name)} {format_number(p.mean_prediction)}, "
            f"K-LIME R² <b>{format_number(r2, 3)}</b></p>"
        ]
        if counts is not None and counts.sum():
            split = ", ".join(f"cluster {c}: {int(n):,}" for c, n in enumerate(counts) if n)
            parts.append(f"<p>Selected rows here: {int(counts.sum()):,} ({split}).</p>")
        if p.highlights:
            items = "".join(f"<li>{html.escape(h)}</li>" for h in p.highlights)
            parts.append(f"<p>How its rows differ from the rest:</p><ul>{items}</ul>")
        mean_attr = np.asarray(p.mean_attribution, dtype=np.float64)
        if mean_attr.size:
            top = np.argsort(-np.abs(np.nan_to_num(mean_attr)), kind="stable")[:3]
            drivers = ", ".join(
                f"{html.escape(str(result.feature_names[j]))} ({'+' if mean_attr[j] > 0 else ''}"
                f"{format_number(float(mean_attr[j]), 3)})"
                for j in top
            )
            parts.append(f"<p>Largest mean attributions: {drivers}.</p>")
        return "".join(parts)

    def point_at(self, scene_pos: QPointF) -> int | None:
        if not self.point_rows.size:
            return None
        vb = self.plot_item.vb
        view = vb.mapSceneToView(scene_pos)
        px = vb.viewPixelSize()
        dx = (self.points[:, 0] - view.x()) / max(px[0], 1e-300)
        dy = (self.points[:, 1] - view.y()) / max(px[1], 1e-300)
        d2 = dx * dx + dy * dy
        k = int(np.argmin(d2))
        return k if d2[k] <= (_DOT / 2 + 3) ** 2 else None

    def hover_text(self, k: int) -> str:
        assert self.result is not None
        c = int(self.point_labels[k])
        x, y = self.points[k]
        where = f"({format_number(float(x), 3)}, {format_number(float(y), 3)})"
        return f"Row {int(self.point_rows[k])} · cluster {c} · {where}"

    # -- helpers ---------------------------------------------------------------------------------
    def _fill_table(self, result: Any) -> None:
        self.table.setRowCount(int(result.k))
        visible = min(int(result.k), 8)
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(header + visible * self.table.verticalHeader().defaultSectionSize() + 4)
        for c, p in enumerate(result.profiles):
            r2 = float(result.klime.r2[c]) if c < len(result.klime.r2) else math.nan
            cells = [f"● {c}", f"{p.size:,}", f"{p.share:.1%}", format_number(p.mean_prediction), format_number(r2, 3)]
            for col, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if col == 0:
                    cell.setForeground(QColor(palette.categorical(c)))
                else:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if col == 4 and math.isfinite(r2) and r2 < 0.5:
                    cell.setForeground(QColor(palette.WARNING))
                    cell.setToolTip("Below 0.5: the model is far from linear inside this cluster.")
                self.table.setItem(c, col, cell)

    def _reset_zoom(self) -> None:
        if self.points.size:
            self.plot_item.setRange(
                xRange=(float(self.points[:, 0].min()), float(self.points[:, 0].max())),
                yRange=(float(self.points[:, 1].min()), float(self.points[:, 1].max())),
                padding=0.06,
            )

    # -- slots ---------------------------------------------------------------------------------
    def _on_view_box_brush_drawn(self, rect: QRectF) -> None:
        if self.result is not None:
            self.brush(rect)

    def _on_roi_region_change_finished(self, _roi: object = None) -> None:
        if self.result is None or not self.roi.isVisible():
            return
        pos, size = self.roi.pos(), self.roi.size()
        self.brushed_rows = self.rows_in(QRectF(QPointF(pos.x(), pos.y()), QSizeF(size.x(), size.y())))
        self.sig_rows_picked.emit(self.brushed_rows, None)

    def _on_brush_button_toggled(self, checked: bool) -> None:
        self.view_box.brushing = checked

    def _on_clear_brush_clicked(self) -> None:
        self.roi.hide()
        self.brushed_rows = np.zeros(0, dtype=np.int64)
        self.sig_rows_picked.emit(self.brushed_rows, None)

    def _on_reset_zoom_clicked(self) -> None:
        self._reset_zoom()

    def _on_table_cell_clicked(self, row: int, _column: int) -> None:
        if self.result is None:
            return
        rows = np.sort(self.point_rows[self.point_labels == row])
        self.sig_rows_picked.emit(rows, None)

    def _on_scatter_clicked(self, _item: object, points: Any, _event: object = None) -> None:
        if len(points):
            row = int(points[0].data())
            self.sig_rows_picked.emit(np.asarray([row], dtype=np.int64), row)

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        k = self.point_at(scene_pos)
        if k is None:
            QToolTip.hideText()
            return
        text = self.hover_text(k)
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), literal(text), self.plot)
