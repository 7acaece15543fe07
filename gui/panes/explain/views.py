"""The Explain area's result views: one tab per view key of :data:`VIEW_TITLES`, built on first use.

:class:`ResultArea` holds the placeholder and the tabs, draws a result in the
view its method names, keeps the results shown by view (``results``), links
them to the window's selection and passes on the rows picked in a plot.  The
plots live in :mod:`gui.plots`; the two text views (surrogates, groups) are here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QPlainTextEdit,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.panes.explain.worker import VIEW_TITLES
from gui.text import plain_label

__all__ = ["SurrogateView", "GroupsView", "ShapTab", "ResultArea"]


def _fmt(value: float, digits: int = 3) -> str:
    return "not defined" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class SurrogateView(QWidget):
    """A ``SurrogateResult`` as text: the tree's rules and the linear equation, with their fidelity."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.text = QPlainTextEdit()
        self.text.setObjectName("monoText")
        self.text.setReadOnly(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)

    def clear(self) -> None:
        self.result = None
        self.text.clear()

    def set_result(self, result: Any) -> None:
        self.result = result
        tree, linear = result.tree, result.linear

        def fidelity(part: Any) -> str:
            text = f"R² {_fmt(part.r2_train)} on {result.n_train:,} fitted rows, {_fmt(part.r2_holdout)} held out"
            if part.agreement_holdout is not None:
                text += f", same side of 0.5 as the model on {part.agreement_holdout:.1%} of held-out rows"
            return text

        lines = [f"What imitates {result.output_name} globally.", ""]
        lines.append(f"Decision tree of depth {tree.max_depth}: {fidelity(tree)}.")
        lines += [f"  • {rule}" for rule in tree.rule_texts]
        lines += ["", f"Sparse linear model: {fidelity(linear)}.", f"  {linear.equation}"]
        self.text.setPlainText("\n".join(lines))


class GroupsView(QWidget):
    """A ``GroupMetricsResult``: one table row per group, then the largest gaps."""

    COLUMNS = (
        ("attribute", "Attribute"),
        ("group", "Group"),
        ("n", "Rows"),
        ("share", "Share"),
        ("positive_rate", "Selection rate"),
        ("base_rate", "Base rate"),
        ("accuracy", "Accuracy"),
        ("tpr", "TPR"),
        ("fpr", "FPR"),
        ("mean_prediction", "Mean prediction"),
        ("mae", "MAE"),
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.gaps = plain_label()  # group names come from the data
        self.gaps.setWordWrap(True)
        self.gaps.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.gaps)

    def clear(self) -> None:
        self.result = None
        self.table.setRowCount(0)
        self.gaps.setText("")

    def set_result(self, result: Any) -> None:
        self.result = result
        # Only the columns the task defines somewhere.
        columns = [
            (key, title)
            for key, title in self.COLUMNS
            if key in ("attribute", "group", "n") or any(_defined(getattr(g, key)) for g in result.groups)
        ]
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([title for _, title in columns])
        self.table.setRowCount(len(result.groups))
        for r, group in enumerate(result.groups):
            for c, (key, _) in enumerate(columns):
                value = getattr(group, key)
                if key == "n":
                    text = f"{int(value):,}"
                elif isinstance(value, float):
                    text = _fmt(value)
                else:
                    text = str(value)
                cell = QTableWidgetItem(text)
                if isinstance(value, (int, float)):
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)
        lines = []
        for d in result.differences:
            if not _defined(d.difference):
                continue
            ratio = f", ratio {_fmt(d.ratio)}" if _defined(d.ratio) else ""
            lines.append(
                f"{d.attribute}, {d.measure.replace('_', ' ')} ({d.metric}): gap {_fmt(d.difference)}{ratio} "
                f"between {d.low_group} (lowest) and {d.high_group} (highest)."
            )
        self.gaps.setText("\n".join(lines) or "No gap is defined for these groups.")


def _defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class ShapTab(QWidget):
    """The waterfall of the instance beside the beeswarm of every explained row."""

    sig_rows_picked = Signal(object, object)  # the beeswarm's: rows, current row or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from gui.plots.beeswarm import BeeswarmView
        from gui.plots.local import WaterfallView

        self.waterfall = WaterfallView()
        self.beeswarm = BeeswarmView()
        self.beeswarm.sig_rows_picked.connect(self.sig_rows_picked)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.waterfall)
        self.splitter.addWidget(self.beeswarm)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([500, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def clear(self) -> None:
        self.waterfall.clear()
        self.beeswarm.clear()


class ResultArea(QStackedWidget):
    """The placeholder until a result is shown, then the tabs of the views that have one, in :data:`VIEW_TITLES` order.

    ``results`` holds what is drawn, by view (``"lime"``, ``"shap"``,
    ``"clusters"``, ``"pdp"``, ``"native"``, ``"surrogate"``, ``"groups"``);
    ``views`` the views built so far, by :data:`VIEW_TITLES` key.
    """

    sig_rows_picked = Signal(object, object)  # rows (np.ndarray), current row or None: picked in a plot

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views: dict[str, QWidget] = {}
        self.results: dict[str, Any] = {}
        self.placeholder = plain_label(
            "No explanations yet. Choose a method, select rows if it explains rows, and press Run."
        )
        self.placeholder.setObjectName("dropHint")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.tabs = QTabWidget()
        self.addWidget(self.placeholder)
        self.addWidget(self.tabs)

    def view(self, key: str) -> QWidget:
        """The result view of ``key`` (see :data:`VIEW_TITLES`), built on first use."""
        existing = self.views.get(key)
        if existing is not None:
            return existing
        from gui.views import VIEWS

        build = VIEWS[key].build if key in VIEW_TITLES else None
        if build is None:
            raise KeyError(key)
        widget = build()
        picked = getattr(widget, "sig_rows_picked", None)
        if picked is not None:  # rows picked in a plot become the window's selection
            picked.connect(self._on_view_rows_picked)
        self.views[key] = widget
        return widget

    @property
    def lime_view(self) -> Any:
        return self.view("lime")

    @property
    def waterfall_view(self) -> Any:
        return self.view("shap").waterfall  # type: ignore[attr-defined]

    @property
    def beeswarm_view(self) -> Any:
        return self.view("shap").beeswarm  # type: ignore[attr-defined]

    @property
    def cluster_view(self) -> Any:
        return self.view("clusters")

    @property
    def dependence_view(self) -> Any:
        return self.view("dependence")

    @property
    def importance_view(self) -> Any:
        return self.view("importance")

    def show_view(self, key: str) -> None:
        """Bring the tab of ``key`` to the front (adding it in the standard order)."""
        widget = self.view(key)
        if self.tabs.indexOf(widget) < 0:
            order = list(VIEW_TITLES)
            position = sum(
                1 for k in order[: order.index(key)] if k in self.views and self.tabs.indexOf(self.views[k]) >= 0
            )
            self.tabs.insertTab(position, widget, VIEW_TITLES[key])
        self.tabs.setCurrentWidget(widget)
        self.setCurrentWidget(self.tabs)

    def show_result(
        self,
        key: str,
        result: Any,
        *,
        attributions: Any | None,
        frame: Any,
        rows: np.ndarray,
        current: int | None,
    ) -> None:
        """Draw ``result`` in view ``key`` and bring it to the front, linked to the selection (``rows``, ``current``).

        ``attributions``: the SHAP values a clustering used, drawn in the SHAP / IG tab as well.
        """
        if key == "lime":
            self.lime_view.set_result(result, frame=frame, row=current)
            self.results["lime"] = result
        elif key == "shap":
            self._show_shap(result, frame, rows, current)
        elif key == "clusters":
            self.cluster_view.set_result(result)
            self.cluster_view.show_selection(rows)
            self.results["clusters"] = result
            if attributions is not None:
                self._show_shap(attributions, frame, rows, current)
        elif key == "dependence":
            self.dependence_view.set_result(result)
            self.dependence_view.show_selection(rows)
            self.results["pdp"] = result
        elif key == "importance":
            self.importance_view.set_result(result)
            self.results["native"] = result
        else:
            self.view(key).set_result(result)  # type: ignore[attr-defined]
            self.results[key] = result
        self.show_view(key)

    def link(self, rows: np.ndarray, current: int | None) -> None:
        """Show the selection (``rows``, the instance ``current``) in every view that has a result."""
        if "lime" in self.results and current is not None:
            self.lime_view.show_row(current)
        if "shap" in self.results:
            if current is not None:
                self.waterfall_view.show_row(current)
            self.beeswarm_view.show_selection(rows)
        if "clusters" in self.results:
            self.cluster_view.show_selection(rows)
        if "pdp" in self.results:
            self.dependence_view.show_selection(rows)

    def clear(self, message: str) -> None:
        """Forget every result, empty the views, remove their tabs and show ``message`` instead."""
        self.results.clear()
        for widget in self.views.values():
            widget.clear()  # type: ignore[attr-defined]
            index = self.tabs.indexOf(widget)
            if index >= 0:
                self.tabs.removeTab(index)
        self.placeholder.setText(message)
        self.setCurrentWidget(self.placeholder)

    def _show_shap(self, result: Any, frame: Any, rows: np.ndarray, current: int | None) -> None:
        self.waterfall_view.set_result(result, frame=frame, row=current)
        self.beeswarm_view.set_result(result, frame=frame)
        self.beeswarm_view.show_selection(rows)
        self.results["shap"] = result
        self.importance_view.set_result(result)

    def _on_view_rows_picked(self, rows: Any, current: Any) -> None:
        self.sig_rows_picked.emit(rows, current)
