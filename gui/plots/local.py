"""Local explanations of one row: LIME's signed bars and SHAP's waterfall.

Both views take an ``AttributionResult`` (many rows) and show one of its rows,
the *instance*; the Explain workspace tells them which through
:meth:`LocalView.show_row`.  Bars use the diverging palette's ends: orange
raises the explained output, blue lowers it (as in the PDF report).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolTip, QVBoxLayout, QWidget

from engine.explain.lime import FIDELITY_MIN_R2, FidelityVerdict, lime_fidelity
from gui.plots import palette
from gui.plots.base import make_plot, method_word, pen, set_axis_label, set_title
from gui.text import literal, plain_label

__all__ = ["LocalView", "LimeView", "WaterfallView", "format_number", "format_cell", "LOW_R2", "badge_style"]

_BAR_HEIGHT = 0.64
_ROW_PIXELS = 26
LOW_R2 = FIDELITY_MIN_R2  # below this a LIME surrogate describes the model poorly near the row
_GOOD = "#009E73"


def format_number(value: float, digits: int = 4) -> str:
    """``0.1234``, ``52,340``, ``-1.2e-05``; ``not defined`` for NaN."""
    if value is None or not math.isfinite(value):
        return "not defined"
    value = value + 0.0  # a negative zero (0 times a negative gradient, say) reads as 0, not -0
    if value != 0 and abs(value) >= 1000 and float(value).is_integer():
        return f"{value:,.0f}"
    if value != 0 and 1000 <= abs(value) < 1e9:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def format_cell(value: Any, limit: int = 24) -> str:
    """A data value as a short label (numbers shortened, long text cut, ``NA`` for missing)."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "NA"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_number(float(value))
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return "NA"
    except ImportError:  # pragma: no cover - pandas is always there once a frame exists
        pass
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + format_number(value)


def badge_style(kind: str) -> str:
    """A stylesheet for a small rounded label: ``good``, ``warning``, ``bad`` or ``neutral``."""
    colours = {
        "good": (_GOOD, "#E8F6F1", "#A9DCCB"),
        "warning": (palette.WARNING, "#FFF5E0", "#EBCB8B"),
        "bad": (palette.ERROR, "#FDEDEB", "#F0B7B2"),
        "neutral": (palette.TEXT, "#F1F1EE", "#D4D4D0"),
    }
    fg, bg, border = colours[kind]
    return (
        f"QLabel {{ color: {fg}; background: {bg}; border: 1px solid {border}; border-radius: 9px; padding: 2px 9px; }}"
    )


class LocalView(QWidget):
    """Horizontal contribution bars for one explained row, with hover and a caption."""

    TITLE = "Local explanation"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.frame: Any | None = None
        self.shown_row: int | None = None
        self.labels: list[str] = []
        self.contributions = np.zeros(0)
        self.starts = np.zeros(0)
        self._hover_texts: list[str] = []
        self.heading = plain_label()
        self.heading.setObjectName("sectionTitle")
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.badges = QHBoxLayout()
        self.badges.setContentsMargins(0, 0, 0, 0)
        self.plot = make_plot(self.TITLE, interactive=True)
        self.plot_item = self.plot.getPlotItem()
        self.plot_item.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot_item.showGrid(x=True, y=False, alpha=0.18)
        self.bars: pg.BarGraphItem | None = None
        self.hover_label = plain_label("Hover a bar for its exact value.")
        self.hover_label.setObjectName("hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption = plain_label()
        self.caption.setObjectName("hint")
        self.caption.setWordWrap(True)
        self.note = plain_label()
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.note.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heading)
        layout.addLayout(self.badges)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover_label)
        layout.addWidget(self.caption)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    # -- public API ----------------------------------------------------------------------
    @property
    def bar_count(self) -> int:
        return int(self.contributions.size)

    def clear(self) -> None:
        self.result = None
        self.frame = None
        self.shown_row = None
        self._clear_plot()
        self.heading.setText("")
        self.caption.setText("")
        self.note.hide()

    def set_result(self, result: Any, *, frame: Any | None = None, row: int | None = None) -> None:
        """Show ``result``'s row ``row`` (a dataset position; default: its first row)."""
        self.result = result
        self.frame = frame
        self.shown_row = None
        rows = np.asarray(result.rows)
        self.show_row(int(rows[0]) if row is None or row not in set(rows.tolist()) else row)

    def explained_rows(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int64) if self.result is None else np.asarray(self.result.rows)

    def show_row(self, row: int | None) -> bool:
        """Draw the explanation of dataset row ``row``; False (and a note) when it was not explained."""
        if self.result is None or row is None:
            return False
        where = np.flatnonzero(self.explained_rows() == int(row))
        if where.size == 0:
            self.note.setText(
                f"Row {row} is not among the {self.explained_rows().size:,} rows this explanation covers; "
                f"showing row {self.shown_row}. Run the method with that row selected to explain it."
            )
            self.note.show()
            return False
        self.note.hide()
        self.shown_row = int(row)
        self._clear_plot()
        self._draw(int(where[0]))
        return True

    def hover_text(self, index: int) -> str:
        """The exact numbers of drawn bar ``index`` (0 = the top bar)."""
        return self._hover_texts[index]

    def bar_at(self, scene_pos: QPointF) -> int | None:
        """The index of the bar (0 = top) under a scene position, or ``None``."""
        if self.bars is None or not self.contributions.size:
            return None
        point = self.plot_item.vb.mapSceneToView(scene_pos)
        n = self.contributions.size
        level = round(point.y())
        if not 0 <= level < n or abs(point.y() - level) > _BAR_HEIGHT / 2:
            return None
        index = n - 1 - level
        lo = min(self.starts[index], self.starts[index] + self.contributions[index])
        hi = max(self.starts[index], self.starts[index] + self.contributions[index])
        span = self.plot_item.vb.viewRange()[0]
        slack = 0.03 * (span[1] - span[0])  # a zero-width bar must still be hoverable
        return index if lo - slack <= point.x() <= hi + slack else None

    # -- drawing -----------------------------------------------------------------------------
    def _draw(self, i: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _instance_value(self, feature: str) -> str:
        if self.frame is None or self.shown_row is None or feature not in self.frame.columns:
            return ""
        return format_cell(self.frame[feature].iloc[self.shown_row])

    def _feature_label(self, feature: str) -> str:
        value = self._instance_value(feature)
        return f"{feature} = {value}" if value else feature

    def _clear_plot(self) -> None:
        self.plot_item.clear()
        self.bars = None
        self.labels = []
        self.contributions = np.zeros(0)
        self.starts = np.zeros(0)
        self._hover_texts = []
        self.hover_label.setText("Hover a bar for its exact value.")
        while self.badges.count():
            item = self.badges.takeAt(0)
            if item.widget() is not None:
                # Hidden now: deleteLater waits for the event loop, and until then the old badge would
                # still be drawn, wherever its last geometry put it.
                item.widget().hide()
                item.widget().deleteLater()

    def _add_badge(self, text: str, kind: str, tip: str = "") -> QLabel:
        label = plain_label(text)
        label.setStyleSheet(badge_style(kind))
        label.setToolTip(literal(tip))
        self.badges.addWidget(label)
        return label

    def _draw_bars(self, labels: list[str], starts: np.ndarray, values: np.ndarray, hover: list[str]) -> None:
        """Bars top to bottom in the given order; bar ``j`` spans ``starts[j]`` to ``starts[j] + values[j]``.

        A bar whose value (or start) is not finite gets its label and a "not defined" mark at its start,
        but no bar, and the plot's range is taken from the finite bars alone.
        """
        n = len(labels)
        self.labels = list(labels)
        self.starts = np.asarray(starts, dtype=np.float64)
        self.contributions = np.asarray(values, dtype=np.float64)
        self._hover_texts = list(hover)
        ys = np.arange(n, dtype=np.float64)[::-1]
        ends = self.starts + self.contributions
        defined = np.isfinite(ends)
        if defined.any():
            brushes = [
                QColor(palette.CONTRIBUTION_UP if v > 0 else palette.CONTRIBUTION_DOWN)
                for v in self.contributions[defined]
            ]
            self.bars = pg.BarGraphItem(
                x0=np.minimum(self.starts, ends)[defined],
                y=ys[defined],
                height=_BAR_HEIGHT,
                width=np.abs(self.contributions[defined]),
                brushes=brushes,
                pen=pg.mkPen(QColor("#FFFFFF"), width=0.5),
            )
            self.plot_item.addItem(self.bars)
        self.plot_item.getAxis("left").setTicks([list(zip(ys.tolist(), self.labels))])
        reach = np.concatenate([self.starts, ends, [0.0] if self._zero_line() else []])
        reach = reach[np.isfinite(reach)]
        lo, hi = (float(reach.min()), float(reach.max())) if reach.size else (-1.0, 1.0)
        pad = 0.14 * (hi - lo or 1.0)
        font = QFont()
        font.setPointSize(8)
        for j, (start, end, value) in enumerate(zip(self.starts, ends, self.contributions)):
            # An undefined contribution is named where its bar would start (or at the range's left end).
            at = float(end) if defined[j] else float(start) if math.isfinite(start) else lo
            text = pg.TextItem(_signed(float(value)), color=palette.MUTED_TEXT, anchor=(1 if value < 0 else 0, 0.5))
            text.setFont(font)
            text.setPos(at, float(ys[j]))
            self.plot_item.addItem(text)
        self.plot_item.setXRange(lo - pad, hi + pad, padding=0)
        self.plot_item.setYRange(-0.7, n - 0.3, padding=0)
        self.plot.setMinimumHeight(max(260, 90 + _ROW_PIXELS * n))

    def _zero_line(self) -> bool:
        return True

    # -- slots ---------------------------------------------------------------------------------
    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        index = self.bar_at(scene_pos)
        if index is None:
            QToolTip.hideText()
            return
        text = self.hover_text(index)
        self.hover_label.setText(text)
        QToolTip.showText(QCursor.pos(), literal(text), self.plot)


class LimeView(LocalView):
    """LIME for one row: one signed bar per feature, the surrogate's fit and its stability."""

    TITLE = "LIME: local surrogate coefficients"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.r2: float = math.nan
        self.verdict: FidelityVerdict | None = None
        self.r2_badge: QLabel | None = None
        self.stability_badge: QLabel | None = None

    def _draw(self, i: int) -> None:
        result = self.result
        assert result is not None
        values = np.asarray(result.values[i], dtype=np.float64)
        names = [str(n) for n in result.feature_names]
        order = np.argsort(-np.abs(np.nan_to_num(values)), kind="stable")
        labels = [self._feature_label(names[j]) for j in order]
        shown = values[order]
        hover = [
            f"{labels[k]}: coefficient {_signed(float(shown[k]))} on {result.output_name}" for k in range(len(order))
        ]
        self.plot_item.addItem(pg.InfiniteLine(pos=0.0, angle=90, pen=pen(palette.REFERENCE, 1.0)))
        self._draw_bars(labels, np.zeros(len(order)), shown, hover)
        set_axis_label(
            self.plot_item, "bottom", f"Change in {result.output_name} (LIME coefficient)", color=palette.TEXT
        )

        prediction = float(result.predictions[i])
        self.heading.setText(f"Row {self.shown_row} · model {result.output_name} = {format_number(prediction)}")
        quality = result.quality
        # One verdict, the engine's, for this badge and the PDF: green only when both the R² and the
        # surrogate's prediction at the row are fine.
        verdict = self.verdict = lime_fidelity(result, i)
        self.r2 = verdict.r2
        low = math.isfinite(self.r2) and self.r2 < LOW_R2
        text = f"Local fidelity R² {format_number(self.r2, 3)}" + (" · low" if low else "")
        if verdict.gap_poor:
            text += (
                f" · surrogate {format_number(verdict.surrogate_prediction, 3)}"
                f" vs model {format_number(verdict.model_prediction, 3)}"
            )
        explanation = (
            "Weighted R² of the linear surrogate on the perturbed neighbourhood of this row, and the gap between "
            f"the surrogate's prediction at the row and the model's; below {LOW_R2:g} R², or with a gap above "
            + (
                f"{verdict.gap_limit:g}"
                if verdict.probability
                else f"{verdict.gap_limit:g} standard deviations of the model's output"
            )
            + ", the surrogate describes the model poorly here, so read the bars with caution."
        )
        self.r2_badge = self._add_badge(
            text,
            verdict.level,
            "\n\n".join([*verdict.problems, explanation]),
        )
        if "stability_jaccard" in quality:
            jaccard = float(quality["stability_jaccard"][i])
            runs = int(result.provenance.parameters.get("stability_runs", 0)) if result.provenance else 0
            top_k = int(result.summary.get("top_k", 0))
            kind = "good" if jaccard >= 0.8 else ("warning" if jaccard >= 0.5 else "bad")
            word = {"good": "stable", "warning": "somewhat stable", "bad": "unstable"}[kind]
            self.stability_badge = self._add_badge(
                f"Stability {format_number(jaccard, 2)} · {word}",
                kind,
                f"Mean Jaccard overlap of the top-{top_k} features between the main run and {runs} re-runs "
                "with other random neighbourhoods (1 = always the same features).",
            )
        else:
            self.stability_badge = self._add_badge(
                "Stability not measured", "neutral", "Run LIME with 2 or more stability runs to measure it."
            )
        self.badges.addStretch(1)
        extras = result.extras
        local = float(extras["local_predictions"][i]) if "local_predictions" in extras else math.nan
        intercept = float(extras["intercepts"][i]) if "intercepts" in extras else math.nan
        self.caption.setText(
            f"Each bar is the coefficient of LIME's weighted linear surrogate: how much {result.output_name} changes "
            f"for this row's bin (or category) of the feature. Orange raises it, blue lowers it. Surrogate "
            f"prediction {format_number(local)} (intercept {format_number(intercept)}) against the model's "
            f"{format_number(prediction)}."
        )


class WaterfallView(LocalView):
    """SHAP for one row: bars walk from the base value E[f(X)] to the prediction f(x)."""

    TITLE = "SHAP: from the base value to this prediction"  # "IG: …" for Integrated Gradients
    MAX_BARS = 12

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.base_value: float = math.nan
        self.prediction: float = math.nan

    def _zero_line(self) -> bool:
        return False

    def _draw(self, i: int) -> None:
        result = self.result
        assert result is not None
        values = np.asarray(result.values[i], dtype=np.float64)
        names = [str(n) for n in result.feature_names]
        base = float(result.base_values[i]) if result.base_values is not None else 0.0
        self.base_value = base
        self.prediction = float(result.predictions[i])
        order = np.argsort(-np.abs(np.nan_to_num(values)), kind="stable")
        keep = order[: self.MAX_BARS - 1] if order.size > self.MAX_BARS else order
        rest = order[keep.size :]
        labels = [self._feature_label(names[j]) for j in keep]
        shown = list(values[keep])
        if rest.size:
            labels.append(f"{rest.size} other features")
            defined_rest = values[rest][np.isfinite(values[rest])]
            shown.append(float(defined_rest.sum()) if defined_rest.size else math.nan)
        # Drawn top to bottom with the largest on top, the walk starts at the bottom bar.  A contribution
        # that is not defined (NaN) adds nothing to the walk: it is named without a bar and the bars after
        # it go on from where the defined ones left off.
        contributions = np.asarray(shown, dtype=np.float64)
        defined = np.isfinite(contributions)
        walk = np.where(defined, contributions, 0.0)[::-1]
        starts_bottom_up = base + np.concatenate([[0.0], np.cumsum(walk)[:-1]])
        starts = starts_bottom_up[::-1]
        hover = [
            f"{labels[k]}: {_signed(float(contributions[k]))} "
            f"({format_number(float(starts[k]))} → {format_number(float(starts[k] + contributions[k]))})"
            if defined[k]
            else f"{labels[k]}: not defined (no bar; left out of the sum)"
            for k in range(len(labels))
        ]
        self._draw_bars(labels, starts, contributions, hover)
        end = base + float(walk.sum())
        n = len(labels)
        ig = result.method == "ig"
        base_name = "f(baseline)" if ig else "E[f(X)]"
        set_title(self.plot_item, f"{method_word(result)}: from the base value to this prediction")
        # The base value is named below the bottom bar, the prediction above the top one.
        for x, name, anchor, y in (
            (base, base_name, (0.5, 0.0), -0.45),
            (self.prediction, "f(x)", (0.5, 1.0), n - 0.55),
        ):
            self.plot_item.addItem(pg.InfiniteLine(pos=x, angle=90, pen=pen(palette.REFERENCE, 1.0, dashed=True)))
            label = pg.TextItem(f"{name} = {format_number(x)}", color=palette.TEXT, anchor=anchor)
            label.setPos(x, y)
            self.plot_item.addItem(label)
        self.plot_item.setYRange(-1.5, n + 0.5, padding=0)
        space = result.output_space
        name = result.output_name if space in result.output_name else f"{result.output_name} ({space})"
        set_axis_label(self.plot_item, "bottom", name, color=palette.TEXT)
        self.heading.setText(
            f"Row {self.shown_row} · f(x) = {format_number(self.prediction)} · "
            f"base value {base_name} = {format_number(base)}"
        )
        method = result.provenance.parameters.get("auto_choice", result.method) if result.provenance else result.method
        self._add_badge(f"{method}", "neutral", str(result.provenance.parameters.get("auto_reason", "")))
        if "additivity_error" in result.quality:
            error = float(result.quality["additivity_error"][i])
            ok = error <= 1e-6 * max(1.0, abs(self.prediction))
            self._add_badge(
                f"Additivity error {format_number(error, 2)}",
                "good" if ok else "warning",
                "|base value + sum of SHAP values − f(x)|: 0 for exact SHAP.",
            )
        if "completeness_error" in result.quality:
            error = float(result.quality["completeness_error"][i])
            ok = error <= 0.01 * max(abs(self.prediction - base), 1e-12) + 1e-5
            self._add_badge(
                f"Completeness error {format_number(error, 2)}",
                "good" if ok else "warning",
                "|f(baseline) + sum of IG values − f(x)|: what the integration steps left; raise them if large.",
            )
        self.badges.addStretch(1)
        where = (
            f"the {result.output_name} at the baseline row"
            if ig
            else f"the mean {result.output_name} over the background"
        )
        undefined = int((~np.isfinite(values)).sum())
        left_out = (
            f" {undefined} {'contribution is' if undefined == 1 else 'contributions are'} not defined (NaN) "
            "and left out of the sum."
            if undefined
            else ""
        )
        self.caption.setText(
            f"Bars add up from the base value ({where}) to this row's "
            f"output: {format_number(base)} + {format_number(end - base)} = {format_number(end)}. Orange raises the "
            f"output, blue lowers it; the smallest contributions are summed in one bar.{left_out}"
        )
