"""The proxy-risk table: which model inputs carry a sensitive attribute into the model.

One row per (attribute, input), highest risk first within each attribute, and
one sentence per attribute naming its strongest proxy and what all inputs
together say of it.  Everything shown comes from the ``ProxyResult``.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from gui.text import plain_label

__all__ = ["ProxyView"]


def _number(value: float, digits: int = 3) -> str:
    return "not defined" if not math.isfinite(value) else f"{value:.{digits}g}"


class ProxyView(QWidget):
    """A ``ProxyResult``: the proxy-risk table and the strongest proxy of each attribute."""

    COLUMNS = (
        "Attribute",
        "Input",
        "Risk",
        "Level",
        "Predicts it (AUC or R²)",
        "Mutual information (bits)",
        "Importance (95 % CI)",
        "Used",
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary = plain_label()  # attribute and column names come from the data
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    def clear(self) -> None:
        self.result = None
        self.table.setRowCount(0)
        self.summary.setText("")

    def set_result(self, result: Any) -> None:
        self.result = result
        self.table.setRowCount(len(result.rows))
        for r, row in enumerate(result.rows):
            predicts = row.auc if math.isfinite(row.auc) else row.r2
            interval = (
                f"{_number(row.importance)} ({_number(row.importance_ci_low)} to {_number(row.importance_ci_high)})"
            )
            cells = (
                row.attribute,
                row.feature,
                _number(row.risk),
                row.level,
                _number(predicts),
                _number(row.mutual_information),
                interval,
                "yes" if row.used else "no",
            )
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(str(text))
                if c in (2, 4, 5, 6):
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)
        lines = []
        for a in result.attributes:
            together = a.all_inputs_auc if math.isfinite(a.all_inputs_auc) else a.all_inputs_r2
            measure = "AUC" if a.kind == "auc" else "R²"
            strongest = (
                f"its strongest proxy is {a.strongest}"
                if a.strongest
                else "no input the model uses predicts it strongly"
            )
            direct = "; it is itself a model input (the fairness flip test measures that use)" if a.direct_input else ""
            together_text = f"all inputs together predict it with {measure} {_number(together)}"
            lines.append(f"{a.attribute}: {strongest}; {together_text}{direct}.")
        self.summary.setText("\n".join(lines))
