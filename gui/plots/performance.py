"""Performance: a metrics table, the confusion matrix, ROC and calibration curves."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.plots import palette
from gui.plots.base import make_plot, pen, set_axis_label
from gui.text import escape, plain_label

__all__ = ["PerformanceView", "METRIC_LABELS", "format_metric"]

METRIC_LABELS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "log_loss": "Log loss (nats)",
    "brier": "Brier score",
    "r2": "R²",
    "mae": "Mean absolute error",
    "rmse": "Root mean squared error",
}


def format_metric(value: float) -> str:
    return "not defined" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _sequential_map() -> pg.ColorMap:
    stops = np.linspace(0.0, 1.0, len(palette.SEQUENTIAL))
    return pg.ColorMap(stops, [QColor(c) for c in palette.SEQUENTIAL])


class PerformanceView(QWidget):
    """Shows one ``PerformanceResult``; plots appear for classifiers only."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        # One row, one column per metric: the numbers read as a line of a printed report.
        self.metrics_table = QTableWidget(1, 0)
        self.metrics_table.verticalHeader().hide()
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.rows_label = plain_label()
        self.rows_label.setObjectName("hint")
        self.rows_label.setWordWrap(True)

        self.confusion_plot = make_plot("Confusion matrix", bottom="Predicted class", left="True class")
        self.roc_plot = make_plot("ROC curve", bottom="False positive rate", left="True positive rate")
        self.calibration_plot = make_plot("Calibration", bottom="Mean predicted probability", left="Observed frequency")
        for plot in (self.confusion_plot, self.roc_plot, self.calibration_plot):
            plot.setMinimumSize(280, 250)

        plots = QHBoxLayout()
        plots.addWidget(self.confusion_plot, 1)
        plots.addWidget(self.roc_plot, 1)
        plots.addWidget(self.calibration_plot, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.metrics_table)
        layout.addWidget(self.rows_label)
        layout.addLayout(plots, 1)

    def clear(self) -> None:
        self.result = None
        self.metrics_table.setColumnCount(0)
        self.rows_label.setText("")
        for plot in (self.confusion_plot, self.roc_plot, self.calibration_plot):
            plot.getPlotItem().clear()
            plot.getPlotItem().legend = None

    def set_result(self, result: Any) -> None:
        self.clear()
        self.result = result
        self._fill_metrics(result)
        classifier = result.confusion is not None
        for plot in (self.confusion_plot, self.roc_plot, self.calibration_plot):
            plot.setVisible(classifier)
        if classifier:
            self._draw_confusion(np.asarray(result.confusion), tuple(result.class_labels))
            self._draw_roc(result.roc)
            self._draw_calibration(result.calibration)

    # -- parts -------------------------------------------------------------------------
    def _fill_metrics(self, result: Any) -> None:
        items = list(result.metrics.items())
        self.metrics_table.setColumnCount(len(items))
        self.metrics_table.setHorizontalHeaderLabels([METRIC_LABELS.get(name, name) for name, _ in items])
        for column, (name, value) in enumerate(items):
            shown = QTableWidgetItem(format_metric(value))
            shown.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            shown.setToolTip(f"{name} = {float(value)!r}")
            self.metrics_table.setItem(0, column, shown)
        height = self.metrics_table.horizontalHeader().sizeHint().height() + self.metrics_table.rowHeight(0)
        self.metrics_table.setFixedHeight(height + 2 * self.metrics_table.frameWidth())
        text = f"Evaluated on {result.n_rows:,} rows with a target"
        if result.n_dropped:
            text += f"; {result.n_dropped:,} rows without one were left out"
        self.rows_label.setText(text + ".")

    def _draw_confusion(self, confusion: np.ndarray, labels: tuple[Any, ...]) -> None:
        item = self.confusion_plot.getPlotItem()
        k = confusion.shape[0]
        totals = confusion.sum(axis=1, keepdims=True)
        # Colour by the share of each true class, so a rare class's mistakes are as visible as a common one's.
        share = np.divide(confusion, totals, out=np.zeros(confusion.shape, dtype=float), where=totals > 0)
        image = pg.ImageItem(share, axisOrder="row-major")
        image.setLookupTable(_sequential_map().getLookupTable(0.0, 1.0, 256))
        image.setLevels((0.0, 1.0))
        image.setRect(0, 0, k, k)
        item.addItem(image)
        font = QFont()
        font.setPointSize(10 if k <= 4 else 8)
        for r in range(k):
            for c in range(k):
                colour = "#FFFFFF" if share[r, c] > 0.55 else palette.TEXT
                text = pg.TextItem(f"{int(confusion[r, c]):,}\n{share[r, c]:.1%}", color=colour, anchor=(0.5, 0.5))
                text.setFont(font)
                text.setPos(c + 0.5, r + 0.5)
                item.addItem(text)
        ticks = [[(i + 0.5, str(label)) for i, label in enumerate(labels)]]
        item.getAxis("bottom").setTicks(ticks)
        item.getAxis("left").setTicks(ticks)
        item.showGrid(x=False, y=False)
        item.invertY(True)  # first class on top, as in a printed table
        item.setRange(xRange=(0, k), yRange=(0, k), padding=0.02)
        item.setAspectLocked(True)

    def _draw_roc(self, curves: Any) -> None:
        item = self.roc_plot.getPlotItem()
        legend = item.addLegend(offset=(-10, -10), labelTextColor=palette.TEXT, brush=pg.mkBrush("#FFFFFFE6"))
        legend.setPen(pg.mkPen(palette.GRID))
        item.plot([0, 1], [0, 1], pen=pen(palette.REFERENCE, 1.2, dashed=True), name="chance")
        for i, curve in enumerate(curves):
            item.plot(
                np.asarray(curve.fpr),
                np.asarray(curve.tpr),
                pen=pen(palette.categorical(i), 2.2),
                name=escape(f"class {curve.label} (AUC {curve.auc:.3f})"),  # legend entries are HTML
            )
        item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)

    def _draw_calibration(self, calibration: Any) -> None:
        item = self.calibration_plot.getPlotItem()
        if calibration is None:
            return
        set_axis_label(item, "bottom", f"Mean predicted {calibration.predicted}", color=palette.TEXT)
        legend = item.addLegend(offset=(10, 10), labelTextColor=palette.TEXT, brush=pg.mkBrush("#FFFFFFE6"))
        legend.setPen(pg.mkPen(palette.GRID))
        item.plot([0, 1], [0, 1], pen=pen(palette.REFERENCE, 1.2, dashed=True), name="perfectly calibrated")
        mean_p = np.asarray(calibration.mean_predicted, dtype=float)
        observed = np.asarray(calibration.observed, dtype=float)
        keep = np.isfinite(mean_p) & np.isfinite(observed)
        item.plot(
            mean_p[keep],
            observed[keep],
            pen=pen(palette.PRIMARY, 2.0),
            symbol="o",
            symbolSize=7,
            symbolBrush=QColor(palette.PRIMARY),
            symbolPen=pg.mkPen("#FFFFFF"),
            name="model",
        )
        item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
