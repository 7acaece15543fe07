"""Global feature importance as horizontal bars, with a switcher between methods.

Three kinds of result can be shown: permutation importance (bars with
confidence-interval whiskers), mean |SHAP| of an attribution result (through
``engine.explain.native.mean_abs_attribution``), and the model's own
(native) importance.  The view keeps the latest result of each kind; a box
above the plot switches between them when more than one is there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolTip, QVBoxLayout, QWidget

from gui.plots import palette
from gui.plots.base import make_plot, pen, set_axis_label, set_title
from gui.text import literal, plain_label

__all__ = ["ImportanceView", "METHOD_LABELS", "importance_kind"]

_BAR_HEIGHT = 0.62
_ROW_PIXELS = 30

# Switcher entries, in the order they are listed.
METHOD_LABELS: dict[str, str] = {
    "permutation": "Permutation importance",
    "mean_abs": "Mean |SHAP value|",
    "native": "Model's own importance",
}


def _num(value: float, digits: int = 4) -> str:
    return "not defined" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def importance_kind(result: Any) -> str:
    """``"permutation"``, ``"mean_abs"`` or ``"native"`` for a result this view can show."""
    kind = getattr(result, "kind", "")
    if kind == "permutation_importance":
        return "permutation"
    if kind == "attribution":
        return "mean_abs"
    if kind == "native_importance":
        return "native"
    raise TypeError(f"ImportanceView cannot show a {type(result).__name__}")


@dataclass(frozen=True, eq=False)
class _Bars:
    """One method's bars, ready to draw: ``(F,)`` values, optional interval ends."""

    kind: str
    result: Any
    title: str
    names: tuple[str, ...]
    values: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    axis_label: str
    caption: str


def _bars(result: Any) -> _Bars:
    kind = importance_kind(result)
    if kind == "permutation":
        level = f"{result.confidence:.0%}"
        return _Bars(
            kind=kind,
            result=result,
            title="Permutation importance",
            names=tuple(str(n) for n in result.feature_names),
            values=np.asarray(result.mean, dtype=np.float64),
            low=np.asarray(result.ci_low, dtype=np.float64),
            high=np.asarray(result.ci_high, dtype=np.float64),
            axis_label=f"Drop in {result.scoring} when the column is shuffled",
            caption=(
                f"Bars: mean drop in {result.scoring} over {result.n_repeats} shuffles of each column "
                f"(higher means the model relies on it more); whiskers: {level} confidence interval. "
                f"Baseline {result.scoring} {_num(result.baseline_score)} on {result.n_rows:,} rows."
            ),
        )
    if kind == "mean_abs":
        from engine.explain.native import mean_abs_attribution

        names, means = mean_abs_attribution(result)
        method = result.provenance.parameters.get("auto_choice", result.method) if result.provenance else result.method
        word = "SHAP" if "shap" in str(method) else str(method).upper()
        return _Bars(
            kind=kind,
            result=result,
            title=f"Mean |{word} value|",
            names=tuple(str(n) for n in names),
            values=np.asarray(means, dtype=np.float64),
            low=None,
            high=None,
            axis_label=f"Mean |{word} value| ({result.output_name}, {result.output_space})",
            caption=(
                f"Bars: mean absolute {word} value of each feature over {len(result.rows):,} explained rows "
                f"({method}), in units of {result.output_name}: how far the feature moves a prediction on "
                "average, in either direction."
            ),
        )
    caveat = f" {result.caveat}" if result.caveat else ""
    return _Bars(
        kind=kind,
        result=result,
        title=f"Model's own importance ({result.basis})",
        names=tuple(str(n) for n in result.feature_names),
        values=np.asarray(result.importance, dtype=np.float64),
        low=None,
        high=None,
        axis_label=f"Importance ({result.basis})",
        caption=f"Bars: the {result.estimator}'s own {result.basis} importance, summed per raw column.{caveat}",
    )


class ImportanceView(QWidget):
    """Most important feature at the top; hover a bar for its exact numbers."""

    sig_method_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.order: np.ndarray = np.zeros(0, dtype=np.int64)
        self._stored: dict[str, _Bars] = {}
        self._shown: _Bars | None = None
        self.method_box = QComboBox()
        self.method_box.setToolTip("Switch between the importance methods computed so far.")
        self.method_box.currentIndexChanged.connect(self._on_method_box_index_changed)
        self.switcher = QWidget()
        switch_row = QHBoxLayout(self.switcher)
        switch_row.setContentsMargins(0, 0, 0, 0)
        switch_row.addWidget(QLabel("Method:"))
        switch_row.addWidget(self.method_box)
        switch_row.addStretch(1)
        self.switcher.hide()
        self.plot = make_plot("Permutation importance")
        self.plot_item = self.plot.getPlotItem()
        # Importances are small score differences; "(x0.001)" on the axis would hide their scale.
        self.plot_item.getAxis("bottom").enableAutoSIPrefix(False)
        self.bars: pg.BarGraphItem | None = None
        self.whiskers: pg.ErrorBarItem | None = None
        self.caption = plain_label()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        self.hover_label = plain_label("Hover a bar for its exact values.")
        self.hover_label.setObjectName("hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.switcher)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    # -- public API ----------------------------------------------------------------------------
    @property
    def bar_count(self) -> int:
        return 0 if self.bars is None else len(self.bars.opts["width"])

    @property
    def methods(self) -> tuple[str, ...]:
        """The kinds held, in switcher order (``"permutation"``, ``"mean_abs"``, ``"native"``)."""
        return tuple(k for k in METHOD_LABELS if k in self._stored)

    @property
    def method(self) -> str | None:
        """The kind shown."""
        return None if self._shown is None else self._shown.kind

    def clear(self) -> None:
        """Forget every result."""
        self._stored.clear()
        self._clear_plot()
        self._refill_switcher()

    def set_result(self, result: Any) -> None:
        """Keep ``result`` (replacing the previous one of its kind) and show it."""
        bars = _bars(result)
        self._stored[bars.kind] = bars
        self._refill_switcher()
        self.show_method(bars.kind)

    def show_method(self, kind: str) -> None:
        """Show the stored result of ``kind`` (``KeyError`` if none is held)."""
        bars = self._stored[kind]
        self._draw(bars)
        self.method_box.blockSignals(True)
        self.method_box.setCurrentIndex(self.methods.index(kind))
        self.method_box.blockSignals(False)
        self.sig_method_changed.emit(kind)

    def hover_text(self, rank: int) -> str:
        """The exact values of the bar at ``rank`` (0 = top)."""
        assert self._shown is not None
        bars = self._shown
        i = int(self.order[rank])
        name = bars.names[i]
        if bars.kind == "permutation":
            r = bars.result
            return (
                f"{name}: mean {_num(float(r.mean[i]))}, sd {_num(float(r.std[i]), 3)}, "
                f"{r.confidence:.0%} CI [{_num(float(r.ci_low[i]))}, {_num(float(r.ci_high[i]))}] "
                f"over {r.n_repeats} shuffles"
            )
        if bars.kind == "mean_abs":
            return f"{name}: mean |value| {_num(float(bars.values[i]))} over {len(bars.result.rows):,} rows"
        signed = bars.result.signed
        extra = "" if signed is None else f", signed {_num(float(signed[i]))}"
        return f"{name}: {bars.result.basis} importance {_num(float(bars.values[i]))}{extra}"

    def rank_at(self, scene_pos: QPointF) -> int | None:
        """The rank of the bar under a scene position, or ``None``."""
        if self._shown is None or self.bars is None:
            return None
        bars = self._shown
        point = self.plot_item.vb.mapSceneToView(scene_pos)
        n = len(self.order)
        row = round(point.y())
        if not 0 <= row < n or abs(point.y() - row) > _BAR_HEIGHT / 2:
            return None
        rank = n - 1 - row
        i = int(self.order[rank])
        m = float(bars.values[i])
        lo = float(bars.low[i]) if bars.low is not None else m
        hi = float(bars.high[i]) if bars.high is not None else m
        left = min(0.0, m, lo if math.isfinite(lo) else m)
        right = max(0.0, m, hi if math.isfinite(hi) else m)
        # Thin bars are hard to hit: the whole row between the bar and its whisker counts.
        span = self.plot_item.vb.viewRange()[0]
        slack = 0.02 * (span[1] - span[0])
        return rank if left - slack <= point.x() <= right + slack else None

    # -- drawing ---------------------------------------------------------------------------------
    def _clear_plot(self) -> None:
        self.result = None
        self._shown = None
        self.plot_item.clear()
        self.bars = self.whiskers = None
        self.caption.setText("")
        self.hover_label.setText("Hover a bar for its exact values.")

    def _refill_switcher(self) -> None:
        self.method_box.blockSignals(True)
        self.method_box.clear()
        self.method_box.addItems([METHOD_LABELS[k] for k in self.methods])
        self.method_box.blockSignals(False)
        self.switcher.setVisible(len(self.methods) > 1)

    def _draw(self, bars: _Bars) -> None:
        self._clear_plot()
        self._shown = bars
        self.result = bars.result
        mean = bars.values
        n = len(mean)
        set_title(self.plot_item, bars.title)
        # Sort for reading; a NaN (a feature never explained) sorts last.
        self.order = np.argsort(-np.nan_to_num(mean, nan=-np.inf), kind="stable")
        ys = np.arange(n, dtype=np.float64)[::-1]  # rank 0 at the top
        m = np.nan_to_num(mean[self.order])
        # One colour, as in the PDF: a negative importance is noise around zero, not a second kind of bar.
        self.bars = pg.BarGraphItem(
            x0=np.minimum(m, 0.0), y=ys, height=_BAR_HEIGHT, width=np.abs(m), brush=QColor(palette.PRIMARY), pen=None
        )
        self.plot_item.addItem(self.bars)
        has_ci = np.zeros(n, dtype=bool)
        lo = hi = m
        if bars.low is not None and bars.high is not None:
            lo = bars.low[self.order]
            hi = bars.high[self.order]
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
        names = [bars.names[i] for i in self.order]
        self.plot_item.getAxis("left").setTicks([list(zip(ys.tolist(), names))])
        set_axis_label(self.plot_item, "bottom", bars.axis_label, color=palette.TEXT)
        lows = np.where(has_ci, lo, m)
        highs = np.where(has_ci, hi, m)
        x_min = min(0.0, float(np.nanmin(lows))) if n else 0.0
        x_max = max(0.0, float(np.nanmax(highs))) if n else 1.0
        pad = 0.06 * (x_max - x_min or 1.0)
        self.plot_item.setXRange(x_min - pad, x_max + pad, padding=0)
        self.plot_item.setYRange(-0.7, n - 0.3, padding=0)
        self.plot.setMinimumHeight(max(260, 90 + _ROW_PIXELS * n))
        self.caption.setText(bars.caption)

    # -- slots -------------------------------------------------------------------------------------
    def _on_method_box_index_changed(self, index: int) -> None:
        if 0 <= index < len(self.methods):
            self.show_method(self.methods[index])

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        rank = self.rank_at(scene_pos)
        if rank is None:
            QToolTip.hideText()
            return
        text = self.hover_text(rank)
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), literal(text), self.plot)
