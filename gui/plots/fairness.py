"""The fairness figures, drawn from a ``FairnessResult`` (``engine.explain.fairness``) and nothing else.

* :class:`GroupBarsView`: per attribute, bars of the selection rate, true and false positive rates by
  group, each with its 95 % bootstrap interval as a whisker; the selection-rate chart carries the
  four-fifths line (0.8 × the reference group's rate), every chart the reference group's own rate.
  The reference group's bar is grey, a group under four-fifths of it vermillion, and a group too small
  to judge is hatched.
* :class:`IntersectionView`: one figure of the groups of two attributes as a heatmap.
* :class:`GroupTable`: every group of every attribute and intersection, sortable, with its rows, every
  figure with its interval, its ratio to the reference group and the Holm-adjusted test.
* :class:`SummaryView`: the settings, each attribute's largest gap, the summary measures with their
  intervals, the comparisons with the reference group and the Local Law 144 tables; :func:`headline_text`
  is the headline sentence the pane shows above every view.
* :class:`FlipView`: the counterfactual flip test, by group and by value, with example rows.

Each view says which group a click picked (``sig_group_clicked(attribute, group)``); the pane turns
that into the group's rows.  Group and column names come from the data, so every label is plain text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QCursor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from gui.plots import palette
from gui.plots.base import abbreviate_labels, make_plot, pen, set_axis_label, set_title
from gui.text import literal, plain_label

__all__ = [
    "BAR_METRICS",
    "FIGURE_TITLES",
    "MEASURE_TITLES",
    "GroupBarsView",
    "IntersectionView",
    "GroupTable",
    "SummaryView",
    "FlipView",
    "interval_text",
    "headline_text",
    "settings_text",
]

#: The figures drawn as bars, each in a chart of its own, in order.
BAR_METRICS: tuple[tuple[str, str], ...] = (
    ("selection_rate", "Selection rate"),
    ("tpr", "True positive rate"),
    ("fpr", "False positive rate"),
)
#: Column titles of the per-group figures (``engine.explain.fairness.FIGURES``), and what each means.
FIGURE_TITLES: dict[str, tuple[str, str]] = {
    "selection_rate": ("Selection rate", "Share of the group given the favourable decision."),
    "base_rate": ("Base rate", "Observed share of the favourable outcome in the group."),
    "tpr": ("TPR", "True positive rate: favourable decisions among rows whose outcome was favourable."),
    "fpr": ("FPR", "False positive rate: favourable decisions among rows whose outcome was not."),
    "fnr": ("FNR", "False negative rate: unfavourable decisions among rows whose outcome was favourable."),
    "precision": ("Precision", "Favourable outcomes among the favourable decisions."),
    "accuracy": ("Accuracy", "Decisions equal to the observed outcome."),
    "mean_score": ("Mean score", "Mean predicted probability of the favourable class (a regressor's mean)."),
    "mean_observed": ("Observed", "Observed share of the favourable class (a regressor's mean target)."),
    "ece": ("ECE", "Expected calibration error over ten probability bins."),
    "mae": ("MAE", "Mean absolute error, in the target's units."),
}
#: How the summary measures are named on screen (fairlearn's names are the keys).
MEASURE_TITLES: dict[str, str] = {
    "demographic_parity_difference": "Demographic parity difference",
    "demographic_parity_ratio": "Demographic parity ratio",
    "equalized_odds_difference": "Equalized odds difference",
    "equal_opportunity_difference": "Equal opportunity difference",
    "fpr_ratio": "False positive rate ratio",
}
_BAR_WIDTH = 0.62
_LABEL_CHARS = 14
_MAX_CELL_TEXTS = 144  # heatmap cells that still get their number written in them
_SORT_KEY = Qt.ItemDataRole.UserRole
_GROUP_KEY = Qt.ItemDataRole.UserRole + 1


def _figure_name(metric: str) -> str:
    """A figure's name in full ("True positive rate"; "ECE" stays short)."""
    return dict(BAR_METRICS).get(metric, FIGURE_TITLES[metric][0])


def _defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _num(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _defined(value) else "not defined"


def interval_text(low: float, high: float, digits: int = 3) -> str:
    """``"0.577 to 0.608"``, or ``"no interval"`` when either end is not defined."""
    if not (_defined(low) and _defined(high)):
        return "no interval"
    return f"{low:.{digits}f} to {high:.{digits}f}"


def _with_interval(value: float, low: float, high: float) -> str:
    if not _defined(value):
        return "not defined"
    if not (_defined(low) and _defined(high)):
        return _num(value)
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _brush(colour: str, *, hatched: bool = False) -> QBrush:
    return QBrush(QColor(colour), Qt.BrushStyle.BDiagPattern if hatched else Qt.BrushStyle.SolidPattern)


class _Cell(QTableWidgetItem):
    """A table cell that sorts by its key (numbers as numbers, a value that is not defined last)."""

    def __init__(self, text: str, key: Any = None, *, number: bool = False) -> None:
        super().__init__(text)
        self.setData(_SORT_KEY, text if key is None else key)
        if number:
            self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(_SORT_KEY), other.data(_SORT_KEY)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            if math.isnan(a) or math.isnan(b):
                return not math.isnan(a) and math.isnan(b)
            return a < b
        return str(a) < str(b)


def _table(headers: Sequence[str], *, sortable: bool = False) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setSortingEnabled(sortable)
    return table


def _fill(table: QTableWidget, rows: Sequence[Sequence[QTableWidgetItem]]) -> None:
    """Put ``rows`` of cells in ``table`` (sorting off while filling, so rows stay whole)."""
    sorting = table.isSortingEnabled()
    table.setSortingEnabled(False)
    table.clearContents()
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, cell in enumerate(cells):
            table.setItem(r, c, cell)
    table.setSortingEnabled(sorting)


def _fit_height(table: QTableWidget, most_rows: int = 40) -> None:
    """Make a table as tall as its rows (and its scroll bar, when its columns overflow), up to ``most_rows``."""
    table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
    table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    if table.rowCount() > most_rows:
        height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
        height += sum(table.rowHeight(r) for r in range(most_rows)) + table.horizontalScrollBar().sizeHint().height()
        table.setFixedHeight(height)
    else:
        table.setMinimumHeight(0)
        table.setMaximumHeight(16_777_215)
    table.updateGeometry()


def _section(text: str) -> QLabel:
    label = plain_label(text)
    label.setObjectName("sectionTitle")
    return label


def _hint(text: str = "") -> QLabel:
    label = plain_label(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


# -- bars ---------------------------------------------------------------------------------------------------


class _RateChart:
    """One figure of one attribute's groups as bars with whiskers (see :class:`GroupBarsView`)."""

    def __init__(self, metric: str, title: str) -> None:
        self.metric = metric
        self.title = title
        self.plot = make_plot(title)
        self.plot.setMinimumSize(260, 250)
        self.item = self.plot.getPlotItem()
        self.item.showGrid(x=False, y=True, alpha=0.18)
        self.bars: pg.BarGraphItem | None = None
        self.whiskers: pg.ErrorBarItem | None = None
        self.four_fifths_line: pg.InfiniteLine | None = None
        self.reference_line: pg.InfiniteLine | None = None
        self.groups: tuple[Any, ...] = ()
        self.values = np.zeros(0)

    def clear(self) -> None:
        self.item.clear()
        self.bars = self.whiskers = self.four_fifths_line = self.reference_line = None
        self.groups = ()
        self.values = np.zeros(0)

    def draw(self, groups: Sequence[Any], flagged: set[str], *, four_fifths: bool) -> None:
        self.clear()
        self.groups = tuple(groups)
        n = len(groups)
        xs = np.arange(n, dtype=np.float64)
        values = np.array([float(getattr(g, self.metric)) for g in groups], dtype=np.float64)
        self.values = values
        brushes, pens = [], []
        for g in groups:
            colour = palette.PRIMARY
            if g.reference:
                colour = palette.REFERENCE
            elif four_fifths and g.group in flagged:
                colour = palette.NEGATIVE
            brushes.append(_brush(colour, hatched=not g.judged))
            pens.append(pen(colour, 1.2))
        self.bars = pg.BarGraphItem(x=xs, height=np.nan_to_num(values), width=_BAR_WIDTH, brushes=brushes, pens=pens)
        self.item.addItem(self.bars)
        low = np.array([g.interval(self.metric)[0] for g in groups], dtype=np.float64)
        high = np.array([g.interval(self.metric)[1] for g in groups], dtype=np.float64)
        has = np.isfinite(low) & np.isfinite(high) & np.isfinite(values)
        if has.any():
            self.whiskers = pg.ErrorBarItem(
                x=xs[has],
                y=values[has],
                top=(high - values)[has],
                bottom=(values - low)[has],
                beam=_BAR_WIDTH * 0.4,
                pen=pen(palette.TEXT, 1.4),
            )
            self.item.addItem(self.whiskers)
        reference = next((g for g in groups if g.reference), None)
        ref_value = float(getattr(reference, self.metric)) if reference is not None else math.nan
        if math.isfinite(ref_value):
            self.reference_line = pg.InfiniteLine(pos=ref_value, angle=0, pen=pen(palette.REFERENCE, 1.4, dashed=True))
            self.item.addItem(self.reference_line)
            if four_fifths:
                self.four_fifths_line = pg.InfiniteLine(
                    pos=0.8 * ref_value, angle=0, pen=pen(palette.NEGATIVE, 1.6, dashed=True)
                )
                self.item.addItem(self.four_fifths_line)
        short, _ = abbreviate_labels([str(g.group) for g in groups], _LABEL_CHARS)
        self.item.getAxis("bottom").setTicks([list(zip(xs.tolist(), short))])
        self.item.setXRange(-0.6, n - 0.4, padding=0)
        top = np.nanmax(np.r_[values, high[has], 0.0]) if n else 1.0
        self.item.setYRange(0.0, max(1.0, float(top)) * 1.04, padding=0)

    def index_at(self, scene_pos: QPointF) -> int | None:
        """The bar (group position) under a scene position: its whole column counts, as thin bars are hard to hit."""
        if not self.groups or not self.item.vb.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.item.vb.mapSceneToView(scene_pos)
        i = round(point.x())
        if not 0 <= i < len(self.groups) or abs(point.x() - i) > _BAR_WIDTH / 2:
            return None
        return int(i)


class GroupBarsView(QWidget):
    """Selection rate, true and false positive rate of one attribute's groups, with intervals.

    Choose the attribute in the box above the charts.  Hover a bar for its
    numbers; click it to select the group's rows (``sig_group_clicked``).
    """

    sig_group_clicked = Signal(str, str)  # attribute, group

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.attribute = ""
        self.attribute_box = QComboBox()
        self.attribute_box.setToolTip("The sensitive attribute whose groups the bars compare.")
        self.attribute_box.currentIndexChanged.connect(self._on_attribute_box_index_changed)
        # What the colours and lines mean; fixed words (no name from the data), so markup is safe here.
        self.key = QLabel()
        self.key.setTextFormat(Qt.TextFormat.RichText)
        self.key.setObjectName("hint")
        self.key.setWordWrap(True)
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("Attribute:"))
        chooser.addWidget(self.attribute_box)
        chooser.addSpacing(16)
        chooser.addWidget(self.key, 1)
        self.charts: dict[str, _RateChart] = {metric: _RateChart(metric, title) for metric, title in BAR_METRICS}
        row = QHBoxLayout()
        for chart in self.charts.values():
            row.addWidget(chart.plot, 1)
            chart.plot.scene().sigMouseMoved.connect(lambda pos, c=chart: self._on_chart_mouse_moved(c, pos))
            chart.plot.scene().sigMouseClicked.connect(lambda event, c=chart: self._on_chart_mouse_clicked(c, event))
        self.hover_label = _hint("Hover a bar for its numbers; click it to select the group's rows.")
        self.caption = _hint()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(chooser)
        layout.addLayout(row, 1)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)

    # -- public API --------------------------------------------------------------------------------------
    def clear(self) -> None:
        self.result = None
        self.attribute = ""
        self.attribute_box.blockSignals(True)
        self.attribute_box.clear()
        self.attribute_box.blockSignals(False)
        for chart in self.charts.values():
            chart.clear()
        self.caption.setText("")
        self.key.setText("")

    def set_result(self, result: Any, attribute: str | None = None) -> None:
        """Show ``result``; ``attribute`` (default: the one shown, else the first) is drawn."""
        keep = attribute if attribute is not None else self.attribute
        self.result = result
        self.attribute_box.blockSignals(True)
        self.attribute_box.clear()
        self.attribute_box.addItems(list(result.attributes))
        self.attribute_box.blockSignals(False)
        names = list(result.attributes)
        if keep not in names:  # the attribute of the headline, else the first
            keep = result.headline.attribute if result.headline is not None else names[0] if names else ""
        self.show_attribute(keep)

    def show_attribute(self, attribute: str) -> None:
        """Draw the groups of ``attribute`` (one of the result's attributes)."""
        result = self.result
        if result is None or attribute not in result.attributes:
            return
        self.attribute = attribute
        self.attribute_box.blockSignals(True)
        self.attribute_box.setCurrentIndex(list(result.attributes).index(attribute))
        self.attribute_box.blockSignals(False)
        groups = result.rows(attribute)
        flagged = {c.group for c in result.comparisons if c.attribute == attribute and c.below_four_fifths}
        for metric, chart in self.charts.items():
            defined = any(_defined(getattr(g, metric)) for g in groups)
            chart.plot.setVisible(defined)
            chart.draw(groups, flagged, four_fifths=metric == "selection_rate")
        self.caption.setText(self._caption(result, attribute, groups))
        self.key.setText(_bar_key(result.min_group_size if any(not g.judged for g in groups) else None))

    def whiskers(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The low and high ends of the whiskers drawn on ``metric``'s chart ``(G,)`` (NaN where none)."""
        chart = self.charts[metric]
        n = len(chart.groups)
        low, high = np.full(n, np.nan), np.full(n, np.nan)
        if chart.whiskers is not None:
            opts = chart.whiskers.opts
            at = np.asarray(opts["x"], dtype=np.int64)
            y = np.asarray(opts["y"], dtype=np.float64)
            low[at] = y - np.asarray(opts["bottom"], dtype=np.float64)
            high[at] = y + np.asarray(opts["top"], dtype=np.float64)
        return low, high

    def hover_text(self, metric: str, index: int) -> str:
        """The numbers of one bar, as the hover line states them."""
        result = self.result
        chart = self.charts[metric]
        g = chart.groups[index]
        low, high = g.interval(metric)
        text = (
            f"{g.attribute} = {g.group}: {_figure_name(metric).lower()} {_num(getattr(g, metric))} "
            f"(95% CI {interval_text(low, high)}), n = {g.n:,}"
        )
        if g.reference:
            text += "; the reference group"
        elif metric == "selection_rate" and result is not None:
            comparison = next(
                (c for c in result.comparisons if c.attribute == g.attribute and c.group == g.group), None
            )
            if comparison is not None and _defined(comparison.ratio):
                below = ", below four-fifths" if comparison.below_four_fifths else ""
                text += f"; {comparison.ratio:.2f} × the reference group's rate{below}"
        if not g.judged:
            text += f"; fewer than {result.min_group_size if result is not None else 0} rows, never a headline"
        return text

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _caption(result: Any, attribute: str, groups: Sequence[Any]) -> str:
        reference = result.references.get(attribute, "")
        how = "given" if attribute in result.reference_given else "the largest group"
        if result.task == "classification":
            decision = f"{result.output_name} > {result.threshold:g}"
        else:
            decision = f"a prediction on the {result.favourable} side of the median ({result.median_score:.4g})"
        small = [g for g in groups if not g.judged]
        text = (
            f"Selection rate: share of each group given the favourable decision ({decision}); true and false "
            "positive rates: that share among the rows whose observed outcome was, and was not, favourable. "
            f"Whiskers: {result.confidence:.0%} bootstrap intervals ({result.n_boot:,} resamples). "
            f"Reference group: {reference} ({how})."
        )
        if small:
            text += f" Groups under {result.min_group_size:,} rows are reported but never a headline."
        return text

    # -- slots ----------------------------------------------------------------------------------------
    def _on_attribute_box_index_changed(self, index: int) -> None:
        if self.result is not None and 0 <= index < len(self.result.attributes):
            self.show_attribute(self.result.attributes[index])

    def _on_chart_mouse_moved(self, chart: _RateChart, scene_pos: QPointF) -> None:
        index = chart.index_at(scene_pos)
        if index is None:
            return
        text = self.hover_text(chart.metric, index)
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), literal(text), chart.plot)

    def _on_chart_mouse_clicked(self, chart: _RateChart, event: Any) -> None:
        index = chart.index_at(event.scenePos())
        if index is not None:
            group = chart.groups[index]
            self.sig_group_clicked.emit(group.attribute, group.group)


def _bar_key(min_group_size: int | None) -> str:
    """The key of the bar charts' colours and lines (markup of fixed words and a number only)."""

    def entry(colour: str, glyph: str, words: str) -> str:
        # An entry stays on one line (non-breaking spaces and hyphens); lines break between entries.
        kept = words.replace(" ", "&nbsp;").replace("-", "&#8209;")
        return f"<span style='color:{colour}; font-size:13pt'>{glyph}</span>&nbsp;{kept}"

    parts = [
        entry(palette.REFERENCE, "■", "reference group"),
        entry(palette.PRIMARY, "■", "other groups"),
        entry(palette.NEGATIVE, "■", "under four-fifths of its selection rate"),
        entry(palette.REFERENCE, "╌╌", "its rate"),
        entry(palette.NEGATIVE, "╌╌", "four-fifths of it"),
    ]
    if min_group_size is not None:
        parts.append(entry(palette.MUTED_TEXT, "▨", f"under {min_group_size:,} rows"))
    return "&nbsp;&nbsp; ".join(parts)


# -- intersections --------------------------------------------------------------------------------------


def _sequential_lut() -> np.ndarray:
    stops = np.linspace(0.0, 1.0, len(palette.SEQUENTIAL))
    lut: np.ndarray = pg.ColorMap(stops, [QColor(c) for c in palette.SEQUENTIAL]).getLookupTable(0.0, 1.0, 256)
    return lut


class IntersectionView(QWidget):
    """One figure of the groups of two attributes: rows are the first attribute's groups, columns the second's.

    A grey cell holds no row (or its figure is not defined there); a hatched
    one is a group too small to judge.  Click a cell to select its rows.
    """

    sig_group_clicked = Signal(str, str)  # intersection ("a × b"), group ("x × y")

    HEATMAP_METRICS: tuple[str, ...] = ("selection_rate", "tpr", "fpr", "base_rate", "accuracy")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.intersection = ""
        self.figure = "selection_rate"
        self.row_groups: tuple[str, ...] = ()
        self.column_groups: tuple[str, ...] = ()
        self.values = np.zeros((0, 0))
        self.cells: dict[tuple[int, int], Any] = {}
        self.intersection_box = QComboBox()
        self.intersection_box.currentIndexChanged.connect(self._on_choice_changed)
        self.figure_box = QComboBox()
        for metric in self.HEATMAP_METRICS:
            self.figure_box.addItem(_figure_name(metric), metric)
        self.figure_box.currentIndexChanged.connect(self._on_choice_changed)
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("Attributes:"))
        chooser.addWidget(self.intersection_box)
        chooser.addSpacing(12)
        chooser.addWidget(QLabel("Figure:"))
        chooser.addWidget(self.figure_box)
        chooser.addStretch(1)
        self.chooser = QWidget()
        self.chooser.setLayout(chooser)
        chooser.setContentsMargins(0, 0, 0, 0)
        self.plot = make_plot("Intersection")
        self.plot.setMinimumSize(420, 260)
        self.item = self.plot.getPlotItem()
        self.image: pg.ImageItem | None = None
        self.empty = _hint(
            "The heatmap compares the groups of two sensitive attributes at once. Name a second one in "
            "Sensitive columns (a numeric one is cut into bins) and run again."
        )
        self.hover_label = _hint("Hover a cell for its numbers; click it to select its rows.")
        self.caption = _hint()
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.chooser)
        layout.addWidget(self.empty)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)
        self._show_empty(True)

    def clear(self) -> None:
        self.result = None
        self.intersection_box.blockSignals(True)
        self.intersection_box.clear()
        self.intersection_box.blockSignals(False)
        self._clear_plot()
        self._show_empty(True)

    def set_result(self, result: Any) -> None:
        keep = self.intersection
        self.result = result
        self.intersection_box.blockSignals(True)
        self.intersection_box.clear()
        self.intersection_box.addItems(list(result.intersections))
        if keep in result.intersections:
            self.intersection_box.setCurrentIndex(list(result.intersections).index(keep))
        self.intersection_box.blockSignals(False)
        if not result.intersections:
            self._clear_plot()
            self._show_empty(True)
            return
        self._show_empty(False)
        self.draw(self.intersection_box.currentText(), self.figure_box.currentData())

    def draw(self, intersection: str, metric: str) -> None:
        """Draw ``metric`` of the groups of ``intersection`` (one of the result's intersections)."""
        from engine.explain.fairness import INTERSECTION

        result = self.result
        if result is None or intersection not in result.intersections:
            return
        self._clear_plot()
        self.intersection, self.figure = intersection, metric
        first, second = intersection.split(INTERSECTION, 1)
        self.row_groups = tuple(g.group for g in result.rows(first))
        self.column_groups = tuple(g.group for g in result.rows(second))
        at = {
            f"{a}{INTERSECTION}{b}": (i, j)
            for i, a in enumerate(self.row_groups)
            for j, b in enumerate(self.column_groups)
        }
        values = np.full((len(self.row_groups), len(self.column_groups)), np.nan)
        for g in result.rows(intersection):
            where = at.get(g.group)
            if where is not None:
                values[where] = float(getattr(g, metric))
                self.cells[where] = g
        self.values = values
        n_rows, n_cols = values.shape
        self.image = pg.ImageItem(np.nan_to_num(values, nan=0.0), axisOrder="row-major")
        self.image.setLookupTable(_sequential_lut())
        self.image.setLevels((0.0, 1.0))
        self.image.setRect(QRectF(0, 0, n_cols, n_rows))
        self.item.addItem(self.image)
        font = QFont()
        font.setPointSize(9 if values.size <= 36 else 8)
        write = values.size <= _MAX_CELL_TEXTS
        for (i, j), g in self.cells.items():
            if not g.judged:
                rect = QGraphicsRectItem(j, i, 1, 1)
                rect.setBrush(_brush(palette.MUTED_TEXT, hatched=True))
                rect.setPen(pg.mkPen(None))
                self.item.addItem(rect)
        for i in range(n_rows):
            for j in range(n_cols):
                if not np.isfinite(values[i, j]):
                    rect = QGraphicsRectItem(j, i, 1, 1)
                    rect.setBrush(QBrush(QColor(palette.GRID)))
                    rect.setPen(pg.mkPen(None))
                    self.item.addItem(rect)
                if not write:
                    continue
                g = self.cells.get((i, j))
                number = _num(values[i, j]) if np.isfinite(values[i, j]) else "not defined" if g else "no rows"
                dark = np.isfinite(values[i, j]) and values[i, j] > 0.55
                colour = "#FFFFFF" if dark else palette.TEXT
                # Numbers only (no name from the data), centred on two lines.
                size = f"<br>n = {g.n:,}" if g is not None else ""
                label = pg.TextItem(anchor=(0.5, 0.5))
                label.setFont(font)
                label.setHtml(f"<div style='text-align:center; color:{colour}'>{number}{size}</div>")
                label.setPos(j + 0.5, i + 0.5)
                self.item.addItem(label)
        short_rows, _ = abbreviate_labels(list(self.row_groups), _LABEL_CHARS)
        short_cols, _ = abbreviate_labels(list(self.column_groups), _LABEL_CHARS)
        self.item.getAxis("left").setTicks([[(i + 0.5, s) for i, s in enumerate(short_rows)]])
        self.item.getAxis("bottom").setTicks([[(j + 0.5, s) for j, s in enumerate(short_cols)]])
        set_axis_label(self.item, "left", first)
        set_axis_label(self.item, "bottom", second)
        set_title(self.item, f"{_figure_name(metric)} by {first} and {second}")
        self.item.showGrid(x=False, y=False)
        self.item.invertY(True)
        self.item.setRange(xRange=(0, n_cols), yRange=(0, n_rows), padding=0.02)
        self.caption.setText(
            f"Each cell: the {_figure_name(metric).lower()} of the rows in both groups (darker for higher, from 0 "
            f"to 1) and how many they are. Grey: no row, or not defined; hatched: under {result.min_group_size:,} "
            "rows, never a headline."
        )

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """The (row, column) of the cell under a scene position, or ``None``."""
        if self.image is None or not self.item.vb.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.item.vb.mapSceneToView(scene_pos)
        i, j = math.floor(point.y()), math.floor(point.x())
        if 0 <= i < self.values.shape[0] and 0 <= j < self.values.shape[1]:
            return i, j
        return None

    def hover_text(self, i: int, j: int) -> str:
        g = self.cells.get((i, j))
        if g is None:
            return f"{self.row_groups[i]} and {self.column_groups[j]}: no row"
        low, high = g.interval(self.figure)
        return (
            f"{g.group}: {_figure_name(self.figure).lower()} {_num(getattr(g, self.figure))} "
            f"(95% CI {interval_text(low, high)}), n = {g.n:,}"
        )

    # -- helpers -------------------------------------------------------------------------------------
    def _clear_plot(self) -> None:
        self.item.clear()
        self.image = None
        self.cells = {}
        self.values = np.zeros((0, 0))
        self.caption.setText("")

    def _show_empty(self, empty: bool) -> None:
        self.empty.setVisible(empty)
        self.chooser.setVisible(not empty)
        self.plot.setVisible(not empty)
        self.hover_label.setVisible(not empty)
        self.caption.setVisible(not empty)

    def _on_choice_changed(self, _index: int) -> None:
        if self.result is not None and self.intersection_box.currentText():
            self.draw(self.intersection_box.currentText(), self.figure_box.currentData())

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        if cell is None:
            return
        text = self.hover_text(*cell)
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), literal(text), self.plot)

    def _on_scene_mouse_clicked(self, event: Any) -> None:
        cell = self.cell_at(event.scenePos())
        g = self.cells.get(cell) if cell is not None else None
        if g is not None:
            self.sig_group_clicked.emit(g.attribute, g.group)


# -- the group table ------------------------------------------------------------------------------------


class GroupTable(QWidget):
    """Every group of every attribute and intersection: rows, every figure with its interval, the reference test.

    Click a column header to sort; click a row to select the group's rows (``sig_group_clicked``).
    """

    sig_group_clicked = Signal(str, str)  # attribute, group

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.figures: tuple[str, ...] = ()
        self.table = _table((), sortable=True)
        self.table.setToolTip("Click a column header to sort; click a group to select its rows.")
        self.table.cellClicked.connect(self._on_table_cell_clicked)
        self.table.cellActivated.connect(self._on_table_cell_clicked)
        self.caption = _hint()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.caption)

    def clear(self) -> None:
        self.result = None
        self.table.setRowCount(0)
        self.caption.setText("")

    def set_result(self, result: Any) -> None:
        from engine.explain.fairness import FIGURES

        self.result = result
        groups = (*result.groups, *result.intersection_groups)
        # The rates the four-fifths rule and equalized odds read come first, then the others in the engine's order.
        first = ("selection_rate", "tpr", "fpr")
        order = (*first, *(f for f in FIGURES if f not in first))
        self.figures = tuple(f for f in order if any(_defined(getattr(g, f)) for g in groups))
        # Rows, share, the selection rate and its ratio to the reference group's; the other rates; the test.
        headers = ["Attribute", "Group", "Rows", "Share"]
        headers += [FIGURE_TITLES[f][0] for f in self.figures[:1]] + ["Ratio to reference"]
        headers += [FIGURE_TITLES[f][0] for f in self.figures[1:]] + ["p (Holm)", "Note"]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        for c, title in enumerate(headers):
            figure = next((f for f in self.figures if FIGURE_TITLES[f][0] == title), None)
            header = self.table.horizontalHeaderItem(c)
            if header is not None and figure is not None:
                header.setToolTip(FIGURE_TITLES[figure][1] + " With its 95% interval.")
        comparisons = {(c.attribute, c.group): c for c in result.comparisons}
        rows = []
        for g in groups:
            key = _Cell(g.attribute)
            key.setData(_GROUP_KEY, [g.attribute, g.group])
            cells: list[QTableWidgetItem] = [key, _Cell(g.group), _Cell(f"{g.n:,}", g.n, number=True)]
            cells.append(_Cell(f"{g.share:.1%}" if _defined(g.share) else "", g.share, number=True))
            figures = []
            for figure in self.figures:
                value = float(getattr(g, figure))
                low, high = g.interval(figure)
                figures.append(_Cell(_with_interval(value, low, high), value, number=True))
            comparison = comparisons.get((g.attribute, g.group))
            ratio = comparison.ratio if comparison is not None else (1.0 if g.reference else math.nan)
            ratio_text = "1 (reference)" if g.reference else ""
            if comparison is not None and _defined(comparison.ratio):
                ratio_text = _with_interval(comparison.ratio, comparison.ratio_ci_low, comparison.ratio_ci_high)
            cells += [*figures[:1], _Cell(ratio_text, ratio, number=True), *figures[1:]]
            p = comparison.p_holm if comparison is not None else math.nan
            cells.append(_Cell(_p_text(p), p, number=True))
            notes = []
            if g.reference:
                notes.append("reference group")
            if comparison is not None and comparison.below_four_fifths:
                notes.append("below four-fifths")
            if comparison is not None and comparison.significant:
                notes.append("significant")
            if not g.judged:
                notes.append(f"small: under {result.min_group_size:,} rows")
            note = _Cell(", ".join(notes))
            if comparison is not None and comparison.below_four_fifths:
                note.setForeground(QColor(palette.NEGATIVE))
            cells.append(note)
            rows.append(cells)
        _fill(self.table, rows)
        self.caption.setText(
            f"Figures with their {result.confidence:.0%} bootstrap interval [low, high] over {result.n_boot:,} "
            f"resamples stratified by group; {result.n_rows:,} rows evaluated"
            + (f" ({result.n_dropped:,} without a target left out)" if result.n_dropped else "")
            + ". Ratio to reference: the selection rate over the reference group's; p: two-proportion z-test "
            "against the reference group, Holm-adjusted within each attribute."
        )

    def group_of_row(self, row: int) -> tuple[str, str] | None:
        """The (attribute, group) shown in table row ``row`` (after any sorting)."""
        item = self.table.item(row, 0)
        key = item.data(_GROUP_KEY) if item is not None else None
        return (str(key[0]), str(key[1])) if key else None

    def row_of(self, attribute: str, group: str) -> int:
        """The table row showing ``group`` of ``attribute`` (-1 when none)."""
        return next(
            (r for r in range(self.table.rowCount()) if self.group_of_row(r) == (attribute, group)),
            -1,
        )

    def column_of(self, title: str) -> int:
        headers = [self.table.horizontalHeaderItem(c) for c in range(self.table.columnCount())]
        return next((c for c, h in enumerate(headers) if h is not None and h.text() == title), -1)

    def _on_table_cell_clicked(self, row: int, _column: int) -> None:
        key = self.group_of_row(row)
        if key is not None:
            self.sig_group_clicked.emit(*key)


def _p_text(p: float) -> str:
    if not _defined(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# -- the summary ---------------------------------------------------------------------------------------


class SummaryView(QWidget):
    """The settings, the other attributes' largest gaps, the summary measures, the reference comparisons and LL144.

    The headline (:func:`headline_text`) is the pane's to show, above every view.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.gaps = _hint()
        self.gaps.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.settings = _hint()
        self.measures = _table(
            ("Attribute", "Measure", "Value", "95% interval", "Lowest group", "Highest group", "Groups")
        )
        self.comparisons = _table(
            (
                "Attribute",
                "Group",
                "Reference",
                "Selection rate",
                "Ratio [95% CI]",
                "Four-fifths",
                "Difference [95% CI]",
                "p",
                "p (Holm)",
            )
        )
        self.comparisons_note = _hint(
            "Ratio and difference: the group's selection rate against the reference group's, with bootstrap "
            "intervals; four-fifths: the ratio is under 0.8 (the EEOC's rule of thumb); p: a two-proportion z-test, "
            "and Holm's adjustment for the several comparisons within each attribute."
        )
        self.ll144 = _table(("Attribute", "Category", "Rows", "Rate", "Impact ratio", "Note"))
        self.ll144_note = _hint()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.gaps)
        layout.addWidget(self.settings)
        layout.addWidget(_section("Summary measures (fairlearn's definitions)"))
        layout.addWidget(self.measures)
        layout.addWidget(_section("Each group against its reference group"))
        layout.addWidget(self.comparisons)
        layout.addWidget(self.comparisons_note)
        layout.addWidget(_section("NYC Local Law 144"))
        layout.addWidget(self.ll144)
        layout.addWidget(self.ll144_note)
        layout.addStretch(1)

    def clear(self) -> None:
        self.result = None
        for label in (self.gaps, self.settings, self.ll144_note):
            label.setText("")
        for table in (self.measures, self.comparisons, self.ll144):
            table.setRowCount(0)

    def set_result(self, result: Any) -> None:
        self.result = result
        others = [d.sentence() for d in result.largest_gaps if result.headline is None or d != result.headline]
        self.gaps.setText(("Largest gap of each other attribute: " + " ".join(others)) if others else "")
        self.gaps.setVisible(bool(others))
        self.settings.setText(settings_text(result))
        rows = []
        for m in result.measures:
            rows.append(
                [
                    _Cell(m.attribute),
                    _Cell(MEASURE_TITLES.get(m.measure, m.measure)),
                    _Cell(_num(m.value), m.value, number=True),
                    _Cell(interval_text(m.ci_low, m.ci_high), m.ci_low, number=True),
                    _Cell(m.low_group),
                    _Cell(m.high_group),
                    _Cell(str(m.n_groups), m.n_groups, number=True),
                ]
            )
        _fill(self.measures, rows)
        rows = []
        for c in result.comparisons:
            flag = _Cell("below" if c.below_four_fifths else "")
            if c.below_four_fifths:
                flag.setForeground(QColor(palette.NEGATIVE))
            rows.append(
                [
                    _Cell(c.attribute),
                    _Cell(c.group),
                    _Cell(c.reference),
                    _Cell(_num(c.selection_rate), c.selection_rate, number=True),
                    _Cell(_with_interval(c.ratio, c.ratio_ci_low, c.ratio_ci_high), c.ratio, number=True),
                    flag,
                    _Cell(
                        _with_interval(c.difference, c.difference_ci_low, c.difference_ci_high),
                        c.difference,
                        number=True,
                    ),
                    _Cell(_p_text(c.p_value), c.p_value, number=True),
                    _Cell(_p_text(c.p_holm), c.p_holm, number=True),
                ]
            )
        _fill(self.comparisons, rows)
        rows = []
        notes = []
        for t in result.ll144:
            for row in t.rows:
                rows.append(
                    [
                        _Cell(t.attribute),
                        _Cell(row.category),
                        _Cell(f"{row.n:,}", row.n, number=True),
                        _Cell(_num(row.rate), row.rate, number=True),
                        _Cell(_num(row.impact_ratio) if not row.excluded else "", row.impact_ratio, number=True),
                        _Cell("under 2%: left out of the ratios" if row.excluded else ""),
                    ]
                )
            if t.n_unknown:
                notes.append(f"{t.attribute}: {t.n_unknown:,} rows with an unknown category, left out.")
        kind = result.ll144[0].rate_kind if result.ll144 else "selection rate"
        notes.insert(
            0,
            f"Rate: the {kind}; impact ratio: the rate over the most selected category's. Categories under 2% of "
            + ("the rows were left out of the ratios." if result.ll144_exclude_small else "the rows were kept."),
        )
        _fill(self.ll144, rows)
        self.ll144_note.setText(" ".join(notes))
        for table in (self.measures, self.comparisons, self.ll144):
            _fit_height(table)


def headline_text(result: Any) -> str:
    """The headline sentence: the largest gap between groups large enough to judge, or why there is none."""
    if result.headline is not None:
        return "Largest gap: " + result.headline.sentence()
    return (
        f"No attribute has two groups of at least {result.min_group_size:,} rows, so no gap is large enough to "
        "judge as a headline; the smaller groups' figures are in the table."
    )


def settings_text(result: Any) -> str:
    """What the figures were computed with: the favourable outcome, the decision, the references, the bins."""
    if result.task == "classification":
        decision = f"favourable outcome {result.favourable!s}, decided when {result.output_name} > {result.threshold:g}"
    else:
        decision = (
            f"favourable side '{result.favourable}' of the median prediction ({result.median_score:.4g}), as the "
            "scoring rate"
        )
    references = "; ".join(
        f"{a} = {result.references.get(a, '')} ({'given' if a in result.reference_given else 'the largest group'})"
        for a in result.attributes
    )
    bins = "; ".join(
        f"{a} cut at {', '.join(f'{e:g}' for e in edges[1:-1]) or 'no inner edge'}"
        for a, edges in result.bin_edges.items()
    )
    text = (
        f"Settings: {decision}. Reference groups: {references}. {result.n_boot:,} bootstrap resamples; groups under "
        f"{result.min_group_size:,} rows are reported but never a headline."
    )
    return text + (f" Bins: {bins}." if bins else "")


# -- the flip test ------------------------------------------------------------------------------------


class FlipView(QWidget):
    """The counterfactual flip test: by group, and by the value set, with example rows.

    Click a group to select its rows (``sig_group_clicked``), a line of the
    second table to select its example rows (``sig_rows_picked``).  With no
    flip test, :meth:`suggest` offers to flip an input (the strongest proxy).
    """

    sig_group_clicked = Signal(str, str)  # attribute, group
    sig_rows_picked = Signal(object)  # np.ndarray of 0-based row positions
    sig_flip_requested = Signal(str)  # an input to flip

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.suggested = ""
        self.note = _hint()
        self.suggest_button = QPushButton()
        self.suggest_button.hide()
        self.suggest_button.clicked.connect(self._on_suggest_button_clicked)
        self.by_group = _table(("Input changed", "Role", "Attribute", "Group", "Rows", "Decisions changed", "Share"))
        self.by_group.cellClicked.connect(self._on_by_group_cell_clicked)
        self.by_group.setToolTip("Click a group to select its rows.")
        self.by_value = _table(
            (
                "Input changed",
                "Group",
                "Set to",
                "Rows set",
                "Decisions changed",
                "To favourable / not",
                "Example rows (score before → after)",
            ),
            sortable=True,
        )
        self.by_value.cellClicked.connect(self._on_by_value_cell_clicked)
        self.by_value.setToolTip("Click a line to select its example rows.")
        self.by_group_title = _section("Decisions that change, by group")
        self.by_value_title = _section("By the value set")
        suggest_row = QHBoxLayout()
        suggest_row.addWidget(self.suggest_button)
        suggest_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addLayout(suggest_row)
        layout.addWidget(self.by_group_title)
        layout.addWidget(self.by_group)
        layout.addWidget(self.by_value_title)
        layout.addWidget(self.by_value)
        layout.addStretch(1)

    def clear(self) -> None:
        self.result = None
        self.note.setText("")
        for table in (self.by_group, self.by_value):
            table.setRowCount(0)
        self._show_tables(False)

    def set_result(self, result: Any) -> None:
        self.result = result
        flips = tuple(result.flips)
        self._show_tables(bool(flips))
        if not flips:
            inputs = [a for a in result.attributes]
            self.note.setText(
                "No flip test: "
                + (
                    f"the sensitive attribute{'s' if len(inputs) > 1 else ''} {', '.join(inputs)} "
                    f"{'are' if len(inputs) > 1 else 'is'} not a model input, and no input was named to flip "
                    "(Inputs to flip, under More settings). Flipping a proxy shows how much the model's decisions "
                    "follow it."
                )
            )
            self.by_group.setRowCount(0)
            self.by_value.setRowCount(0)
            self._refresh_suggestion()
            return
        # A column's changed rows are the same whichever attribute's groups count them.
        by_column = {f.column: (f.n_flipped, f.n_rows) for f in flips}
        counts = "; ".join(f"{column}: {k:,} of {n:,} rows" for column, (k, n) in by_column.items())
        self.note.setText(
            "Each row's input was set to each other value (a number: to each other group's median), nothing "
            f"else, and the rows whose decision changed for at least one value counted ({counts}). A changed "
            "decision shows the model's use of that input."
        )
        rows = []
        for f in flips:
            for group, n in f.n_by_group.items():
                changed = int(f.flipped_by_group.get(group, 0))
                first = _Cell(f.column)
                first.setData(_GROUP_KEY, [f.attribute, group])
                rows.append(
                    [
                        first,
                        _Cell(f.role),
                        _Cell(f.attribute),
                        _Cell(group),
                        _Cell(f"{n:,}", n, number=True),
                        _Cell(f"{changed:,}", changed, number=True),
                        _Cell(f"{changed / n:.1%}" if n else "", changed / n if n else math.nan, number=True),
                    ]
                )
        _fill(self.by_group, rows)
        _fit_height(self.by_group)
        rows = []
        for f in flips:
            for row in f.rows:
                examples = ", ".join(
                    f"{r} ({b:.2f} → {a:.2f})" for r, b, a in zip(row.examples, row.example_before, row.example_after)
                )
                first = _Cell(f.column)
                first.setData(_GROUP_KEY, [int(r) for r in row.examples])
                rows.append(
                    [
                        first,
                        _Cell(row.group),
                        _Cell(row.to_value),
                        _Cell(f"{row.n:,}", row.n, number=True),
                        _Cell(f"{row.flipped:,} ({row.share:.1%})" if row.n else "0", row.flipped, number=True),
                        _Cell(f"{row.to_favourable:,} / {row.to_unfavourable:,}", row.to_favourable, number=True),
                        _Cell(examples),
                    ]
                )
        _fill(self.by_value, rows)
        _fit_height(self.by_value)
        self._refresh_suggestion()

    def suggest(self, column: str) -> None:
        """Offer to flip ``column`` (``""``: offer nothing) while the result has no flip test of it."""
        self.suggested = column
        self._refresh_suggestion()

    def example_rows(self, row: int) -> list[int]:
        item = self.by_value.item(row, 0)
        return [int(r) for r in (item.data(_GROUP_KEY) or [])] if item is not None else []

    def _refresh_suggestion(self) -> None:
        flipped = {f.column for f in self.result.flips} if self.result is not None else set()
        offer = bool(self.suggested) and self.result is not None and self.suggested not in flipped
        self.suggest_button.setText(f"Flip {self.suggested}, the strongest proxy, and run again")
        self.suggest_button.setVisible(offer)

    def _show_tables(self, shown: bool) -> None:
        for widget in (self.by_group_title, self.by_group, self.by_value_title, self.by_value):
            widget.setVisible(shown)

    def _on_suggest_button_clicked(self) -> None:
        if self.suggested:
            self.sig_flip_requested.emit(self.suggested)

    def _on_by_group_cell_clicked(self, row: int, _column: int) -> None:
        item = self.by_group.item(row, 0)
        key = item.data(_GROUP_KEY) if item is not None else None
        if key:
            self.sig_group_clicked.emit(str(key[0]), str(key[1]))

    def _on_by_value_cell_clicked(self, row: int, _column: int) -> None:
        rows = self.example_rows(row)
        if rows:
            self.sig_rows_picked.emit(np.asarray(rows, dtype=np.int64))
