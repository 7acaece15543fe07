"""Permutation importance as horizontal bars with confidence-interval whiskers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

from gui.plots import palette
from gui.plots.base import make_plot, pen

__all__ = ["ImportanceView"]

_BAR_HEIGHT = 0.62
_ROW_PIXELS = 30


def _num(value: float, digits: int = 4) -> str:
    return "not defined" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


class ImportanceView(QWidget):
    """Most important feature at the top; hover a bar for its exact numbers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.order: np.ndarray = np.zeros(0, dtype=np.int64)
        self.plot = make_plot("Permutation importance")
        self.plot_item = self.plot.getPlotItem()
        # Importances are small score differences; "(x0.001)" on the axis would hide their scale.
        self.plot_item.getAxis("bottom").enableAutoSIPrefix(False)
        self.bars: pg.BarGraphItem | None = None
        self.whiskers: pg.ErrorBarItem | None = None
        self.caption = QLabel()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        self.hover_label = QLabel("Hover a bar for its exact values.")
        self.hover_label.setObjectName("hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    @property
    def bar_count(self) -> int:
        return 0 if self.bars is None else len(self.bars.opts["width"])

    def clear(self) -> None:
        self.result = None
        self.plot_item.clear()
        self.bars = self.whiskers = None
        self.caption.setText("")
        self.hover_label.setText("Hover a bar for its exact values.")

    def set_result(self, result: Any) -> None:
        self.clear()
        self.result = result
        mean = np.asarray(result.mean, dtype=np.float64)
        n = len(mean)
        # Sort for reading; a NaN mean (cannot happen with R >= 1) would sort last.
        self.order = np.argsort(-np.nan_to_num(mean, nan=-np.inf), kind="stable")
        ys = np.arange(n, dtype=np.float64)[::-1]  # rank 0 at the top
        m = mean[self.order]
        # One colour, as in the PDF: a negative importance is noise around zero, not a second kind of bar.
        self.bars = pg.BarGraphItem(
            x0=np.minimum(m, 0.0), y=ys, height=_BAR_HEIGHT, width=np.abs(m), brush=QColor(palette.PRIMARY), pen=None
        )
        self.plot_item.addItem(self.bars)
        lo = np.asarray(result.ci_low, dtype=np.float64)[self.order]
        hi = np.asarray(result.ci_high, dtype=np.float64)[self.order]
        has_ci = np.isfinite(lo) & np.isfinite(hi)
        if has_ci.any():
            self.whiskers = pg.ErrorBarItem(
                x=m[has_ci],
                y=ys[has_ci],
                left=(m - lo)[has_ci],
                right=(hi - m)[has_ci],
                beam=_BAR_HEIGHT * 0.45,
                pen=pen(palette.TEXT, 1.4),
            )
            self.plot_item.addItem(self.whiskers)
        self.plot_item.addItem(pg.InfiniteLine(pos=0.0, angle=90, pen=pen(palette.REFERENCE, 1.0)))
        names = [str(result.feature_names[i]) for i in self.order]
        self.plot_item.getAxis("left").setTicks([list(zip(ys.tolist(), names))])
        self.plot_item.setLabel("bottom", f"Drop in {result.scoring} when the column is shuffled", color=palette.TEXT)
        lows = np.where(has_ci, lo, m)
        highs = np.where(has_ci, hi, m)
        x_min = min(0.0, float(np.nanmin(lows))) if n else 0.0
        x_max = max(0.0, float(np.nanmax(highs))) if n else 1.0
        pad = 0.06 * (x_max - x_min or 1.0)
        self.plot_item.setXRange(x_min - pad, x_max + pad, padding=0)
        self.plot_item.setYRange(-0.7, n - 0.3, padding=0)
        self.plot.setMinimumHeight(max(260, 90 + _ROW_PIXELS * n))
        level = f"{result.confidence:.0%}"
        self.caption.setText(
            f"Bars: mean drop in {result.scoring} over {result.n_repeats} shuffles of each column "
            f"(higher means the model relies on it more); whiskers: {level} confidence interval. "
            f"Baseline {result.scoring} {_num(result.baseline_score)} on {result.n_rows:,} rows."
        )

    def hover_text(self, rank: int) -> str:
        """The exact values of the bar at ``rank`` (0 = top)."""
        assert self.result is not None
        i = int(self.order[rank])
        r = self.result
        return (
            f"{r.feature_names[i]}: mean {_num(float(r.mean[i]))}, sd {_num(float(r.std[i]), 3)}, "
            f"{r.confidence:.0%} CI [{_num(float(r.ci_low[i]))}, {_num(float(r.ci_high[i]))}] "
            f"over {r.n_repeats} shuffles"
        )

    def rank_at(self, scene_pos: QPointF) -> int | None:
        """The rank of the bar under a scene position, or ``None``."""
        if self.result is None or self.bars is None:
            return None
        point = self.plot_item.vb.mapSceneToView(scene_pos)
        n = len(self.order)
        row = round(point.y())
        if not 0 <= row < n or abs(point.y() - row) > _BAR_HEIGHT / 2:
            return None
        rank = n - 1 - row
        i = int(self.order[rank])
        lo, hi = float(self.result.ci_low[i]), float(self.result.ci_high[i])
        m = float(self.result.mean[i])
        left = min(0.0, m, lo if math.isfinite(lo) else m)
        right = max(0.0, m, hi if math.isfinite(hi) else m)
        # Thin bars are hard to hit: the whole row between the bar and its whisker counts.
        span = self.plot_item.vb.viewRange()[0]
        slack = 0.02 * (span[1] - span[0])
        return rank if left - slack <= point.x() <= right + slack else None

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        rank = self.rank_at(scene_pos)
        if rank is None:
            QToolTip.hideText()
            return
        text = self.hover_text(rank)
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), text, self.plot)
