"""Network views: the first layer's weights per input column, and each hidden layer's mean activation per unit.

Three heatmaps of a ``NetworkResult``, drawn as the report draws them: the
first layer's weights times each column's standard deviation (input columns
down, units across; blue lowers a unit's input, orange raises it), the mean
activation of every hidden unit (layers down, units across; dead ReLU units
crossed), and, for ReLU layers, the share of rows on which each unit is
inactive.  Hover a cell for its numbers.  Everything shown comes from the result.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QVBoxLayout, QWidget

from gui.plots import palette
from gui.plots.base import TICK_POINT_SIZE, abbreviate_labels, make_plot, set_axis_label, set_title
from gui.text import plain_label

__all__ = ["NetworkView", "HeatmapPlot"]

_LABEL_CHARS = 22


def _hint(text: str = "") -> QLabel:
    label = plain_label(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def _lut(colours: tuple[str, ...]) -> np.ndarray:
    stops = np.linspace(0.0, 1.0, len(colours))
    lut: np.ndarray = pg.ColorMap(stops, [QColor(c) for c in colours]).getLookupTable(0.0, 1.0, 256)
    return lut


def _num(value: float) -> str:
    return "not defined" if not math.isfinite(value) else f"{value:.4g}"


class HeatmapPlot(QWidget):
    """One labelled heatmap: rows named at the left, columns numbered below, a colour scale and hover text.

    ``values`` ``(rows, columns)``; NaN cells are grey.  ``signed`` uses the
    diverging palette symmetric about 0, otherwise the sequential one over
    ``levels``.  ``describe(i, j)`` gives a cell's hover text.
    """

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = make_plot(title)
        self.item = self.plot.getPlotItem()
        self.image: pg.ImageItem | None = None
        self.values = np.zeros((0, 0))
        self.row_labels: tuple[str, ...] = ()
        self.levels = (0.0, 1.0)
        self.crossed: list[tuple[int, int]] = []
        self.describe: Any = None
        self.hover = _hint("Hover a cell for its numbers.")
        self.scale = _hint()
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.scale)
        layout.addWidget(self.hover)

    def clear(self) -> None:
        self.item.clear()
        self.image = None
        self.values = np.zeros((0, 0))
        self.row_labels = ()
        self.crossed = []
        self.scale.setText("")
        self.hover.setText("Hover a cell for its numbers.")

    def draw(
        self,
        values: np.ndarray,
        row_labels: tuple[str, ...],
        *,
        title: str,
        bottom: str,
        left: str,
        scale: str,
        signed: bool = True,
        crossed: np.ndarray | None = None,
        describe: Any = None,
    ) -> None:
        self.clear()
        values = np.asarray(values, dtype=float)
        self.values, self.row_labels, self.describe = values, row_labels, describe
        n_rows, n_cols = values.shape
        finite = values[np.isfinite(values)]
        if signed:
            bound = float(np.abs(finite).max()) if finite.size else 0.0
            bound = bound or 1.0
            self.levels, colours = (-bound, bound), palette.DIVERGING
        else:
            self.levels, colours = (0.0, 1.0), palette.SEQUENTIAL
        self.image = pg.ImageItem(np.nan_to_num(values, nan=0.0), axisOrder="row-major")
        self.image.setLookupTable(_lut(colours))
        self.image.setLevels(self.levels)
        self.image.setRect(QRectF(0, 0, n_cols, n_rows))
        self.item.addItem(self.image)
        for i, j in zip(*np.nonzero(~np.isfinite(values))):
            rect = QGraphicsRectItem(float(j), float(i), 1.0, 1.0)
            rect.setBrush(QBrush(QColor(palette.GRID)))
            rect.setPen(pg.mkPen(None))
            self.item.addItem(rect)
        if crossed is not None:
            for i, j in zip(*np.nonzero(crossed)):
                self.crossed.append((int(i), int(j)))
                dark = not signed and float(values[i, j]) > 0.55  # white on the sequential scale's dark end
                mark = pg.TextItem("×", color="#FFFFFF" if dark else palette.TEXT, anchor=(0.5, 0.5))
                mark.setPos(float(j) + 0.5, float(i) + 0.5)
                self.item.addItem(mark)
        short, _ = abbreviate_labels(list(row_labels), _LABEL_CHARS)
        axis = self.item.getAxis("left")
        axis.setTicks([[(i + 0.5, s) for i, s in enumerate(short)]])
        # Room for the widest row name beside the axis title (the axis does not widen for fixed ticks).
        font = QFont()
        font.setPointSize(TICK_POINT_SIZE)
        widest = max((QFontMetrics(font).horizontalAdvance(s) for s in short), default=0)
        axis.setWidth(widest + 34)
        step = max(1, math.ceil(n_cols / 16))
        self.item.getAxis("bottom").setTicks([[(j + 0.5, str(j)) for j in range(0, n_cols, step)]])
        set_title(self.item, title)
        set_axis_label(self.item, "bottom", bottom)
        set_axis_label(self.item, "left", left)
        self.item.showGrid(x=False, y=False)
        self.item.invertY(True)  # the first row on top, as in the report
        self.item.setRange(xRange=(0, max(n_cols, 1)), yRange=(0, max(n_rows, 1)), padding=0.02)
        self.plot.setMinimumHeight(int(min(640, max(200, 60 + 18 * n_rows))))
        low, high = self.levels
        self.scale.setText(scale.format(low=_num(low), high=_num(high)))

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """The (row, column) of the cell under a scene position, or ``None``."""
        if self.image is None or not self.item.vb.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.item.vb.mapSceneToView(scene_pos)
        i, j = math.floor(point.y()), math.floor(point.x())
        if 0 <= i < self.values.shape[0] and 0 <= j < self.values.shape[1]:
            return i, j
        return None

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        if cell is not None and self.describe is not None:
            self.hover.setText(self.describe(*cell))


class NetworkView(QWidget):
    """A ``NetworkResult``: first-layer weights, mean activations and (ReLU layers) inactive shares."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.summary = _hint()
        self.notes = _hint()
        self.weights = HeatmapPlot("First-layer weights")
        self.activations = HeatmapPlot("Mean activation per layer and unit")
        self.inactive = HeatmapPlot("Share of rows on which a ReLU unit is inactive")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.weights, 2)
        layout.addWidget(self.activations, 1)
        layout.addWidget(self.inactive, 1)
        layout.addWidget(self.notes)
        self.clear()

    def clear(self) -> None:
        self.result = None
        self.summary.setText("")
        self.notes.setText("")
        for plot in (self.weights, self.activations, self.inactive):
            plot.clear()
            plot.hide()

    def set_result(self, result: Any) -> None:
        self.clear()
        self.result = result
        self.summary.setText(
            f"The network computes {result.architecture or 'layers that could not be observed'}; read on "
            f"{result.n_rows:,} rows. {result.input_mapping}"
        )
        if result.weights.size:
            self._draw_weights(result)
        if result.layers:
            self._draw_layers(result)
        self.notes.setText("\n".join(result.notes))
        self.notes.setVisible(bool(result.notes))

    def _draw_weights(self, result: Any) -> None:
        scaled = np.asarray(result.scaled_weights, dtype=float).T  # (F, units)
        names = tuple(result.feature_names)
        raw = np.asarray(result.weights, dtype=float).T
        std = np.asarray(result.feature_std, dtype=float)

        def describe(i: int, j: int) -> str:
            return (
                f"{names[i]}, unit {j}: weight × standard deviation {_num(scaled[i, j])} "
                f"(weight {_num(raw[i, j])} per unit of the column, standard deviation {_num(std[i])})"
            )

        self.weights.draw(
            scaled,
            names,
            title="First-layer weights × column standard deviation",
            bottom=f"Unit of the first layer ({result.first_layer}; {scaled.shape[1]} of {result.n_first_units})",
            left="Input column",
            scale="Blue lowers a unit's input, orange raises it; the scale runs from {low} to {high}.",
            describe=describe,
        )
        self.weights.show()

    def _draw_layers(self, result: Any) -> None:
        grid = np.asarray(result.activation_grid(), dtype=float)
        labels = tuple(f"{layer.name} · {layer.activation}" for layer in result.layers)
        dead = np.zeros(grid.shape, dtype=bool)
        for i, layer in enumerate(result.layers):
            idx = np.asarray(layer.dead_units, dtype=np.int64)
            dead[i, idx[idx < grid.shape[1]]] = True
        layers = result.layers

        def describe(i: int, j: int) -> str:
            layer = layers[i]
            if j >= layer.n_units:
                return f"{layer.name} has {layer.n_units} units."
            text = f"{layer.name}, unit {j}: mean activation {_num(float(layer.mean[j]))}"
            if layer.inactive_share is not None:
                text += f", inactive on {float(layer.inactive_share[j]):.1%} of the rows"
            return text + ("; dead" if dead[i, j] else "")

        self.activations.draw(
            grid,
            labels,
            title="Mean activation per layer and unit",
            bottom=f"Unit (at most {result.max_units} per layer)",
            left="Hidden layer",
            scale="Mean output over the rows, from {low} to {high}; × marks a dead ReLU unit (zero on every row).",
            crossed=dead,
            describe=describe,
        )
        self.activations.show()
        if any(layer.inactive_share is not None for layer in layers):
            share = np.asarray(result.inactive_grid(), dtype=float)
            self.inactive.draw(
                share,
                labels,
                title="Share of rows on which a ReLU unit is inactive",
                bottom=f"Unit (at most {result.max_units} per layer)",
                left="Hidden layer",
                scale="From 0 (active on every row) to 1 (dead); grey: not a ReLU layer.",
                signed=False,
                crossed=dead,
                describe=describe,
            )
            self.inactive.show()
