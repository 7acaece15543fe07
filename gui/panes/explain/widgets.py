"""The Explain area's small widgets: a folding section, the instance picker, the selected rows' table model.

They hold no job and no selection of their own: the instance picker says what
the user asks for (a row, a search, the highest or lowest predictions) through
its signals, and the pane, which owns the jobs and the window's
:class:`gui.selection.SelectionModel`, answers and writes the selection back.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.panes.table_model import FrameTableModel
from gui.selection import Selection
from gui.text import plain_label

__all__ = ["CollapsibleSection", "InstancePicker", "PositionTableModel"]


class CollapsibleSection(QWidget):
    """A header button that folds its content away (closed by default)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setText(title)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._on_toggle_toggled)
        self.content = QWidget()
        self.content_layout = QVBoxLayout(self.content)
        self.content_layout.setContentsMargins(18, 0, 0, 0)
        self.content.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.content)

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle.setChecked(expanded)

    def _on_toggle_toggled(self, checked: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if checked else Qt.ArrowType.RightArrow)
        self.content.setVisible(checked)


class PositionTableModel(FrameTableModel):
    """The frame's rows numbered by 0-based position (as the explanations and the report name them)."""

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole:
            return str(self.source_row(section))
        return super().headerData(section, orientation, role)


class InstancePicker(QGroupBox):
    """The "Instances" bar: a row by position, a search, the highest or lowest predictions, the selection's size.

    It only asks: each control emits what the user wants and the pane answers
    (a search and the predictions run as jobs); :meth:`show_selection` writes
    the window's selection back without echoing it.
    """

    sig_row_chosen = Signal(int)  # a 0-based position typed or stepped to
    sig_find_requested = Signal(str)  # the search text (never blank)
    sig_pick_requested = Signal(str)  # "highest" or "lowest"
    sig_clear_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Instances", parent)
        self.row_spin = QSpinBox()
        self.row_spin.setRange(0, 0)
        self.row_spin.setKeyboardTracking(False)
        self.row_spin.setToolTip("Show this row (0-based position) as the instance.")
        self.row_spin.valueChanged.connect(self._on_row_spin_value_changed)
        self.find_edit = QLineEdit()
        self.find_edit.setPlaceholderText("income > 50000, employment = retired, or any text")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.returnPressed.connect(self._on_find_clicked)
        self.find_button = QPushButton("Find")
        self.find_button.clicked.connect(self._on_find_clicked)
        self.pick_count = QSpinBox()
        self.pick_count.setRange(1, 10_000)
        self.pick_count.setValue(10)
        self.pick_count.setSuffix(" rows")
        self.highest_button = QPushButton("Highest")
        self.highest_button.setToolTip("Select the rows with the highest predicted output.")
        self.highest_button.clicked.connect(self._on_highest_button_clicked)
        self.lowest_button = QPushButton("Lowest")
        self.lowest_button.setToolTip("Select the rows with the lowest predicted output.")
        self.lowest_button.clicked.connect(self._on_lowest_button_clicked)
        self.clear_selection_button = QPushButton("Clear")
        self.clear_selection_button.clicked.connect(self._on_clear_selection_button_clicked)
        self.selection_label = plain_label("No rows selected.")
        self.selection_label.setObjectName("hint")
        layout = QHBoxLayout(self)
        layout.addWidget(QLabel("Row"))
        layout.addWidget(self.row_spin)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Find"))
        layout.addWidget(self.find_edit, 2)
        layout.addWidget(self.find_button)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Prediction"))
        layout.addWidget(self.highest_button)
        layout.addWidget(self.lowest_button)
        layout.addWidget(self.pick_count)
        layout.addSpacing(12)
        layout.addWidget(self.selection_label, 1)
        layout.addWidget(self.clear_selection_button)

    def set_row_count(self, n_rows: int | None) -> None:
        """Offer the positions of a table of ``n_rows`` rows (``None``: no table), without a signal."""
        self.row_spin.blockSignals(True)
        self.row_spin.setRange(0, max(0, (n_rows - 1) if n_rows is not None else 0))
        self.row_spin.blockSignals(False)

    def set_predictions_enabled(self, enabled: bool) -> None:
        """Offer Highest and Lowest (only when a model can predict the data)."""
        self.highest_button.setEnabled(enabled)
        self.lowest_button.setEnabled(enabled)

    def show_selection(self, selection: Selection) -> None:
        """Say how many rows are selected and show the instance's position, without a signal."""
        n = selection.count
        if n == 0:
            self.selection_label.setText("No rows selected.")
        else:
            self.selection_label.setText(
                f"{n:,} row{'s' if n != 1 else ''} selected · instance: row {selection.current}"
            )
        if selection.current is not None:
            self.row_spin.blockSignals(True)
            self.row_spin.setValue(selection.current)
            self.row_spin.blockSignals(False)

    def _on_row_spin_value_changed(self, value: int) -> None:
        self.sig_row_chosen.emit(value)

    def _on_find_clicked(self) -> None:  # the button, or Enter in the search field
        text = self.find_edit.text()
        if text.strip():
            self.sig_find_requested.emit(text)

    def _on_highest_button_clicked(self) -> None:
        self.sig_pick_requested.emit("highest")

    def _on_lowest_button_clicked(self) -> None:
        self.sig_pick_requested.emit("lowest")

    def _on_clear_selection_button_clicked(self) -> None:
        self.sig_clear_requested.emit()
