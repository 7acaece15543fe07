"""Import preview: the first rows of a table as they will be parsed, with the options to change.

Every change of an option re-parses a bounded prefix of the file on a worker
(``engine.data.preview_table`` through the job runner), so even a huge file
previews at once and the window never waits on it.  "Open" then loads the whole
file with the same options.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.plots import palette
from gui.runner import JobError, JobRunner, JobSpec
from gui.text import literal, plain_label
from gui.widgets import InlineMessage, hint_label

if TYPE_CHECKING:
    from engine.data import TablePreview
    from engine.jobs import JobContext
    from engine.schema import ReadOptions

__all__ = ["ImportPreviewDialog", "PREVIEWED_SUFFIXES", "TEXT_SUFFIXES", "PREVIEW_ROWS", "preview_job"]

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
#: Files whose parse options a person may need to choose; others open directly.
PREVIEWED_SUFFIXES = (*TEXT_SUFFIXES, ".xlsx")
PREVIEW_ROWS = 50
_REPARSE_DELAY_MS = 200  # wait for a pause in typing before parsing again

_DELIMITERS: tuple[tuple[str, str | None], ...] = (
    ("Detect", None),
    ("Comma  ,", ","),
    ("Semicolon  ;", ";"),
    ("Tab", "\t"),
    ("Pipe  |", "|"),
    ("Space", " "),
    ("Other…", ""),
)
_DECIMALS: tuple[tuple[str, str | None], ...] = (("Detect", None), ("Point  .", "."), ("Comma  ,", ","))
_ENCODINGS = ("Detect", "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16")
_HEADER_MODES = ("Detect", "On line", "No header")


def preview_job(path: Path, options: ReadOptions, *, max_rows: int = PREVIEW_ROWS, ctx: JobContext) -> TablePreview:
    """Parse the start of ``path`` (runs on a worker; no Qt)."""
    from engine.data import preview_table

    ctx.progress(0.0, f"Previewing {path.name}")
    preview = preview_table(path, options, max_rows=max_rows)
    ctx.progress(1.0, f"Previewed {path.name}")
    return preview


def _shown_delimiter(delimiter: str | None) -> str:
    return {"\t": "tab", " ": "space"}.get(delimiter or "", f"“{delimiter}”")


def _cell_text(value: Any) -> str | None:
    """The text of one cell, ``None`` for a missing value."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover - pandas is always there once a preview exists
        pass
    return str(value)


class ImportPreviewDialog(QDialog):
    """Shows the first :data:`PREVIEW_ROWS` rows of ``path`` and the options that read them.

    :meth:`options` holds the user's choices, ``None`` meaning "detect", which
    is what the full load is given.  Signals: ``sig_preview_shown`` after a
    preview (or its error) is on screen.
    """

    sig_preview_shown = Signal()

    def __init__(
        self,
        path: Path,
        runner: JobRunner,
        *,
        options: ReadOptions | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._runner = runner
        self._job: int | None = None
        self.preview: TablePreview | None = None
        self.setWindowTitle(f"Import {self.path.name}")
        self.resize(900, 620)
        is_text = self.path.suffix.lower() in TEXT_SUFFIXES

        self.delimiter_combo = QComboBox()
        for label, value in _DELIMITERS:
            self.delimiter_combo.addItem(label, value)
        self.delimiter_other = QLineEdit()
        self.delimiter_other.setPlaceholderText("e.g. ::")
        self.delimiter_other.setMaximumWidth(80)
        self.delimiter_other.setEnabled(False)
        delimiter_row = QHBoxLayout()
        delimiter_row.addWidget(self.delimiter_combo)
        delimiter_row.addWidget(self.delimiter_other)
        delimiter_row.addStretch(1)
        self.encoding_combo = QComboBox()
        self.encoding_combo.setEditable(True)  # any codec Python knows
        self.encoding_combo.addItems(list(_ENCODINGS))
        self.decimal_combo = QComboBox()
        for label, value in _DECIMALS:
            self.decimal_combo.addItem(label, value)
        self.header_combo = QComboBox()
        self.header_combo.addItems(list(_HEADER_MODES))
        self.header_line = QSpinBox()
        self.header_line.setRange(1, 100_000)
        self.header_line.setPrefix("line ")
        self.header_line.setEnabled(False)
        header_row = QHBoxLayout()
        header_row.addWidget(self.header_combo)
        header_row.addWidget(self.header_line)
        header_row.addStretch(1)
        self.missing_edit = QLineEdit()
        self.missing_edit.setPlaceholderText("extra markers, comma-separated, e.g. ?, -, 999")
        self.missing_edit.setToolTip("Empty fields, NA, N/A, NaN and NULL are always read as missing.")
        for widget in (self.delimiter_combo, self.delimiter_other, self.encoding_combo, self.decimal_combo):
            widget.setEnabled(is_text and widget is not self.delimiter_other)

        self.encoding_combo.setMinimumWidth(150)
        self.decimal_combo.setMinimumWidth(150)
        self.missing_edit.setMinimumWidth(320)
        # Two columns: how fields are split and decoded | where the header is and what counts as missing.
        text_form = QFormLayout()
        text_form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        text_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        text_form.addRow("Delimiter:", delimiter_row)
        text_form.addRow("Encoding:", self.encoding_combo)
        text_form.addRow("Decimal mark:", self.decimal_combo)
        rows_form = QFormLayout()
        rows_form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        rows_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        rows_form.addRow("Header:", header_row)
        rows_form.addRow("Missing values:", self.missing_edit)
        form = QHBoxLayout()
        form.addLayout(text_form)
        form.addSpacing(24)
        form.addLayout(rows_form)
        form.addStretch(1)

        self.detected_label = plain_label()
        self.detected_label.setWordWrap(True)
        self.detected_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = InlineMessage()
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setToolTip("Rows are numbered from 0, as everywhere in Probity.")

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.open_button = self.buttons.addButton("Open", QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button.setObjectName("primary")
        self.open_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(
            hint_label(
                f"How {self.path.name} will be read: options left on Detect are worked out from the file. "
                "Probity never changes the file."
            )
        )
        layout.addLayout(form)
        layout.addWidget(self.detected_label)
        layout.addWidget(self.error)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_REPARSE_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self.delimiter_combo.currentIndexChanged.connect(self._on_delimiter_combo_changed)
        self.delimiter_other.textChanged.connect(self._on_option_changed)
        self.encoding_combo.currentTextChanged.connect(self._on_option_changed)
        self.decimal_combo.currentIndexChanged.connect(self._on_option_changed)
        self.header_combo.currentIndexChanged.connect(self._on_header_combo_changed)
        self.header_line.valueChanged.connect(self._on_option_changed)
        self.missing_edit.textChanged.connect(self._on_option_changed)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_failed)
        runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)
        if options is not None:
            self.set_options(options)
        self.refresh()

    # -- public API ------------------------------------------------------------------------
    def options(self) -> ReadOptions:
        """The chosen options; ``None`` fields are detected by the loader."""
        from engine.schema import ReadOptions

        delimiter = self.delimiter_combo.currentData()
        if delimiter == "":
            delimiter = self.delimiter_other.text() or None
        encoding = self.encoding_combo.currentText().strip()
        mode = self.header_combo.currentText()
        header = None if mode == "Detect" else (-1 if mode == "No header" else self.header_line.value() - 1)
        missing = tuple(m.strip() for m in self.missing_edit.text().split(",") if m.strip())
        return ReadOptions(
            delimiter=delimiter,
            encoding=None if encoding in ("", "Detect") else encoding,
            decimal=self.decimal_combo.currentData(),
            header_row=header,
            missing_values=missing,
        )

    def set_options(self, options: ReadOptions) -> None:
        """Show ``options`` in the controls (a re-parse follows)."""
        index = next((i for i, (_, v) in enumerate(_DELIMITERS) if v == options.delimiter), None)
        if index is None:  # a delimiter not in the list
            self.delimiter_combo.setCurrentIndex(len(_DELIMITERS) - 1)
            self.delimiter_other.setText(options.delimiter or "")
        else:
            self.delimiter_combo.setCurrentIndex(index)
        self.encoding_combo.setCurrentText(options.encoding or "Detect")
        self.decimal_combo.setCurrentIndex(next((i for i, (_, v) in enumerate(_DECIMALS) if v == options.decimal), 0))
        if options.header_row is None:
            self.header_combo.setCurrentText("Detect")
        elif options.header_row < 0:
            self.header_combo.setCurrentText("No header")
        else:
            self.header_combo.setCurrentText("On line")
            self.header_line.setValue(options.header_row + 1)
        self.missing_edit.setText(", ".join(options.missing_values))

    def refresh(self) -> int:
        """Parse the start of the file with the current options now; returns the job id."""
        self._timer.stop()
        self._job = self._runner.submit(
            JobSpec(
                kind="import-preview",
                fn=preview_job,
                args=(self.path, self.options()),
                key=f"import-preview:{id(self)}",
                title=f"Preview {self.path.name}",
                listed=False,
            )
        )
        self.detected_label.setText("Reading the first rows…")
        return self._job

    @property
    def is_parsing(self) -> bool:
        return self._job is not None

    def column_names(self) -> list[str]:
        return [self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())]

    def cell_text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""

    # -- slots ------------------------------------------------------------------------------
    def _on_delimiter_combo_changed(self, _index: int) -> None:
        self.delimiter_other.setEnabled(self.delimiter_combo.currentData() == "")
        self._on_option_changed()

    def _on_header_combo_changed(self, _index: int) -> None:
        self.header_line.setEnabled(self.header_combo.currentText() == "On line")
        self._on_option_changed()

    def _on_option_changed(self, *_args: object) -> None:
        self._timer.start()

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._show_preview(result)

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        if job_id != self._job:
            return
        assert isinstance(error, JobError)
        self._job = None
        self.preview = None
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.detected_label.setText("")
        self.error.show_error(
            error.message if error.is_user_error else "The preview failed because of an internal error."
        )
        self.open_button.setEnabled(False)
        self.sig_preview_shown.emit()

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self._job = None

    def done(self, result: int) -> None:  # noqa: D401 - Qt override
        # A preview still parsing has nobody left to show it to.
        self._timer.stop()
        if self._job is not None:
            self._runner.cancel(self._job)
            self._job = None
        super().done(result)

    # -- helpers ------------------------------------------------------------------------------
    def _show_preview(self, preview: Any) -> None:
        self.preview = preview
        self.error.clear_message()
        frame = preview.frame
        n_rows, n_cols = frame.shape
        self.table.clear()
        self.table.setColumnCount(n_cols)
        self.table.setRowCount(n_rows)
        self.table.setHorizontalHeaderLabels([str(c) for c in frame.columns])
        # Rows are numbered from 0, as in the Dataset table, the Explain workspace, --rows and the report.
        self.table.setVerticalHeaderLabels([str(r) for r in range(n_rows)])
        muted = QColor(palette.MUTED_TEXT)
        for c in range(n_cols):
            header = self.table.horizontalHeaderItem(c)
            header.setToolTip(literal(f"{frame.columns[c]} ({frame.dtypes.iloc[c]})"))
            values = frame.iloc[:, c].tolist()
            for r, value in enumerate(values):
                text = _cell_text(value)
                item = QTableWidgetItem("missing" if text is None else text)
                if text is None:
                    item.setForeground(muted)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        for c in range(n_cols):
            self.table.setColumnWidth(c, min(self.table.columnWidth(c), 240))
        self.detected_label.setText(self._describe(preview))
        self.open_button.setEnabled(n_cols > 0)
        self.sig_preview_shown.emit()

    def _describe(self, preview: Any) -> str:
        used = preview.options
        parts = []
        if preview.format == "csv":
            parts.append(f"delimiter {_shown_delimiter(used.delimiter)}")
            parts.append(f"encoding {used.encoding}")
            parts.append(f"decimal mark “{used.decimal}”")
        if used.header_row is None or used.header_row >= 0:
            parts.append(f"header on line {(used.header_row or 0) + 1}")
        else:
            parts.append("no header line")
        n_rows, n_cols = preview.frame.shape
        shown = (
            f"all {n_rows} rows shown"
            if preview.complete
            else f"the first {n_rows} rows shown (the whole file is read on Open)"
        )
        return f"Read with {', '.join(parts)}: {n_cols} column{'s' if n_cols != 1 else ''}, {shown}."
