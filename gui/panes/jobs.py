"""The job list: every listed job with its state, progress and last message."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.plots import palette
from gui.runner import JobRunner, JobState
from gui.text import literal

__all__ = ["JobListDock"]

_COL_TITLE, _COL_STATE, _COL_PROGRESS, _COL_MESSAGE = range(4)
_FRACTION_ROLE = Qt.ItemDataRole.UserRole + 1
_STATE_COLOURS = {
    JobState.DONE: "#00734F",  # a darker bluish green, readable as text
    JobState.FAILED: palette.ERROR,
    JobState.CANCELLED: palette.MUTED_TEXT,
    JobState.CANCELLING: palette.MUTED_TEXT,
}
# A job can finish without doing what its title says: its result then has a ``job_outcome``
# ("refused", "needs trust") that the list shows instead of "done", with no progress bar.
_OUTCOME_COLOURS = {"refused": palette.ERROR, "needs trust": palette.WARNING}


class _ProgressDelegate(QStyledItemDelegate):
    """Draws the progress column as a bar (the item holds the fraction)."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        fraction = index.data(_FRACTION_ROLE)
        if fraction is None:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = QRect(option.rect.adjusted(3, 1, -3, -1))
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(round(1000 * float(fraction)))
        bar.text = f"{float(fraction):.0%}"
        bar.textVisible = True
        bar.state = option.state
        QApplication.style().drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class JobListDock(QDockWidget):
    """Queued, running, finished, failed and cancelled jobs; cancel or clear them."""

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__("Jobs", parent)
        self.setObjectName("jobsDock")
        self._runner = runner
        self._items: dict[int, QTreeWidgetItem] = {}
        self._outcomes: dict[int, str] = {}
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Job", "State", "Progress", "Message"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setItemDelegateForColumn(_COL_PROGRESS, _ProgressDelegate(self.tree))
        header = self.tree.header()
        header.setSectionResizeMode(_COL_TITLE, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(_COL_STATE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_COL_MESSAGE, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(_COL_TITLE, 300)
        header.resizeSection(_COL_PROGRESS, 160)
        self.tree.itemSelectionChanged.connect(self._on_tree_selection_changed)

        self.cancel_button = QPushButton("Cancel selected")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self._on_clear_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.clear_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.setWidget(body)

        runner.sig_job_queued.connect(self._on_runner_job_queued)
        runner.sig_job_started.connect(self._on_runner_job_changed)
        runner.sig_job_progress.connect(self._on_runner_job_progress)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_changed)
        runner.sig_job_cancelled.connect(self._on_runner_job_changed)

    # -- queries used by tests and the status bar ----------------------------------------
    def state_of(self, job_id: int) -> str | None:
        item = self._items.get(job_id)
        return item.text(_COL_STATE) if item is not None else None

    @property
    def job_ids(self) -> list[int]:
        return list(self._items)

    # -- slots -----------------------------------------------------------------------------
    def _on_runner_job_queued(self, job_id: int) -> None:
        record = self._runner.record(job_id)
        if record is None or not record.spec.listed:
            return
        item = QTreeWidgetItem([record.title, record.state.value, "", record.message])
        item.setData(_COL_PROGRESS, _FRACTION_ROLE, 0.0)
        item.setToolTip(_COL_TITLE, literal(record.title))  # titles name files
        self._items[job_id] = item
        self.tree.insertTopLevelItem(0, item)  # newest first
        self._refresh(job_id)

    def _on_runner_job_progress(self, job_id: int, _fraction: float, _message: str) -> None:
        self._refresh(job_id)

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        outcome = getattr(result, "job_outcome", None)
        if isinstance(outcome, str) and outcome:
            self._outcomes[job_id] = outcome
        self._refresh(job_id)

    def _on_runner_job_changed(self, job_id: int, *_args: object) -> None:
        self._refresh(job_id)

    def _on_tree_selection_changed(self) -> None:
        self.cancel_button.setEnabled(bool(self._selected_live()))

    def _on_cancel_clicked(self) -> None:
        for job_id in self._selected_live():
            self._runner.cancel(job_id)

    def _on_clear_clicked(self) -> None:
        for job_id, item in list(self._items.items()):
            record = self._runner.record(job_id)
            if record is None or record.state.is_final:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
                del self._items[job_id]
                self._outcomes.pop(job_id, None)
        self._runner.forget_finished()

    # -- helpers -----------------------------------------------------------------------------
    def _selected_live(self) -> list[int]:
        selected = set(map(id, self.tree.selectedItems()))
        return [j for j, item in self._items.items() if id(item) in selected and self._runner.is_live(j)]

    def _refresh(self, job_id: int) -> None:
        item = self._items.get(job_id)
        record = self._runner.record(job_id)
        if item is None or record is None:
            return
        outcome = self._outcomes.get(job_id) if record.state is JobState.DONE else None
        item.setText(_COL_STATE, outcome or record.state.value)
        colour = _OUTCOME_COLOURS.get(outcome or "") or _STATE_COLOURS.get(record.state)
        item.setForeground(_COL_STATE, QBrush(QColor(colour)) if colour else QBrush())
        shown = 1.0 if record.state is JobState.DONE else record.fraction
        no_bar = record.state is JobState.FAILED or outcome is not None
        item.setData(_COL_PROGRESS, _FRACTION_ROLE, None if no_bar else shown)
        message = record.error.message if record.error is not None else record.message
        item.setText(_COL_MESSAGE, message)
        item.setToolTip(_COL_MESSAGE, literal(message))
        self._on_tree_selection_changed()
